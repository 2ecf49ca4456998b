"""Fault: the iSAMS API is down for 10 s while thin events flow.

A thin event makes the consumer read the student from iSAMS; while iSAMS answers 503 the
change is parked on the retry topic (SYNC_RETRY_DELAYS shortens the waits) and applied
once iSAMS is back, without holding up other records.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from consumers.settings import ConfigError, load_settings
from tests.faults.harness import fault_stack

pytestmark = pytest.mark.kafka

OUTAGE_SECONDS = 10.0


async def test_changes_read_while_isams_is_down_are_parked_and_applied_when_it_is_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with fault_stack("isams-down", tmp_path, kafka_bootstrap, seed=7) as stack:
        await stack.start_consumer()
        await stack.send_all_students()
        edits = asyncio.create_task(stack.stream_edits(300, rate=20, fat_share=0.0))
        await stack.until(lambda: stack.sent_at_least(120 + 60), "60 thin edits sent")
        await stack.isams_down(OUTAGE_SECONDS)
        await edits

        counts = await stack.settle_and_check()

    assert counts.applied == counts.accepted == 120 + 300
    assert counts.parked > 0, "no change waited on the retry topic: the outage missed"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1,2.5, 4", (1.0, 2.5, 4.0)), ("", None), ("30", (30.0,))],
)
def test_sync_retry_delays_reads_comma_separated_seconds(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[float, ...] | None
) -> None:
    monkeypatch.setenv("SYNC_RETRY_DELAYS", value)
    assert load_settings().retry_delays == expected


@pytest.mark.parametrize("value", ["0,1", "a,b", "1,,2", "-5", "nan"])
def test_a_bad_sync_retry_delays_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SYNC_RETRY_DELAYS", value)
    with pytest.raises(ConfigError, match="SYNC_RETRY_DELAYS"):
        load_settings()
