"""Consumer throughput: fat student events through the real runner and sync service against
an instant ManageBac+ simulator, compared with a bare aiokafka loop over the same records.

    .venv/bin/python -m bench.consumer [--events 3000] [--in-flight 64]
        [--database-url URL] [--profile creates|updates]

A generated school of `--events` students; one fat `student.updated` event per student and
phase, written to a fresh topic before the phase is timed:
- **creates**: the initial sync. Each current student in a mapped year is created in
  ManageBac+, and (as the service does for every student event) their contacts are read
  from iSAMS and their parents created and linked.
- **updates**: every student's mobile number changed: one PATCH per synced student, the
  contacts read again but unchanged.
- **baseline**: a bare `AIOKafkaConsumer` loop over the same records that only counts them.
The runner and service run in this process, exactly as `isams-sync consume` builds them
(`ChangeRunner` + `open_services`, SQLite ledger unless `--database-url`); the iSAMS
and ManageBac+ simulators (no latency, no rate limit) run as their own processes. Each
figure is records/s from a phase's first record to its last. `--profile PHASE` runs that
phase under pyinstrument (installed ad hoc: `.venv/bin/pip install pyinstrument`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import platform
import resource
import secrets
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.cpu import process_cpu
from consumers.adapters.kafka.admin import delete_topics, ensure_topics
from consumers.bootstrap import open_services
from consumers.events import ChangeEvent, QueuedChange
from consumers.gc_tuning import prepare_gc_for_serving
from consumers.logs import configure_logging
from consumers.outcomes import Result
from consumers.runner import ChangeRunner, RunnerConfig
from consumers.settings import SchoolsFile, Settings, Topics
from sim.isams.emitter import WebhookEmitter
from sim.isams.school import SchoolData, generate_school
from sim.serving import free_port
from sim.stack import ManagedProcess, python_module, start_kafka, stop_kafka, wait_ready

# A fresh school per run: a reused --database-url must not find the last run's ledger rows
# (every record would look unchanged and nothing be written).
SCHOOL_ID = f"bench-{uuid.uuid4().hex[:8]}"
WEBHOOK_SECRET = "whsec_" + "YmVuY2gtY29uc3VtZXItd2ViaG9vay1zZWNyZXQh"
YEAR_GROUPS = {year: 40000000 + year for year in range(7, 14)}
PARTITIONS = 6  # as serve creates them
SEED = 2026


@dataclass(frozen=True)
class Simulators:
    """The two simulator processes and how to reach them."""

    isams: ManagedProcess
    isams_url: str
    isams_secret: str
    managebac: ManagedProcess
    managebac_url: str
    managebac_token: str


@asynccontextmanager
async def simulators(root: Path, students: int, seed: int = SEED) -> AsyncIterator[Simulators]:
    """Run the iSAMS simulator (the same generated school) and an instant ManageBac+ one."""
    isams_port, managebac_port = free_port(), free_port()
    isams_secret, managebac_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    isams = ManagedProcess(
        "iSAMS simulator",
        python_module(
            "sim.isams",
            "--port",
            str(isams_port),
            "--students",
            str(students),
            "--seed",
            str(seed),
            f"--client-secret={isams_secret}",  # (a secret may start with "-")
            "--log-level",
            "warning",
        ),
        root / "isams.log",
    )
    managebac = ManagedProcess(
        "ManageBac+ simulator",
        python_module(
            "sim.managebac",
            "--port",
            str(managebac_port),
            f"--token={managebac_token}",
            "--year-groups",
            ",".join(f"{k}:{v}" for k, v in YEAR_GROUPS.items()),
        ),
        root / "managebac.log",
    )
    sims = Simulators(
        isams=isams,
        isams_url=f"http://127.0.0.1:{isams_port}",
        isams_secret=isams_secret,
        managebac=managebac,
        managebac_url=f"http://127.0.0.1:{managebac_port}",
        managebac_token=managebac_token,
    )
    try:
        isams.start()
        managebac.start()
        await wait_ready(f"{sims.managebac_url}/_sim/stats", managebac)
        await wait_ready(f"{sims.isams_url}/_sim/stats", isams)
        yield sims
    finally:
        managebac.stop()
        isams.stop()


def school_document(sims: Simulators, rate: float = 1000) -> dict[str, Any]:
    """The schools file's one school, pointing at the simulators."""
    return {
        "id": SCHOOL_ID,
        "webhook_secrets": [WEBHOOK_SECRET],
        "isams": {
            "base_url": sims.isams_url,
            "client_id": "sync-client",
            "client_secret": sims.isams_secret,
        },
        "managebac": {
            "base_url": sims.managebac_url,
            "token": sims.managebac_token,
            "max_requests_per_second": rate,
        },
        "mappings": {"year_groups": YEAR_GROUPS},
    }


