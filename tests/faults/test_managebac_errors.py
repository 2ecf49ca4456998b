"""Fault: ManageBac+ answers 30% of requests with 503, and a 429 storm comes on top.

The client retries 5xx with backoff, waits out 429s (Retry-After / X-RateLimit-Reset), and
parks what still fails on the retry topic; nothing may be dead-lettered, lost or doubled.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.harness import fault_stack

pytestmark = pytest.mark.kafka

STORM_RATE_LIMIT = 5  # requests/s ManageBac+ allows during the storm (the client sends more)
STORM_SECONDS = 8.0


async def test_managebac_503s_and_a_429_storm_end_with_every_change_applied_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with fault_stack("managebac-503-429", tmp_path, kafka_bootstrap, seed=5) as stack:
        await stack.managebac_faults(error_rate=0.3)
        await stack.start_consumer()
        await stack.send_all_students()
        edits = asyncio.create_task(stack.stream_edits(240, rate=30))
        await stack.until(lambda: stack.sent_at_least(120 + 60), "60 edits sent")
        await stack.managebac_faults(rate_limit_per_second=STORM_RATE_LIMIT)
        await asyncio.sleep(STORM_SECONDS)
        await stack.managebac_faults(rate_limit_per_second=None)
        await edits

        counts = await stack.settle_and_check()  # still answering 30% 503s

    assert counts.applied == counts.accepted == 120 + 240
    assert counts.managebac_statuses.get("503", 0) > 0
    assert counts.managebac_statuses.get("429", 0) > 0
