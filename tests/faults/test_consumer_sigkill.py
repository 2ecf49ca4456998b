"""Fault: `isams-sync consume` is SIGKILLed mid-stream (twice) and restarted.

A killed consumer neither finishes nor commits what it was doing: the restarted one gets
those records again. Nothing may be lost, and a create that reached ManageBac+ just before
the kill must be adopted on redelivery, never duplicated.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.harness import fault_stack

pytestmark = pytest.mark.kafka


async def test_a_consumer_killed_mid_stream_and_restarted_loses_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with fault_stack(
        "consumer-sigkill", tmp_path, kafka_bootstrap, seed=3, managebac_latency_ms=20
    ) as stack:
        consumer = await stack.start_consumer()
        initial = asyncio.create_task(stack.send_all_students())
        # First kill: while the initial creates are landing in ManageBac+.
        await stack.until(lambda: stack.managebac_has_students(30), "30 students created")
        stack.kill(consumer)
        await initial
        edits = asyncio.create_task(stack.stream_edits(240, rate=40))
        await asyncio.sleep(1.0)
        consumer = await stack.start_consumer()
        # Second kill: while live edits flow and the restarted consumer works through them.
        writes = await stack.managebac_writes()
        await stack.until(
            lambda: stack.managebac_has_writes(writes + 40), "40 more writes", timeout=90
        )
        stack.kill(consumer)
        await asyncio.sleep(0.5)
        await stack.start_consumer()
        await edits

        counts = await stack.settle_and_check()

    assert counts.accepted == 120 + 240
    assert counts.applied == counts.accepted
