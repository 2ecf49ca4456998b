"""Live edits never wait behind a first sync, and one school's trouble never holds back
another's changes (docs/design.md §4, §6), on the real broker with the simulators.

A backfill goes to the bulk topic, consumed with lower priority: its changes are few in
flight, and a live change's ManageBac+ requests are granted before the waiting bulk ones
within the school's budget.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from consumers.settings import Topics
from tests.integration.sync_stack import Stack, open_stack
from tests.integration.test_backfill import BackfillRunner

pytestmark = pytest.mark.kafka

BUDGET = 25.0  # the school's requests per second: the backfill takes many seconds at it


async def managebac_surname(stack: Stack, student_id: str) -> str | None:
    found = (await stack.managebac_students()).get(student_id)
    return None if found is None else str(found.get("last_name"))


async def test_a_live_edit_during_a_backfill_is_applied_with_its_normal_latency(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    async with open_stack(
        kafka_bootstrap, topics, tmp_path, students=120, school_rps=BUDGET
    ) as stack:
        backfill = BackfillRunner(stack)
        await backfill.start()
        try:
            await stack.start_consumer()
            report = await backfill()
            assert report.queued > 100
            await asyncio.sleep(2.0)  # the first sync is under way, the bulk lane full
            writes_before = await stack.managebac_writes()

            record = next(
                s
                for s in reversed(stack.school.all_students())
                if s["systemStatus"] == "Current" and 7 <= s["yearGroup"] <= 13
            )
            stack.school.edit_student(record["schoolId"], {"surname": "Liveedit"})
            sent = time.monotonic()
            response = await stack.emitter.send(stack.emitter.student_event(record["schoolId"]))
            assert response.status_code == 202
            while await managebac_surname(stack, record["schoolCode"]) != "Liveedit":
                assert time.monotonic() - sent < 10, "the live edit waited behind the backfill"
                await asyncio.sleep(0.05)
            latency = time.monotonic() - sent

            done = len(stack.results)
            assert done < report.queued, "the backfill was over before the live edit"
            assert await stack.managebac_writes() > writes_before  # the first sync went on
            assert latency < 3.0, f"live edit took {latency:.1f} s during the backfill"
            await stack.wait_for_results(report.queued + 1, timeout=120)
        finally:
            await backfill.stop()
