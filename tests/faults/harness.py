"""The fault tests' stack and end checks: real processes, a real broker, the pure core as oracle.

Each test gets its own topics, consumer group, ledger and simulators:
- the iSAMS simulator in this process (its SchoolData is shared with the webhook emitter,
  which edits records as it goes), `/_sim/down` for outages;
- the ManageBac+ simulator as its own process (`python -m sim.managebac`), `/_sim/faults`;
- `isams-sync serve`'s app on uvicorn in this process (its Kafka publisher is the real one);
- `isams-sync consume` as real processes, so a test can SIGKILL or SIGTERM them.

At the end (`FaultStack.settle_and_check`) every test proves the same three things:
1. every accepted event was applied or dead-lettered: each accepted event is on
   `isams.changes`, and the group's committed offsets equal the end offsets of
   `isams.changes` and `isams.changes.retry` (so each record, and each parked retry, was
   finished); dead letters are counted from the DLQ topic;
2. ManageBac+ holds no duplicate student (student_id, e-mail or identifier);
3. ManageBac+ equals iSAMS as the pure core maps it (`map_student(parse_student(...))`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.main import open_app
from consumers.adapters.kafka.admin import delete_topics, ensure_topics
from consumers.adapters.kafka.dlq import list_dead_letters
from consumers.adapters.kafka.reader import read_to_end
from consumers.domain.plan import Skip
from consumers.domain.students import StudentRules, map_student, parse_student
from consumers.events import QueuedChange
from consumers.settings import Settings, Topics, load_schools
from sim.isams.app import SimConfig as IsamsConfig
from sim.isams.app import create_app as create_isams_app
from sim.isams.emitter import Event, WebhookEmitter
from sim.isams.school import STUDENT_EXPANSIONS, SchoolData, expand_record, generate_school
from sim.serving import free_port, serve_app
from sim.stack import ManagedProcess, python_module, sync_command, wait_ready

SCHOOL = "fault-school"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"fault-tests-webhook-secret-32by!").decode()
MANAGEBAC_TOKEN = "fault-managebac-token"
ISAMS_CLIENT_SECRET = "fault-isams-client-secret"
YEAR_GROUPS = {year: 30000000 + year for year in range(7, 14)}
PLACEHOLDER_DOMAIN = "placeholder.invalid"
RULES = StudentRules(year_groups=YEAR_GROUPS, placeholder_email_domain=PLACEHOLDER_DOMAIN)
PARTITIONS = 6  # as many as `serve` gives the topics it creates
RETRY_DELAYS = "1,2,3,5,8,13"  # SYNC_RETRY_DELAYS: ~32 s of parking before the DLQ
# Every field the students mapping writes (docs/design.md §3), attendance_start_date aside (create
# only): a field the oracle leaves out must be empty in ManageBac+ (never synced or cleared).
STUDENT_FIELDS = (
    "first_name",
    "middle_name",
    "last_name",
    "nickname",
    "birthday",
    "gender",
    "year_group_id",
    "email",
    "mobile_phone_number",
    "street_address",
    "street_address_ii",
    "city",
    "state",
    "zipcode",
    "identifier",
    "student_id",
    "nationalities",
    "languages",
)
SUMMARIES: list[str] = []  # the counts lines, shown by tests/faults/conftest.py at the end

Record: TypeAlias = ConsumerRecord[Any, Any]
EventId = tuple[str, str, str, datetime]  # webhook id, type, record id, event timestamp


def event_id(webhook_id: str, event: Event) -> EventId:
    """Name one event the same way on the sending side and on Kafka."""
    return (
        webhook_id,
        str(event["type"]),
        str(event["data"]["schoolId"]),
        datetime.fromisoformat(str(event["timestamp"])),
    )


def change_id(change: QueuedChange) -> EventId:
    assert change.data.schoolId is not None
    return (change.webhook_id, change.type, change.data.schoolId, change.timestamp)


class MillisecondClock:
    """A wall clock that moves at least 1 ms per reading: iSAMS's `lastUpdated` resolution.

    The iSAMS simulator stamps each edit with `clock()` truncated to milliseconds, so two
    edits of one student within the same millisecond (a sender catching up after a stall)
    would carry the same `lastUpdated` and a fat event of the first could not be told from
    the second. Real iSAMS edits are seconds apart; this keeps the simulated ones distinct.
    """

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        now = datetime.now(UTC)
        self._last = max(now, self._last + timedelta(milliseconds=1))
        return self._last


@dataclass(frozen=True)
class Counts:
    """What a fault test reports: the line the closing note quotes."""

    fault: str
    accepted: int
    applied: int
    dead_lettered: int
    duplicates: int
    parked: int
    on_kafka: int
    managebac_statuses: dict[str, int]

    def line(self) -> str:
        statuses = ",".join(f"{k}:{v}" for k, v in sorted(self.managebac_statuses.items()))
        return (
            f"fault={self.fault} accepted={self.accepted} applied={self.applied} "
            f"dead_lettered={self.dead_lettered} duplicates={self.duplicates} "
            f"(parked for retry={self.parked}, records on isams.changes={self.on_kafka}, "
            f"ManageBac+ answers {statuses})"
        )


@dataclass
class FaultStack:
    """The running stack of one fault test, with the knobs the faults need."""

    name: str
    root: Path
    bootstrap: str
    topics: Topics
    group: str
    school: SchoolData
    isams_url: str
    managebac_url: str
    ingest_url: str
    env: dict[str, str]
    http: httpx.AsyncClient
    emitter: WebhookEmitter
    consumers: list[ManagedProcess] = field(default_factory=list)
    accepted: set[EventId] = field(default_factory=set)
    sent: int = 0
    _sends: set[asyncio.Task[None]] = field(default_factory=set)

    # Processes -------------------------------------------------------------------------

    async def start_consumer(self) -> ManagedProcess:
        """Start one more `isams-sync consume` process and wait until it is ready."""
        port = free_port()
        index = len(self.consumers) + 1
        process = ManagedProcess(
            f"consume #{index}",
            sync_command("consume", "--health-port", str(port), "--health-host", "127.0.0.1"),
            self.root / f"consume-{index}.log",
            self.env,
        )
        self.consumers.append(process)
        process.start()
        await wait_ready(f"http://127.0.0.1:{port}/readyz", process, timeout=60)
        return process

    def kill(self, process: ManagedProcess) -> None:
        """SIGKILL: no drain, no commit, no leaving the group."""
        assert process.process is not None
        process.process.send_signal(signal.SIGKILL)
        process.process.wait(10)

    async def terminate(self, process: ManagedProcess, timeout: float = 45.0) -> int:
        """SIGTERM and wait (without blocking the in-process simulators); return the code."""
        assert process.process is not None
        process.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process.process.poll() is None:
            if time.monotonic() > deadline:
                process.process.kill()
                process.process.wait(10)
                raise AssertionError(f"{process.name} ignored SIGTERM for {timeout:.0f}s")
            await asyncio.sleep(0.1)
        return process.process.returncode

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log_tail(30)}" for p in self.consumers)

    # Simulators ------------------------------------------------------------------------

    async def managebac_faults(self, **faults: Any) -> None:
        response = await self.http.put(f"{self.managebac_url}/_sim/faults", json=faults)
        response.raise_for_status()

    async def isams_down(self, seconds: float) -> None:
        response = await self.http.post(f"{self.isams_url}/_sim/down", json={"seconds": seconds})
        response.raise_for_status()

    async def managebac_students(self) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.managebac_url}/_sim/state")
        response.raise_for_status()
        students: list[dict[str, Any]] = response.json()["students"]
        return students

    async def managebac_stats(self) -> dict[str, Any]:
        response = await self.http.get(f"{self.managebac_url}/_sim/stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    # Sending ---------------------------------------------------------------------------

    async def send(self, events: list[Event]) -> None:
        """Send one request; it must end accepted (the emitter retries 503s and 429s)."""
        response = await self.emitter.send(events)
        assert response.status_code == 202, (
            f"webhook answered {response.status_code} after the emitter's retries: "
            f"{response.text[:300]}"
        )
        webhook_id = response.request.headers["webhook-id"]
        self.accepted.update(event_id(webhook_id, event) for event in events)
        self.sent += len(events)

    async def send_all_students(self, batch_size: int = 10) -> None:
        """The initial sync: a fat event for every student, `batch_size` per request."""
        events = self.emitter.events_for_all_students(fat=True)
        for start in range(0, len(events), batch_size):
            await self.send(events[start : start + batch_size])

    async def stream_edits(
        self,
        count: int,
        rate: float,
        fat_share: float = 0.5,
        seed: int = 7,
        concurrency: int = 16,
    ) -> None:
        """Edit random students at `rate` per second, one event per request, several requests
        in flight (a stalled request does not stop the stream, as with a real sender)."""
        rng = random.Random(seed)  # noqa: S311  (which students to edit, not secrets)
        slots = asyncio.Semaphore(concurrency)
        start = time.monotonic()
        edits = self.emitter.random_edits(count, rng)
        for index in range(count):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            event = next(edits)  # the edit happens in iSAMS now, then the event goes out
            if rng.random() >= fat_share:
                event = {**event, "data": {"schoolId": event["data"]["schoolId"]}}
            task = asyncio.create_task(self.send([event]))
            task.add_done_callback(lambda _: slots.release())
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        await self.drain_sends()

    async def drain_sends(self) -> None:
        while self._sends:
            done = await asyncio.gather(*self._sends, return_exceptions=True)
            for outcome in done:
                if isinstance(outcome, BaseException):
                    raise outcome

    async def until(
        self, condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not await condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {what} not reached in {timeout:.0f}s")
            await asyncio.sleep(0.1)

    async def sent_at_least(self, count: int) -> bool:
        return self.sent >= count

    async def managebac_has_students(self, count: int) -> bool:
        return len(await self.managebac_students()) >= count

    async def managebac_writes(self) -> int:
        return int((await self.managebac_stats())["writes"])

    async def managebac_has_writes(self, count: int) -> bool:
        return await self.managebac_writes() >= count

    # The end checks --------------------------------------------------------------------

    async def lag(self) -> int:
        """Records of `isams.changes` and `.retry` not yet committed by the group."""
        ends = await end_offsets(self.bootstrap, [self.topics.changes, self.topics.retry])
        committed = await committed_offsets(self.bootstrap, self.group)
        return sum(end - committed.get(tp, 0) for tp, end in ends.items())

    async def settle(self, timeout: float = 180.0) -> None:
        """Wait until the group committed everything (twice in a row, a second apart)."""
        deadline = time.monotonic() + timeout
        settled = 0
        lag = -1
        while settled < 2:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: {lag} records still uncommitted after {timeout:.0f}s\n"
                    + self.logs()
                )
            for process in self.consumers:
                if process.process is not None and process.process.returncode is None:
                    assert process.alive(), f"{process.name} died:\n{process.log_tail(40)}"
            lag = await self.lag()
            settled = settled + 1 if lag == 0 else 0
            await asyncio.sleep(1.0)

    async def settle_and_check(self) -> Counts:
        """Run the three end checks and print the counts line."""
        await self.settle()
        on_kafka = await read_topic(self.bootstrap, self.topics.changes)
        queued = {change_id(QueuedChange.from_bytes(r.value)) for r in on_kafka}
        lost = self.accepted - queued
        assert not lost, f"{len(lost)} accepted events are not on {self.topics.changes}"
        parked = len(await read_topic(self.bootstrap, self.topics.retry))
        letters = await list_dead_letters(self.bootstrap, self.topics)
        dead = {change_id(QueuedChange.from_bytes(letter.value)) for letter in letters}
        students = await self.managebac_students()
        duplicates = count_duplicates(students)
        counts = Counts(
            fault=self.name,
            accepted=len(self.accepted),
            applied=len(self.accepted - dead),
            dead_lettered=len(dead & self.accepted),
            duplicates=duplicates,
            parked=parked,
            on_kafka=len(on_kafka),
            managebac_statuses=dict((await self.managebac_stats())["statuses"]),
        )
        print(counts.line())  # the summary the closing note quotes
        SUMMARIES.append(counts.line())
        assert duplicates == 0, f"ManageBac+ holds duplicate students: {duplicate_keys(students)}"
        reasons = Counter(letter.error_class for letter in letters)
        assert not letters, f"dead letters where none were expected: {dict(reasons)}"
        mismatches = compare_with_isams(self.school, students)
        if mismatches:
            codes = {line.split(":", 1)[0].split(".", 1)[0] for line in mismatches}
            self._diagnose(codes, on_kafka, students)
        assert not mismatches, (
            f"ManageBac+ differs from iSAMS for {len(mismatches)} students "
            f"(their events: {self.root / 'diagnosis.json'}):\n" + "\n".join(mismatches[:20])
        )
        return counts

    def _diagnose(
        self, codes: set[str], on_kafka: list[Record], students: list[dict[str, Any]]
    ) -> None:
        """Write what happened to the students that differ, for whoever reads the failure."""
        ids = {r["schoolId"]: r["schoolCode"] for r in self.school.all_students()}
        events = [
            {
                "partition": record.partition,
                "offset": record.offset,
                "code": ids.get(change.data.schoolId),
                **change.model_dump(mode="json", exclude={"school"}),
            }
            for record in on_kafka
            if ids.get(str((change := QueuedChange.from_bytes(record.value)).data.schoolId))
            in codes
        ]
        report = {
            "isams": [r for r in self.school.all_students() if r["schoolCode"] in codes],
            "managebac": [s for s in students if s.get("student_id") in codes],
            "events": events,
        }
        (self.root / "diagnosis.json").write_text(json.dumps(report, indent=1, default=str))


@asynccontextmanager
async def fault_stack(
    name: str,
    root: Path,
    bootstrap: str,
    *,
    students: int = 120,
    seed: int = 1,
    managebac_latency_ms: int = 0,
    client_rate: int = 300,
) -> AsyncIterator[FaultStack]:
    """Run the stack for one fault test; stop everything it started, also on failure."""
    run = f"{name}-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(f"fault-{run}.")
    group = f"fault-{run}"
    await ensure_topics(bootstrap, topics.all(), partitions=PARTITIONS)
    school = generate_school(students, seed=seed)
    school.clock = MillisecondClock()
    isams_config = IsamsConfig(client_secret=ISAMS_CLIENT_SECRET)
    managebac_port = free_port()
    managebac_url = f"http://127.0.0.1:{managebac_port}"
    managebac = ManagedProcess(
        "ManageBac+ simulator",
        python_module(
            "sim.managebac",
            "--port",
            str(managebac_port),
            "--token",
            MANAGEBAC_TOKEN,
            "--year-groups",
            ",".join(f"{k}:{v}" for k, v in YEAR_GROUPS.items()),
            "--latency-ms",
            str(managebac_latency_ms),
            "--seed",
            str(seed),
        ),
        root / "managebac.log",
    )
    stack: FaultStack | None = None
    async with AsyncExitStack() as exits:
        exits.push_async_callback(delete_topics, bootstrap, topics.all())
        exits.callback(managebac.stop)
        managebac.start()
        isams_url = await exits.enter_async_context(
            serve_app(create_isams_app(isams_config, school), lifespan="off")
        )
        await wait_ready(f"{managebac_url}/_sim/stats", managebac, timeout=60)
        schools_file = _write_schools_file(root, isams_url, managebac_url, client_rate)
        env = {
            "SYNC_KAFKA_BOOTSTRAP": bootstrap,
            "SYNC_KAFKA_TOPIC_PREFIX": topics.changes.removesuffix("isams.changes"),
            "SYNC_CONSUMER_GROUP": group,
            "SYNC_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'ledger.db'}",
            "SYNC_SCHOOLS_FILE": str(schools_file),
            "SYNC_LOG_LEVEL": "INFO",
            "SYNC_RETRY_DELAYS": RETRY_DELAYS,
            "FAULT_ISAMS_CLIENT_SECRET": ISAMS_CLIENT_SECRET,
            "FAULT_MANAGEBAC_TOKEN": MANAGEBAC_TOKEN,
        }
        settings = Settings(
            kafka_bootstrap=bootstrap,
            kafka_topic_prefix=env["SYNC_KAFKA_TOPIC_PREFIX"],
            consumer_group=group,
            database_url=env["SYNC_DATABASE_URL"],
            schools_file=schools_file,
        )
        schools = load_schools(schools_file, environ=env)
        ingest_app = await exits.enter_async_context(open_app(settings, schools))
        ingest_url = await exits.enter_async_context(serve_app(ingest_app))
        http = await exits.enter_async_context(httpx.AsyncClient(timeout=30.0))
        emitter = WebhookEmitter(
            school,
            http,
            base_url=ingest_url,
            school_id=SCHOOL,
            secret=WEBHOOK_SECRET,
            fat=True,
            max_attempts=60,
            max_retry_wait=5.0,
        )
        stack = FaultStack(
            name=name,
            root=root,
            bootstrap=bootstrap,
            topics=topics,
            group=group,
            school=school,
            isams_url=isams_url,
            managebac_url=managebac_url,
            ingest_url=ingest_url,
            env=env,
            http=http,
            emitter=emitter,
        )
        try:
            yield stack
        finally:
            for task in stack._sends:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, AssertionError):
                await stack.drain_sends()
            for process in stack.consumers:
                if process.alive():
                    with contextlib.suppress(AssertionError):
                        await stack.terminate(process)


def _write_schools_file(root: Path, isams_url: str, managebac_url: str, client_rate: int) -> Path:
    path = root / "schools.yaml"
    document = {
        "schools": [
            {
                "id": SCHOOL,
                "webhook_secrets": [WEBHOOK_SECRET],
                "isams": {
                    "base_url": isams_url,
                    "client_id": IsamsConfig().client_id,
                    "client_secret": "${FAULT_ISAMS_CLIENT_SECRET}",
                },
                "managebac": {
                    "base_url": managebac_url,
                    "token": "${FAULT_MANAGEBAC_TOKEN}",
                    "max_requests_per_second": client_rate,
                },
                "mappings": {"year_groups": YEAR_GROUPS},
                "placeholder_email_domain": PLACEHOLDER_DOMAIN,
            }
        ]
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# Kafka -------------------------------------------------------------------------------------


def _partitions(topics: Iterable[str], count: int = PARTITIONS) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for topic in topics for p in range(count)]


async def end_offsets(
    bootstrap: str, topics: list[str], partitions: int = PARTITIONS
) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(
            _partitions(topics, partitions)
        )
        return ends
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Record]:
    """Return every record of a topic (tombstones aside), from the start to its current end."""
    return [r for r in await read_to_end(bootstrap, topic, timeout) if r.value is not None]


# The oracle --------------------------------------------------------------------------------


def duplicate_keys(students: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Return, per unique field, the values more than one ManageBac+ student has."""
    found: dict[str, list[str]] = {}
    for name in ("student_id", "email", "identifier"):
        values = Counter(
            str(s[name]).casefold() if name == "email" else str(s[name])
            for s in students
            if s.get(name)
        )
        repeated = [value for value, n in values.items() if n > 1]
        if repeated:
            found[name] = repeated
    return found


