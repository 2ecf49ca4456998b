"""One school's ManageBac+ budget for the whole deployment (docs/design.md §4): two
`isams-sync consume` processes in one group, against the ManageBac+ simulator limited to
the school's `max_requests_per_second` per client address, stay within it together (429s
at most 2% of calls) and use it (at least 80% while work is waiting). Each takes its share
by its part of the partitions."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from consumers.adapters.kafka.admin import wait_for_stable_group
from consumers.adapters.kafka.publisher import KafkaPublisher
from consumers.events import ChangeEvent, to_message
from consumers.settings import Topics
from sim.isams.app import SimConfig as IsamsConfig
from sim.isams.app import create_app as create_isams_app
from sim.isams.school import generate_school
from sim.managebac import SimConfig as ManagebacConfig
from sim.managebac import create_app as create_managebac_app
from sim.serving import free_port, serve_app
from sim.stack import ManagedProcess, sync_command, wait_ready
from tests.integration.sync_stack import school_entry

pytestmark = pytest.mark.kafka

SCHOOL = "budget-school"
SECRET = "whsec_" + base64.b64encode(b"shared-budget-test-secret-32byt!").decode()
TOKEN = "budget-token"
BUDGET = 20  # requests per second, for the whole deployment
YEARS = {year: 10209265 + year for year in range(7, 14)}  # the simulator's default cohorts


def schools_file(tmp_path: Path, isams_url: str, managebac_url: str) -> Path:
    school = school_entry(
        isams_url,
        managebac_url,
        school_rps=BUDGET,
        # Students only: each is one create, so the calls are the budget's to measure.
        mappings={"year_groups": YEARS, "contact_types": []},
        school=SCHOOL,
        secret=SECRET,
        token=TOKEN,
    )
    school["staff"] = {"enabled": False}
    path = tmp_path / "schools.yaml"
    path.write_text(yaml.safe_dump({"schools": [school]}))
    return path


def consumer(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[ManagedProcess, int]:
    port = free_port()
    process = ManagedProcess(
        name,
        sync_command("consume", "--health-port", str(port), "--health-host", "127.0.0.1"),
        tmp_path / f"{name}.log",
        env,
    )
    return process, port


async def test_two_consumers_together_stay_within_and_use_the_schools_budget(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    school = generate_school(220, seed=5)
    wanted = {
        s["schoolId"]: s
        for s in school.all_students()
        if s["systemStatus"] == "Current" and s["yearGroup"] in YEARS
    }
    isams = create_isams_app(IsamsConfig(), school)
    managebac = create_managebac_app(ManagebacConfig(token=TOKEN, rate_limit_per_second=BUDGET))
    async with (
        serve_app(isams, lifespan="off") as isams_url,
        serve_app(managebac, lifespan="off") as managebac_url,
        httpx.AsyncClient(base_url=managebac_url, timeout=10) as sim,
    ):
        prefix = topics.changes.removesuffix("isams.changes")
        env = {
            "SYNC_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "SYNC_KAFKA_TOPIC_PREFIX": prefix,
            "SYNC_CONSUMER_GROUP": f"group-{prefix}",
            "SYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
            "SYNC_SCHOOLS_FILE": str(schools_file(tmp_path, isams_url, managebac_url)),
            "SYNC_KAFKA_CREATE_TOPICS": "false",
            "SYNC_LOG_LEVEL": "WARNING",
        }
        processes = [consumer(tmp_path, f"consume-{n}", env) for n in (1, 2)]
        for process, _ in processes:
            process.start()
        try:
            for process, port in processes:
                await wait_ready(f"http://127.0.0.1:{port}/readyz", process)
            # Both in the group, partitions shared, before any work is queued.
            state = await wait_for_stable_group(
                kafka_bootstrap, env["SYNC_CONSUMER_GROUP"], members=2, timeout=60
            )
            assert state == ("Stable", 2), f"the group did not settle: {state}\n" + "\n".join(
                f"{process.name}: {process.log_tail()}" for process, _ in processes
            )
            await publish_students(kafka_bootstrap, topics, wanted)
            await until_all_created(sim, wanted, processes)
            stats = (await sim.get("/_sim/stats")).json()
            creates = [w["at"] for w in (await sim.get("/_sim/writes")).json()]
        finally:
            for process, _ in processes:
                process.stop()

    calls = stats["by_client"]["127.0.0.1"]
    statuses: dict[str, int] = calls["statuses"]
    refused = statuses.get("429", 0)
    # Used while work was waiting: the creates, from the first to the last.
    seconds = max(creates) - min(creates)
    used = (len(creates) - 1) / (seconds * BUDGET)
    print(  # the figures for the closing note (pytest -s)
        f"shared budget: {len(creates)} creates in {seconds:.1f} s at a budget of {BUDGET}/s:"
        f" used {used:.0%}; {calls['total']} calls, 429s {refused}"
        f" ({refused / calls['total']:.1%})"
    )
    assert len(creates) == len(wanted)
    assert refused <= 0.02 * calls["total"], statuses
    assert used >= 0.8, f"{len(creates)} creates in {seconds:.1f} s"


async def publish_students(
    kafka_bootstrap: str, topics: Topics, students: dict[str, dict[str, Any]]
) -> None:
    now = datetime.now(UTC)
    events = [
        ChangeEvent.model_validate(
            {"type": "student.updated", "timestamp": now, "data": {"schoolId": sid, "record": r}}
        )
        for sid, r in students.items()
    ]
    publisher = KafkaPublisher(kafka_bootstrap)
    await publisher.start()
    try:
        messages = [to_message(event, SCHOOL, "budget-test", now) for event in events]
        await publisher.publish(topics.changes, messages)
    finally:
        await publisher.stop()


async def until_all_created(
    sim: httpx.AsyncClient,
    wanted: dict[str, dict[str, Any]],
    processes: list[tuple[ManagedProcess, int]],
) -> None:
    deadline = time.monotonic() + 120
    codes = {s["schoolCode"] for s in wanted.values()}
    while True:
        state = (await sim.get("/_sim/state")).json()
        if codes <= {s["student_id"] for s in state["students"]}:
            return
        assert all(process.alive() for process, _ in processes), processes[0][0].log_tail()
        assert time.monotonic() < deadline, "not every student was created in 2 minutes:\n" + (
            "\n".join(f"{process.name}: {process.log_tail()}" for process, _ in processes)
        )
        await asyncio.sleep(0.25)
