"""Fault: two consumers share the group and one leaves mid-stream (SIGTERM).

The leaving one stops fetching, finishes and commits what it holds, leaves the group and
exits 0; the other takes its partitions over and carries on from the committed offsets.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.harness import fault_stack

pytestmark = pytest.mark.kafka


async def test_one_of_two_consumers_leaving_mid_stream_hands_over_without_loss(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with fault_stack(
        "consumer-leaves-group", tmp_path, kafka_bootstrap, seed=9, managebac_latency_ms=20
    ) as stack:
        leaving = await stack.start_consumer()
        await stack.start_consumer()
        await stack.send_all_students()
        edits = asyncio.create_task(stack.stream_edits(240, rate=30))
        await stack.until(lambda: stack.sent_at_least(120 + 80), "80 edits sent")
        assert await stack.terminate(leaving) == 0, leaving.log_tail(40)
        assert "consumer stopped cleanly" in leaving.log_tail(60)
        await edits

        counts = await stack.settle_and_check()

    assert counts.applied == counts.accepted == 120 + 240