async def fat_events(school: SchoolData) -> list[dict[str, Any]]:
    """A fat `student.updated` event for every student, as the emitter would send them."""
    async with httpx.AsyncClient() as unused:  # the events go to Kafka directly
        emitter = WebhookEmitter(
            school,
            unused,
            base_url="http://127.0.0.1:9",
            school_id=SCHOOL_ID,
            secret=WEBHOOK_SECRET,
        )
        return emitter.events_for_all_students(fat=True)


async def preload(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    """Write the events to the topic as `serve` would (key `school:kind:id`)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        now = datetime.now(UTC)
        sent = []
        for index, raw in enumerate(events):
            change = QueuedChange.from_event(
                ChangeEvent.model_validate(raw), SCHOOL_ID, f"msg_bench_{index}", now
            )
            sent.append(
                await producer.send(topic, value=change.to_bytes(), key=change.key.encode())
            )
        await asyncio.gather(*sent)  # raises if Kafka did not take one
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Timing:
    """One measured pass over the records."""

    records: int
    seconds: float  # first record to last
    cpu_self: float  # CPU seconds of this process during the pass
    cpu_isams: float
    cpu_managebac: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("inf")


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def baseline(bootstrap: str, topic: str, count: int, timeout: float = 300) -> Timing:
    """A bare aiokafka loop over every partition: fetch and count, no work at all.

    Timed from the first fetch to the last record (no group join, as the consumer's figure
    also starts at its first record).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    seen = 0
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        await consumer.position(partitions[0])  # the offset lookups done before timing
        cpu = _cpu_self()
        first = time.perf_counter()
        deadline = time.monotonic() + timeout
        while seen < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"baseline: only {seen} of {count} records in {timeout:.0f}s")
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            seen += sum(len(records) for records in batch.values())
        last = time.perf_counter()
    finally:
        await consumer.stop()
    return Timing(seen, last - first, _cpu_self() - cpu, 0.0, 0.0)


@dataclass(frozen=True)
class Phase:
    """One batch of events, preloaded and then timed while the runner works through it."""

    name: str
    events: list[dict[str, Any]]


async def consume(
    bootstrap: str,
    topics: Topics,
    sims: Simulators,
    database_url: str,
    phases: list[Phase],
    options: argparse.Namespace,
) -> tuple[dict[str, Timing], Counter[str], str | None]:
    """Run the real runner and service; time each phase's records from first to last."""
    schools = SchoolsFile.model_validate({"schools": [school_document(sims)]})
    settings = Settings(
        kafka_bootstrap=bootstrap,
        kafka_topic_prefix=topics.changes.removesuffix("isams.changes"),
        consumer_group=f"bench-consumer-{uuid.uuid4().hex[:8]}",
        database_url=database_url,
    )
    outcomes: Counter[str] = Counter()
    stamps: list[float] = []
    done: list[str] = []

    def on_result(change: QueuedChange | None, result: Result) -> None:
        outcomes[result.outcome.value] += 1
        stamps.append(time.perf_counter())
        done.append(change.event.record_id if change is not None else "?")

    profiler = _profiler() if options.profile else None
    timings: dict[str, Timing] = {}
    async with open_services(settings, schools) as services:
        service = services.sync_service()
        config = RunnerConfig(
            bootstrap, settings.consumer_group, topics, max_in_flight=options.in_flight
        )
        runner = ChangeRunner(config, service.process, on_result)
        task = asyncio.create_task(runner.run())
        try:
            for phase in phases:
                mark, wanted = len(stamps), len(stamps) + len(phase.events)
                cpu = (
                    _cpu_self(),
                    process_cpu(_pid(sims.isams)),
                    process_cpu(_pid(sims.managebac)),
                )
                if profiler is not None and phase.name == options.profile:
                    profiler.start()
                # The runner is running: it takes the records as they arrive (writing them
                # costs this process ~0.1 ms each, counted in its CPU below).
                await preload(bootstrap, topics.changes, phase.events)
                timeout = 60 + 0.2 * len(phase.events)  # 5 records/s at the very least
                deadline = time.monotonic() + timeout
                while len(stamps) < wanted:
                    if task.done():
                        task.result()
                        raise SystemExit("the runner stopped early")
                    if time.monotonic() > deadline:
                        missing = {e["data"]["schoolId"] for e in phase.events} - set(done[mark:])
                        raise SystemExit(
                            f"{phase.name}: only {len(stamps) - mark} processed; no result for "
                            f"{sorted(missing)[:10]}"
                        )
                    await asyncio.sleep(0.02)
                if profiler is not None and profiler.is_running:
                    profiler.stop()
                timings[phase.name] = Timing(
                    len(phase.events),
                    stamps[wanted - 1] - stamps[mark],
                    _cpu_self() - cpu[0],
                    process_cpu(_pid(sims.isams)) - cpu[1],
                    process_cpu(_pid(sims.managebac)) - cpu[2],
                )
        finally:
            runner.stop()
            await asyncio.wait_for(task, timeout=60)
    report = (
        profiler.output_text(unicode=False, color=False, show_all="BENCH_PROFILE_ALL" in os.environ)
        if profiler is not None
        else None
    )
    return timings, outcomes, report