def count_duplicates(students: list[dict[str, Any]]) -> int:
    """Count the students beyond the first that share a student_id, e-mail or identifier."""
    total = 0
    for name in ("student_id", "email", "identifier"):
        values = Counter(
            str(s[name]).casefold() if name == "email" else str(s[name])
            for s in students
            if s.get(name)
        )
        total += sum(n - 1 for n in values.values() if n > 1)
    return total


def compare_with_isams(school: SchoolData, students: list[dict[str, Any]]) -> list[str]:
    """Say where ManageBac+ differs from what the pure core makes of iSAMS (empty = equal).

    Current students the core maps must be in ManageBac+, unarchived, with every mapped
    field equal (attendance_start_date aside) and every field the core leaves out empty.
    Others (not current, or skipped) must be absent or archived. No ManageBac+ student may
    lack an iSAMS record.
    """
    remote = {str(s.get("student_id")): s for s in students}
    problems: list[str] = []
    codes: set[str] = set()
    for record in school.all_students():
        raw = expand_record("student", record, STUDENT_EXPANSIONS)
        parsed = parse_student(raw)
        code = str(record.get("schoolCode"))
        codes.add(code)
        mapped = map_student(parsed, RULES) if not isinstance(parsed, Skip) else parsed
        there = remote.get(code)
        if isinstance(parsed, Skip) or not parsed.is_current or isinstance(mapped, Skip):
            if there is not None and not there.get("archived"):
                why = mapped.reason if isinstance(mapped, Skip) else "not current"
                problems.append(f"{code}: in ManageBac+ and unarchived, but {why}")
            continue
        if there is None:
            problems.append(f"{code}: missing from ManageBac+")
            continue
        if there.get("archived"):
            problems.append(f"{code}: archived in ManageBac+ but current in iSAMS")
        for name in STUDENT_FIELDS:
            wanted = mapped.fields.get(name)
            got = there.get(name)
            if wanted is None:
                if got not in (None, "", []):
                    problems.append(f"{code}.{name}: ManageBac+ has a value iSAMS has not")
            elif got != wanted:
                problems.append(f"{code}.{name}: ManageBac+ {got!r} != iSAMS {wanted!r}")
    for code in set(remote) - codes:
        problems.append(f"{code}: in ManageBac+ but not in iSAMS")
    return problems
