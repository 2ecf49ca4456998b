"""Ingest benchmark: signed webhooks against `isams-sync serve` on the real Kafka broker,
side by side with a bare FastAPI endpoint that parses the same JSON and answers 202.

Both servers run as real processes under the same `uvicorn.run` settings (one worker).
Runs alternate (baseline, serve, baseline, serve, …) so drift on a noisy machine hits both,
and the report gives the median of the runs: requests/s, p50 and p99 latency, the server's
CPU time per request, and who used the machine's CPU meanwhile. Aims: serve/baseline
requests/s ≥ 0.5 and serve's p99 ≤ 50 ms at 32 connections. Figures go to docs/benchmarks.md.

    python -m bench.ingest [--duration 10] [--connections 32] [--runs 3] [--breakdown]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from bench.cpu import CpuUse, snapshot, used
from bench.loadgen import Generator, LoadError, LoadResult, find_wrk, run_load
from bench.pool import (
    SCHOOL_ID,
    SIGNATURE_LIFETIME,
    new_secret,
    signed_requests,
    student_bodies,
    write_pool,
)
from bench.variants import VARIANTS
from consumers.settings import Topics
from sim.serving import free_port
from sim.stack import (
    REPO,
    ManagedProcess,
    StackError,
    python_module,
    start_kafka,
    stop_kafka,
    sync_command,
    wait_ready,
)

AIM_RATIO = 0.5
AIM_P99_MS = 50.0
BOOTSTRAP = "127.0.0.1:9092"  # the local broker of scripts/kafka.sh
STUDENTS = 1000  # distinct students, hence Kafka keys, in the request pool
SINGLE_POOL = 1000  # distinct single-event requests, cycled through
BATCH_POOL = 40  # distinct batch requests
WARMUP_SECONDS = 3.0
BREAKDOWN = ("no-kafka",)


@dataclass
class Target:
    """One server under test."""

    name: str
    label: str
    process: ManagedProcess
    port: int
    ready_path: str
    publishes: bool  # puts what it accepts on the real Kafka topic
    loads: int = 0  # load-generator runs against it, warm-ups included
    in_flight_events: int = 0  # at most this many events were in flight when loads stopped

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid


@dataclass(frozen=True)
class Measure:
    """One measured run of one target."""

    load: LoadResult
    cpu: CpuUse


@dataclass(frozen=True)
class Summary:
    """Medians over the runs of one target."""

    rate: float
    p50_ms: float
    p99_ms: float
    server_us: float  # server CPU per request
    client_us: float  # load generator CPU per request
    server_pct: float  # of one core
    client_pct: float
    kafka_pct: float
    other_pct: float

    @classmethod
    def of(cls, measures: Sequence[Measure]) -> Summary:
        def median(values: list[float]) -> float:
            return statistics.median(values)

        return cls(
            rate=median([m.load.rate for m in measures]),
            p50_ms=median([m.load.p50_ms for m in measures]),
            p99_ms=median([m.load.p99_ms for m in measures]),
            server_us=median([m.cpu.server / m.load.requests * 1e6 for m in measures]),
            client_us=median([m.cpu.client / m.load.requests * 1e6 for m in measures]),
            server_pct=median([m.cpu.server / m.load.seconds * 100 for m in measures]),
            client_pct=median([m.cpu.client / m.load.seconds * 100 for m in measures]),
            kafka_pct=median([m.cpu.kafka / m.load.seconds * 100 for m in measures]),
            other_pct=median([m.cpu.other / m.load.seconds * 100 for m in measures]),
        )


class Bench:
    """Start the servers, measure them in alternation, check Kafka, print the report."""

    def __init__(self, options: argparse.Namespace, root: Path, generator: Generator) -> None:
        self.options = options
        self.root = root
        self.generator = generator
        self.wrk = find_wrk(install=False) if generator == "wrk" else None
        self.secret = new_secret()
        self.prefix = f"bench-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}."
        self.kafka_pid = _broker_pid()
        self.targets: list[Target] = []
        self.failed = 0

    # Set-up ----------------------------------------------------------------------------

    def start(self) -> None:
        schools = self.root / "schools.yaml"
        _write_schools_file(schools, self.secret)
        env = {
            "SYNC_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "SYNC_KAFKA_TOPIC_PREFIX": self.prefix,
            "SYNC_SCHOOLS_FILE": str(schools),
            "SYNC_DATABASE_URL": f"sqlite+aiosqlite:///{self.root / 'sync.db'}",
            "SYNC_LOG_LEVEL": self.options.log_level,
        }
        self._add("baseline", "baseline (bare FastAPI)", "/healthz", False, env, "bench.baseline")
        self._add("serve", "serve (signed, Kafka)", "/readyz", True, env, None)
        if self.options.breakdown:
            for variant in BREAKDOWN:
                self._add(variant, f"  {variant}", "/readyz", variant != "no-kafka", env, variant)
        for target in self.targets:
            target.process.start()
        for target in self.targets:
            url = f"http://127.0.0.1:{target.port}{target.ready_path}"
            asyncio.run(wait_ready(url, target.process))

    def _add(
        self,
        name: str,
        label: str,
        ready_path: str,
        publishes: bool,
        env: dict[str, str],
        module: str | None,
    ) -> None:
        port = free_port()
        if module == "bench.baseline":
            command = python_module(module, "--port", str(port))
        elif module is None:
            command = sync_command("serve", "--port", str(port))
        else:
            command = python_module("bench.variants", "--port", str(port), "--variant", module)
        process = ManagedProcess(name, command, self.root / f"{name}.log", env)
        self.targets.append(Target(name, label, process, port, ready_path, publishes))

    def stop(self) -> None:
        for target in reversed(self.targets):
            target.process.stop()
        asyncio.run(_delete_topics(BOOTSTRAP, Topics.with_prefix(self.prefix).all()))

    # Measuring -------------------------------------------------------------------------

    def rounds(
        self, bodies: list[bytes], events: int, targets: list[Target], what: str
    ) -> dict[str, list[Measure]]:
        """Warm each target up, then measure them in turn, `--runs` times."""
        for target in targets:
            self.measure(target, bodies, events, WARMUP_SECONDS)
        results: dict[str, list[Measure]] = {target.name: [] for target in targets}
        for number in range(1, self.options.runs + 1):
            for target in targets:
                measure = self.measure(target, bodies, events, self.options.duration)
                results[target.name].append(measure)
                load = measure.load
                print(
                    f"  {what} run {number}/{self.options.runs} {target.name:17}"
                    f"{load.rate:8.0f} req/s  p50 {load.p50_ms:6.1f} ms  p99 {load.p99_ms:6.1f} ms"
                    f"  server CPU {measure.cpu.server / load.seconds:4.0%}",
                    flush=True,
                )
        return results

    def measure(self, target: Target, bodies: list[bytes], events: int, seconds: float) -> Measure:
        """Sign the pool afresh, load the target for `seconds`, account the CPU."""
        if not target.process.alive():
            raise StackError(f"{target.name} exited:\n{target.process.log_tail()}")
        pool = self.root / "pool.bin"
        write_pool(pool, signed_requests(bodies, self.secret, "127.0.0.1"))
        before = snapshot(target.pid, self.kafka_pid)
        load = run_load(
            self.generator,
            port=target.port,
            pool=pool,
            connections=self.options.connections,
            seconds=seconds,
            wrk=self.wrk,
        )
        cpu = used(before, snapshot(target.pid, self.kafka_pid))
        self.failed += load.failed
        target.loads += 1
        target.in_flight_events += self.options.connections * events
        return Measure(load, cpu)

    # Checking --------------------------------------------------------------------------

    def check_kafka(self) -> list[str]:
        """Check every request was accepted and Kafka holds exactly what was accepted.

        When a load generator stops, the requests in flight on its connections are cut
        off. A service answers 400 (incomplete body) to those whose body it had not read
        yet, and the events of those it was publishing may reach Kafka with no 202 sent
        (at-least-once: a real sender would retry). So up to `connections` 400s, and up to
        `connections` requests' worth of extra records, per load-generator run are
        expected, and nothing else.
        """
        problems: list[str] = []
        accepted = cut_off = 0
        publishers = [t for t in self.targets if t.name != "baseline" and t.publishes]
        for target in self.targets:
            if target.name == "baseline":
                continue
            statuses, events = _service_counts(target.port)
            cut_off += statuses.pop(400, 0)
            statuses.pop(202, None)
            if statuses:
                problems.append(f"{target.name} answered {dict(statuses)} (status: requests)")
            if target.publishes:
                accepted += events
        loads = sum(target.loads for target in self.targets if target.name != "baseline")
        if cut_off > loads * self.options.connections:
            problems.append(f"{cut_off} requests answered 400: more than cut-offs explain")
        held = asyncio.run(_records_in(BOOTSTRAP, Topics.with_prefix(self.prefix).changes))
        extra = held - accepted
        if not 0 <= extra <= sum(target.in_flight_events for target in publishers):
            problems.append(f"Kafka holds {held} records, the services accepted {accepted} events")
        else:
            print(
                f"checks: Kafka holds the {accepted} events answered 202 (+{extra} of requests"
                f" cut off when a load stopped); {cut_off} cut-off requests answered 400;"
                " no other error"
            )
        return problems


def run(options: argparse.Namespace) -> int:
    """Run the whole benchmark; return the exit code."""
    generator = _choose_generator(options.loadgen)
    started_kafka = start_kafka()
    root = Path(tempfile.mkdtemp(prefix="isams-bench-"))
    try:
        bench = Bench(options, root, generator)
        try:
            return _run(bench, options)
        except (StackError, LoadError) as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            bench.stop()
    finally:
        if options.keep_logs:
            print(f"logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        if started_kafka:
            stop_kafka()


def _run(bench: Bench, options: argparse.Namespace) -> int:
    print(_header(options, bench.generator), flush=True)
    bench.start()
    single = student_bodies(STUDENTS, 1, SINGLE_POOL)
    single_results = bench.rounds(single, 1, bench.targets, "single")
    batch_results: dict[str, list[Measure]] = {}
    batch_targets = bench.targets if options.breakdown else bench.targets[:2]
    if options.batch > 1:
        batch = student_bodies(STUDENTS, options.batch, BATCH_POOL)
        batch_results = bench.rounds(batch, options.batch, batch_targets, f"batch{options.batch}")
    problems = bench.check_kafka()
    if bench.failed:
        problems.append(f"{bench.failed} requests failed (socket error or non-2xx)")
    print()
    print(_header(options, bench.generator))
    print(_report(bench.targets, single_results, f"one fat student event ({len(single[0])} B)", 1))
    if batch_results:
        size = len(batch[0]) // 1024
        title = f"{options.batch}-event batches ({size} KiB)"
        print(_report(batch_targets, batch_results, title, options.batch))
    if options.breakdown:
        print("\nbreakdown: serve with one cost knocked out (bench/variants.py):")
        for variant in BREAKDOWN:
            print(f"  {variant:17} {VARIANTS[variant]}")
    print(_verdict(single_results))
    for problem in problems:
        print(f"INVALID: {problem}")
    return 1 if problems else 0


# Report --------------------------------------------------------------------------------


def _header(options: argparse.Namespace, generator: Generator) -> str:
    return (
        f"ingest benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores "
        f"({_cpu_model()}), Python {platform.python_version()}; load: {generator}, "
        f"{options.connections} connections, {options.runs} alternating runs of "
        f"{options.duration:g} s per server, medians; serve log level {options.log_level}"
    )


def _report(
    targets: list[Target], results: dict[str, list[Measure]], title: str, events: int
) -> str:
    unit = "req/s" if events == 1 else "events/s"
    lines = [
        "",
        title,
        f"{'':26}{unit:>9}{'p50 ms':>8}{'p99 ms':>8}  {'CPU µs/request':>15}"
        f"   {'CPU % of one core':>29}",
        f"{'':26}{'':9}{'':8}{'':8}  {'server':>7} {'client':>7}"
        f"   {'server':>7}{'client':>7}{'kafka':>7}{'other':>7}",
    ]
    for target in targets:
        s = Summary.of(results[target.name])
        lines.append(
            f"{target.label:26}{s.rate * events:9.0f}{s.p50_ms:8.1f}{s.p99_ms:8.1f}"
            f"  {s.server_us:7.0f} {s.client_us:7.0f}"
            f"   {s.server_pct:7.0f}{s.client_pct:7.0f}{s.kafka_pct:7.0f}{s.other_pct:7.0f}"
        )
    ratio = _ratio(results)
    lines.append(f"{'serve / baseline':26}{ratio:9.2f}  (median of the runs' ratios)")
    return "\n".join(lines)


def _ratio(results: dict[str, list[Measure]]) -> float:
    pairs = zip(results["serve"], results["baseline"], strict=True)
    return statistics.median(serve.load.rate / base.load.rate for serve, base in pairs)


def _verdict(results: dict[str, list[Measure]]) -> str:
    ratio = _ratio(results)
    p99 = Summary.of(results["serve"]).p99_ms

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return (
        f"\naims at one event per request: ratio {ratio:.2f} ≥ {AIM_RATIO} "
        f"{mark(ratio >= AIM_RATIO)}; serve p99 {p99:.1f} ms ≤ {AIM_P99_MS:g} ms "
        f"{mark(p99 <= AIM_P99_MS)}"
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return " ".join(line.split(":", 1)[1].split())
    return platform.processor() or "unknown CPU"


# Helpers -------------------------------------------------------------------------------


def _choose_generator(wanted: str) -> Generator:
    if wanted == "python":
        return "python"
    if find_wrk(install=True):
        return "wrk"
    if wanted == "wrk":
        raise SystemExit("wrk is not installed and could not be (apt-get install wrk)")
    print("wrk unavailable: using the Python load generator (bench.pyload)")
    return "python"


def _write_schools_file(path: Path, secret: str) -> None:
    """One school with the benchmark's secret; iSAMS and ManageBac+ are never called."""
    school = {
        "id": SCHOOL_ID,
        "webhook_secrets": [secret],
        "isams": {"base_url": "http://127.0.0.1:9", "client_id": "bench", "client_secret": "-"},
        "managebac": {"base_url": "http://127.0.0.1:9", "token": "-"},
    }
    path.write_text(yaml.safe_dump({"schools": [school]}, sort_keys=False))