async def update_events(school: SchoolData) -> list[dict[str, Any]]:
    """A new mobile number for every student, and its fat event: one PATCH per synced one."""
    for index, record in enumerate(school.all_students()):
        school.edit_student(record["schoolId"], {"mobileNumber": f"07700 {index:06d}"})
    return await fat_events(school)


def _pid(process: ManagedProcess) -> int:
    assert process.process is not None
    return process.process.pid


def _profiler() -> Any:
    try:
        module = importlib.import_module("pyinstrument")
    except ImportError:
        raise SystemExit(
            "--profile needs pyinstrument: .venv/bin/pip install pyinstrument"
        ) from None
    return module.Profiler(
        async_mode=os.environ.get("BENCH_PROFILE_ASYNC", "enabled"), interval=0.001
    )


async def run(options: argparse.Namespace) -> int:
    started_kafka = start_kafka()
    bootstrap = "127.0.0.1:9092"
    prefix = f"bench-consumer-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}."
    topics = Topics.with_prefix(prefix)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-consumer-") as tmp:
            root = Path(tmp)
            database_url = options.database_url or f"sqlite+aiosqlite:///{root / 'ledger.db'}"
            baseline_topic = f"{prefix}baseline"
            every = (*topics.all(), baseline_topic)
            await ensure_topics(bootstrap, every, partitions=PARTITIONS)
            async with AsyncExitStack() as exits:
                exits.push_async_callback(delete_topics, bootstrap, every)
                school = generate_school(options.events, seed=SEED)
                sims = await exits.enter_async_context(simulators(root, options.events))
                creates = Phase("creates", await fat_events(school))
                await preload(bootstrap, baseline_topic, creates.events)
                base = await baseline(bootstrap, baseline_topic, len(creates.events))
                updates = Phase("updates", await update_events(school))
                measured, outcomes, profile = await consume(
                    bootstrap, topics, sims, database_url, [creates, updates], options
                )
                async with httpx.AsyncClient(timeout=30) as http:
                    stats = (await http.get(f"{sims.managebac_url}/_sim/stats")).json()
                    isams_stats = (await http.get(f"{sims.isams_url}/_sim/stats")).json()
    finally:
        if started_kafka:
            stop_kafka()
    _report(options, base, measured, outcomes, stats, isams_stats)
    if profile is not None:
        print(profile)
    return 0


def _report(
    options: argparse.Namespace,
    base: Timing,
    measured: dict[str, Timing],
    outcomes: Counter[str],
    managebac: dict[str, Any],
    isams: dict[str, Any],
) -> None:
    ledger = "SQLite" if options.database_url is None else options.database_url.split(":", 1)[0]
    print(f"bench.consumer {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}")
    print(
        f"{options.events} students, one fat event each per phase; {PARTITIONS} partitions; "
        f"ledger {ledger}; max_in_flight {options.in_flight}"
    )
    print(f"  baseline (bare aiokafka loop):      {base.per_second:8.0f} records/s")
    for name, timing in measured.items():
        print(
            f"  consumer, {name:8s} (runner+service): {timing.per_second:8.0f} records/s "
            f"({timing.seconds:.2f} s; ratio to baseline {timing.per_second / base.per_second:.4f}"
            f"; aim >= 1000/s {'met' if timing.per_second >= 1000 else 'NOT met'})"
        )
        per = 1e3 / timing.records
        print(
            f"      CPU ms per record: consumer {timing.cpu_self * per:.2f}, iSAMS sim "
            f"{timing.cpu_isams * per:.2f}, ManageBac+ sim {timing.cpu_managebac * per:.2f}"
        )
    print(f"  outcomes (both phases): {dict(sorted(outcomes.items()))}")
    print(
        f"  ManageBac+ requests: {managebac['total']} {managebac['requests']}; "
        f"iSAMS requests: {isams['totalRequests']} {isams['requests']}"
    )


def machine() -> str:
    """Describe the CPUs, for the report's first line."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{os.cpu_count()} x {' '.join(line.split(':', 1)[1].split())}"
    return platform.processor() or "unknown CPU"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.consumer", description=__doc__)
    parser.add_argument("--events", type=int, default=3000, help="students, one event each")
    parser.add_argument("--database-url", default=None, help="ledger; default a temp SQLite")
    parser.add_argument(
        "--profile", choices=("creates", "updates"), help="run that phase under pyinstrument"
    )
    parser.add_argument(
        "--in-flight", type=int, default=64, help="the runner's max_in_flight (default 64)"
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    options = parser.parse_args(argv)
    if options.events < 10:
        parser.error("--events must be 10 or more")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging("WARNING")  # the service's own JSON lines, with their ids and reasons
    options = parse_args(argv)
    prepare_gc_for_serving()  # as `isams-sync consume` does
    if options.uvloop:
        import uvloop

        return uvloop.run(run(options))
    return asyncio.run(run(options))


if __name__ == "__main__":
    raise SystemExit(main())
