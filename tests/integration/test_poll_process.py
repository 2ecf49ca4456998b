"""`isams-sync poll` as a real process against the iSAMS simulator over HTTP and the broker:
health and metrics while a school's iSAMS refuses a list, a clean SIGTERM, a SIGKILL in
the middle of a cycle and the restart, and `--once`'s exit codes."""

from __future__ import annotations

import asyncio
import base64
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from consumers.adapters.kafka.reader import read_to_end
from consumers.adapters.ledger import Ledger
from consumers.domain.records import Status, SyncRecord
from consumers.events import QueuedChange
from consumers.settings import Topics
from sim.isams.app import SimConfig, create_app
from sim.isams.school import SchoolData, generate_school
from sim.isams.store import roll_of
from sim.serving import free_port, serve_app
from sim.stack import ManagedProcess, sync_command, wait_ready

pytestmark = pytest.mark.kafka

SCHOOL = "proc-school"
SECRET = "whsec_" + base64.b64encode(b"poll-process-test-secret-32-byte").decode()


@dataclass(frozen=True)
class Finished:
    """How a `poll --once` run ended."""

    returncode: int
    stdout: str
    stderr: str

    def tail(self) -> str:
        return self.stdout[-2000:] + self.stderr[-2000:]


@dataclass
class PollProcessRig:
    """A simulated iSAMS, a schools file polling it every second, and the environment."""

    tmp_path: Path
    school: SchoolData
    isams: httpx.AsyncClient
    env: dict[str, str]
    kafka: str
    topics: Topics
    seen: set[tuple[str, int, int]]

    def process(self, *args: str, name: str = "poll") -> ManagedProcess:
        return ManagedProcess(
            name, sync_command("poll", *args), self.tmp_path / f"{name}.log", self.env
        )

    async def once(self, *args: str) -> Finished:
        """Run `poll --once` to its end (asynchronously: the simulator runs in this loop)."""
        command = sync_command("poll", "--once", "--health-port", str(free_port()), *args)
        child = await asyncio.create_subprocess_exec(
            *command,
            env={"PATH": "/usr/bin:/bin", **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(child.communicate(), timeout=120)
        except TimeoutError:
            child.kill()
            raise
        assert child.returncode is not None
        return Finished(
            child.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        )

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.isams.request(method, f"/_sim{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    async def published(self) -> list[QueuedChange]:
        """Return what reached the topics since the last call (live and bulk lanes)."""
        records = [
            record
            for topic in (self.topics.changes, self.topics.bulk)
            for record in await read_to_end(self.kafka, topic)
        ]
        new = [r for r in records if (r.topic, r.partition, r.offset) not in self.seen]
        self.seen |= {(r.topic, r.partition, r.offset) for r in new}
        return [QueuedChange.from_bytes(r.value) for r in new]

    def add_school(self, school_id: str, **isams: str) -> None:
        """Add a school to the schools file: a copy of the first, with these iSAMS settings."""
        path = Path(self.env["SYNC_SCHOOLS_FILE"])
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        first = document["schools"][0]
        document["schools"].append({**first, "id": school_id, "isams": {**first["isams"], **isams}})
        path.write_text(yaml.safe_dump(document), encoding="utf-8")

    def listed_records(self) -> int:
        pupils = [s for s in self.school.all_students() if roll_of(s) != "applicants"]
        contacts = self.school.listed_contacts(0, 10**6, include_deceased=True)[0]
        return len(pupils) + contacts + len(self.school.all_employees())


@pytest.fixture
async def rig(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> AsyncIterator[PollProcessRig]:
    school = generate_school(30, seed=5)
    async with serve_app(create_app(SimConfig(), school), lifespan="off") as url:
        schools = tmp_path / "schools.yaml"
        entry = {
            "id": SCHOOL,
            "webhook_secrets": [SECRET],
            "isams": {
                "base_url": url,
                "client_id": "sync-client",
                "client_secret": "${POLL_ISAMS_SECRET}",
                "poll_interval_s": 1,
            },
            "managebac": {"base_url": "http://127.0.0.1:9", "token": "unused"},
        }
        schools.write_text(yaml.safe_dump({"schools": [entry]}), encoding="utf-8")
        env = {
            "SYNC_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "SYNC_KAFKA_TOPIC_PREFIX": topics.changes.removesuffix("isams.changes"),
            "SYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
            "SYNC_SCHOOLS_FILE": str(schools),
            "POLL_ISAMS_SECRET": "sync-secret",
        }
        async with httpx.AsyncClient(base_url=url, timeout=10) as isams:
            yield PollProcessRig(tmp_path, school, isams, env, kafka_bootstrap, topics, set())


async def until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_poll_serves_health_and_metrics_while_a_list_is_refused_and_stops_on_sigterm(
    rig: PollProcessRig,
) -> None:
    port = free_port()
    process = rig.process("--health-port", str(port), "--health-host", "127.0.0.1")
    process.start()
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            async def metric(text: str) -> bool:
                return text in (await http.get("/metrics")).text

            cycles = f'isams_sync_poll_cycles_total{{outcome="ok",school="{SCHOOL}"}}'
            await until(lambda: metric(cycles), "a first cycle")
            await until(lambda: _all_published(rig), "every record on the topic")

            await rig.control("PUT", "/permissions", {"contacts": False})
            blocked = (
                f'isams_sync_school_blocked{{reason="isams_contacts_forbidden",school="{SCHOOL}"}}'
            )
            await until(lambda: metric(blocked + " 1.0"), "the school blocked for contacts")
            assert (await http.get("/healthz")).status_code == 200  # the school's state
            assert (await http.get("/readyz")).status_code == 200
            text = (await http.get("/metrics")).text
            for name in (
                "isams_sync_poll_cycle_seconds_bucket",
                "isams_sync_poll_isams_requests_last_cycle",
                "isams_sync_poll_changes_total",
                "isams_sync_poll_removals_held",
            ):
                assert name in text, name

            await rig.control("PUT", "/permissions", {"contacts": True})
            await until(lambda: metric(blocked + " 0.0"), "the block lifted")

        assert process.process is not None
        stopped_at = time.monotonic()
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(30) == 0, process.log_tail()
        assert time.monotonic() - stopped_at < 30
        assert "poller stopped cleanly" in process.log_tail(50)
    finally:
        process.stop()


async def _all_published(rig: PollProcessRig) -> bool:
    topics = (rig.topics.changes, rig.topics.bulk)
    records = [record for topic in topics for record in await read_to_end(rig.kafka, topic)]
    return len(records) >= rig.listed_records()


async def test_a_poller_killed_mid_cycle_and_restarted_misses_and_repeats_nothing(
    rig: PollProcessRig,
) -> None:
    # Three list reads pass (students, alumni, contacts); the employees list then waits on
    # a 429 for up to 10 s: the kill lands in the middle of the cycle, every time.
    await rig.control("PUT", "/throttle", {"limit": 3, "windowSeconds": 10})
    process = rig.process("--once", "--health-port", str(free_port()))
    process.start()
    try:

        async def throttled() -> bool:
            assert process.alive(), process.log_tail()
            return bool((await rig.control("GET", "/stats"))["throttled"] >= 1)

        await until(throttled, "the employees list throttled", timeout=60)
        assert process.process is not None
        process.process.kill()
        process.process.wait(10)
    finally:
        process.stop()
    before_kill = await rig.published()
    staff = {str(e["id"]) for e in rig.school.all_employees()}
    assert before_kill and not {c.event.record_id for c in before_kill if c.event.kind == "staff"}
    await rig.control("PUT", "/throttle", {"limit": None})

    restarted = await rig.once()

    assert restarted.returncode == 0, restarted.tail()
    after = await rig.published()
    assert {(c.type, c.event.record_id) for c in after} == {("staff.updated", i) for i in staff}
    assert len(before_kill) + len(after) == rig.listed_records()  # nothing missed
    assert (await rig.once()).returncode == 0
    assert await rig.published() == []  # nothing unchanged republished


async def test_once_exits_0_ran_3_held_1_refused(rig: PollProcessRig, tmp_path: Path) -> None:
    first = await rig.once()
    assert first.returncode == 0, first.tail()
    current = [s["schoolId"] for s in rig.school.all_students() if roll_of(s) == "current"]
    ledger = Ledger.from_url(rig.env["SYNC_DATABASE_URL"])
    try:
        for number, school_id in enumerate(current):  # as the consumer would have recorded them
            await ledger.put(
                SyncRecord(
                    school=SCHOOL,
                    kind="student",
                    isams_id=school_id,
                    status=Status.SYNCED,
                    managebac_id=10_000_000 + number,
                )
            )
    finally:
        await ledger.close()
    for school_id in current[: len(current) // 2]:
        await rig.control("POST", f"/delete/student/{school_id}")
    await rig.published()

    held = await rig.once()
    assert held.returncode == 3, held.tail()
    assert "--force" in held.stdout
    assert [c for c in await rig.published() if c.type == "student.deleted"] == []

    forced = await rig.once("--school", SCHOOL, "--force")
    assert forced.returncode == 0, forced.tail()
    assert {c.type for c in await rig.published()} == {"student.deleted"}

    await rig.control("PUT", "/permissions", {"contacts": False})
    refused = await rig.once()
    assert refused.returncode == 1
    assert "The user is not authorised for this request" in refused.stdout


async def test_sigterm_mid_cycle_stores_what_was_read_and_exits_0_within_30_s(
    rig: PollProcessRig,
) -> None:
    # The students list passes; the alumni list then waits on a 429 (up to 12 s).
    await rig.control("PUT", "/throttle", {"limit": 1, "windowSeconds": 12})
    process = rig.process("--health-port", str(free_port()))
    process.start()
    try:

        async def waiting() -> bool:
            assert process.alive(), process.log_tail()
            return bool((await rig.control("GET", "/stats"))["throttled"] >= 1)

        await until(waiting, "the alumni list throttled", timeout=60)
        assert process.process is not None
        stopped_at = time.monotonic()
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(30) == 0, process.log_tail()
        assert time.monotonic() - stopped_at < 30
    finally:
        process.stop()
    before = await rig.published()
    pupils = {s["schoolId"] for s in rig.school.all_students() if roll_of(s) == "current"}
    assert {c.event.record_id for c in before} >= pupils  # the students list was stored
    await rig.control("PUT", "/throttle", {"limit": None})

    assert (await rig.once()).returncode == 0
    after = await rig.published()
    assert not {c.event.record_id for c in after} & pupils  # not republished
    assert len(before) + len(after) == rig.listed_records()  # nothing missed or repeated


async def test_one_schools_isams_refusing_holds_back_no_other_school(
    rig: PollProcessRig,
) -> None:
    rig.add_school("other-school", client_secret="not-the-secret")

    finished = await rig.once()

    assert finished.returncode == 1, finished.tail()  # other-school's lists were refused
    changes = await rig.published()
    assert {c.school for c in changes} == {SCHOOL}
    assert len(changes) == rig.listed_records()
    assert "check isams.client_id and isams.client_secret" in finished.stdout
