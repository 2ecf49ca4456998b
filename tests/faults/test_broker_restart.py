"""Fault: the Kafka broker is restarted (`scripts/kafka.sh stop`, then `start`) under load.

The test runs its own broker (own ports and data folder, same script), so restarting it
cannot disturb the shared broker other tests use. While it is down, ingest answers 503
with Retry-After and the sender retries; the consumer pauses and resumes; committed
offsets survive the restart. iSAMS is down around the restart too, so the consumer has
changes to park while Kafka is away: it must keep them (not finish them) until Kafka
takes them, and get past aiokafka's idempotent producer refusing to send after the
restart (OutOfOrderSequenceNumber).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sim.serving import free_port
from sim.stack import KAFKA_SCRIPT
from tests.faults.harness import fault_stack

pytestmark = pytest.mark.kafka

DOWN_SECONDS = 4.0
ISAMS_LEAD_SECONDS = 3.0


class Broker:
    """A private single-node broker driven by `scripts/kafka.sh`."""

    def __init__(self, data: Path) -> None:
        port = free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_DATA": str(data),
            "SYNC_KAFKA_TOPIC_PREFIX": "",
        }
        self.log = data.parent / "kafka-script.log"

    async def run(self, command: str) -> None:
        """Run `kafka.sh <command>` without blocking the in-process servers."""
        with self.log.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                str(KAFKA_SCRIPT), command, env=self.env, stdout=log, stderr=log
            )
            code = await asyncio.wait_for(process.wait(), timeout=150)
        assert code == 0, f"kafka.sh {command} failed:\n{self.log.read_text()[-2000:]}"


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    broker = Broker(tmp_path / "kafka")
    await broker.run("start")
    try:
        yield broker
    finally:
        await broker.run("stop")


async def test_a_broker_restart_under_load_loses_and_duplicates_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    async with fault_stack("broker-restart", tmp_path, broker.bootstrap, seed=11) as stack:
        await stack.start_consumer()
        await stack.send_all_students()
        edits = asyncio.create_task(stack.stream_edits(240, rate=30))
        await stack.until(lambda: stack.sent_at_least(120 + 60), "60 edits sent")
        # iSAMS goes away a moment before Kafka does, so thin events in flight end up
        # being parked (on the retry topic) while Kafka is down.
        await stack.isams_down(ISAMS_LEAD_SECONDS + DOWN_SECONDS)
        await asyncio.sleep(ISAMS_LEAD_SECONDS)
        await broker.run("stop")
        await asyncio.sleep(DOWN_SECONDS)
        await broker.run("start")
        await edits

        counts = await stack.settle_and_check()

    assert counts.applied == counts.accepted == 120 + 240
    assert stack.emitter.stats.retries > 0, "no webhook was refused: the restart missed"