def _broker_pid() -> int | None:
    """Return the pid of scripts/kafka.sh's broker, to account its CPU; None if unknown."""
    try:
        pid = int((REPO / "var" / "kafka" / "broker.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"kafka.Kafka" in cmdline else None


def _service_counts(port: int) -> tuple[Counter[int], int]:
    """Return (requests answered, by status; events accepted) from a service's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    statuses: Counter[int] = Counter()
    events = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            if family.name == "isams_sync_webhook_requests":
                statuses[int(sample.labels["status"])] += int(sample.value)
            elif family.name == "isams_sync_events_accepted":
                events += int(sample.value)
    return statuses, events


async def _records_in(bootstrap: str, topic: str) -> int:
    """Return how many records `topic` holds (the sum of its partitions' end offsets)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def _delete_topics(bootstrap: str, topics: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [topic for topic in topics if topic in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description="Benchmark `isams-sync serve` against a bare FastAPI endpoint.",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per measured run (default 10)"
    )
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per server")
    parser.add_argument(
        "--batch",
        type=int,
        default=50,
        help="events per request of the second line (events/s); 1 skips it (default 50)",
    )
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk (installed if missing, as root), else bench.pyload",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="SYNC_LOG_LEVEL of serve (default: the shipped INFO)"
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also measure serve with one cost knocked out at a time (bench.variants)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the servers' logs (printed path)"
    )
    options = parser.parse_args(argv)
    if not 1 <= options.duration <= SIGNATURE_LIFETIME - 60:
        parser.error(f"--duration must be 1 to {SIGNATURE_LIFETIME - 60:g} s (signatures expire)")
    if options.runs < 1 or options.connections < 1:
        parser.error("--runs and --connections must be at least 1")
    if not 1 <= options.batch <= 500:
        parser.error("--batch must be 1 to 500")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
