"""End-to-end latency at a steady rate: webhook received by `serve` → ManageBac+ write.

    .venv/bin/python -m bench.latency [--rate 100] [--duration 30] [--students 600] [--thin]

The whole stack as deployed, each part its own process: `isams-sync serve`, `isams-sync
consume`, the ManageBac+ simulator (instant: no latency, no rate limit), on the local Kafka
broker; the iSAMS simulator runs in this process with the webhook emitter, sharing its
school. First an initial sync of every student (not timed). Then, for `--duration`
seconds, `--rate` signed webhooks per second, one event each, each changing the mobile
number of a synced student (round robin, so one student's edits are seconds apart and
each edit is exactly one ManageBac+ write). Per edit:
- received: the `received_at` that `serve` put on the Kafka record;
- written: the ManageBac+ simulator's own time of the write (`GET /_sim/writes`).
The figures are percentiles of written - received (and of written - sent, the sender's
view), plus the consumer's own `isams_sync_end_to_end_seconds` histogram as a check.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.consumer import (
    PARTITIONS,
    SCHOOL_ID,
    SEED,
    WEBHOOK_SECRET,
    YEAR_GROUPS,
    machine,
)
from bench.cpu import process_cpu
from consumers.adapters.kafka.admin import delete_topics, ensure_topics
from consumers.adapters.kafka.reader import read_to_end
from consumers.events import QueuedChange
from consumers.settings import Topics
from sim.isams.app import SimConfig as IsamsConfig
from sim.isams.app import create_app as create_isams_app
from sim.isams.emitter import WebhookEmitter
from sim.isams.school import SchoolData, generate_school
from sim.serving import free_port, serve_app
from sim.stack import (
    ManagedProcess,
    python_module,
    start_kafka,
    stop_kafka,
    sync_command,
    wait_ready,
)

PROCESSED = "isams_sync_changes_processed"
END_TO_END = "isams_sync_end_to_end_seconds"


@dataclass
class Stack:
    """The running processes and where to reach them."""

    school: SchoolData
    emitter: WebhookEmitter
    http: httpx.AsyncClient
    managebac_url: str
    consume_url: str
    processes: dict[str, ManagedProcess]

    async def processed(self) -> int:
        text = (await self.http.get(f"{self.consume_url}/metrics")).text
        return int(
            sum(
                sample.value
                for family in text_string_to_metric_families(text)
                if family.name == PROCESSED
                for sample in family.samples
                if sample.name.endswith("_total")
            )
        )

    async def histogram(self) -> dict[float, float]:
        """Return the consumer's end-to-end histogram: upper bound → cumulative count."""
        text = (await self.http.get(f"{self.consume_url}/metrics")).text
        buckets: dict[float, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name == END_TO_END:
                for sample in family.samples:
                    if sample.name.endswith("_bucket"):
                        buckets[float(sample.labels["le"])] = sample.value
        return buckets

    async def wait_processed(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (done := await self.processed()) < count:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"only {done} of {count} changes processed in {timeout:.0f}s; consume's "
                    f"log ends:\n{self.processes['consume'].log_tail(20)}"
                )
            for process in self.processes.values():
                if not process.alive():
                    raise SystemExit(f"{process.name} died:\n{process.log_tail()}")
            await asyncio.sleep(0.2)


async def start_stack(
    exits: AsyncExitStack, root: Path, bootstrap: str, topics: Topics, students: int
) -> Stack:
    school = generate_school(students, seed=SEED)
    isams_config = IsamsConfig(client_secret=secrets.token_urlsafe(16))
    isams_url = await exits.enter_async_context(
        serve_app(create_isams_app(isams_config, school), lifespan="off")
    )
    managebac_token = secrets.token_urlsafe(16)
    ports = {name: free_port() for name in ("managebac", "serve", "consume")}
    managebac_url = f"http://127.0.0.1:{ports['managebac']}"
    schools_file = root / "schools.yaml"
    school_entry: dict[str, Any] = {
        "id": SCHOOL_ID,
        "webhook_secrets": [WEBHOOK_SECRET],
        "isams": {
            "base_url": isams_url,
            "client_id": isams_config.client_id,
            "client_secret": isams_config.client_secret,
        },
        "managebac": {
            "base_url": managebac_url,
            "token": managebac_token,
            "max_requests_per_second": 1000,
        },
        "mappings": {"year_groups": YEAR_GROUPS},
    }
    schools_file.write_text(yaml.safe_dump({"schools": [school_entry]}, sort_keys=False))
    env = {
        "SYNC_KAFKA_BOOTSTRAP": bootstrap,
        "SYNC_KAFKA_TOPIC_PREFIX": topics.changes.removesuffix("isams.changes"),
        "SYNC_CONSUMER_GROUP": f"bench-latency-{uuid.uuid4().hex[:8]}",
        "SYNC_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'ledger.db'}",
        "SYNC_SCHOOLS_FILE": str(schools_file),
        "SYNC_LOG_LEVEL": "WARNING",
    }
    processes = {
        "managebac": ManagedProcess(
            "ManageBac+ simulator",
            python_module(
                "sim.managebac",
                "--port",
                str(ports["managebac"]),
                f"--token={managebac_token}",  # (a token may start with "-")
                "--year-groups",
                ",".join(f"{k}:{v}" for k, v in YEAR_GROUPS.items()),
            ),
            root / "managebac.log",
        ),
        "serve": ManagedProcess(
            "isams-sync serve",
            sync_command("serve", "--port", str(ports["serve"])),
            root / "serve.log",
            env,
        ),
        "consume": ManagedProcess(
            "isams-sync consume",
            sync_command(
                "consume", "--health-port", str(ports["consume"]), "--health-host", "127.0.0.1"
            ),
            root / "consume.log",
            env,
        ),
    }
    for process in processes.values():
        exits.callback(process.stop)
        process.start()
    await wait_ready(f"{managebac_url}/_sim/stats", processes["managebac"])
    await wait_ready(f"http://127.0.0.1:{ports['serve']}/readyz", processes["serve"])
    consume_url = f"http://127.0.0.1:{ports['consume']}"
    await wait_ready(f"{consume_url}/readyz", processes["consume"])
    http = await exits.enter_async_context(httpx.AsyncClient(timeout=30.0))
    emitter = WebhookEmitter(
        school,
        http,
        base_url=f"http://127.0.0.1:{ports['serve']}",
        school_id=SCHOOL_ID,
        secret=WEBHOOK_SECRET,
        batch_size=50,
    )
    return Stack(school, emitter, http, managebac_url, consume_url, processes)


@dataclass(frozen=True)
class Sent:
    """One timed edit: whose, and when the sender sent it (wall clock)."""

    school_id: str
    student_id: str
    sent_at: float


async def steady_edits(
    stack: Stack, synced: list[tuple[str, str]], rate: float, duration: float, fat: bool
) -> list[Sent]:
    """Send `rate` edits per second for `duration` seconds, without waiting for answers."""
    sent: list[Sent] = []
    pending: set[asyncio.Task[httpx.Response]] = set()
    count = int(rate * duration)
    start = time.monotonic()
    for index in range(count):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        school_id, student_id = synced[index % len(synced)]
        stack.school.edit_student(school_id, {"mobileNumber": f"07700 {index:06d}"})
        event = stack.emitter.student_event(school_id, fat=fat)
        sent.append(Sent(school_id, student_id, time.time()))
        task = asyncio.create_task(stack.emitter.send(event))
        pending.add(task)
        task.add_done_callback(pending.discard)
    answers = await asyncio.gather(*pending)
    refused = [a.status_code for a in answers if a.status_code != 202]
    if refused:
        raise SystemExit(f"{len(refused)} webhooks refused: {sorted(set(refused))}")
    return sent


async def received_times(bootstrap: str, topic: str, since: float) -> dict[str, list[float]]:
    """Return, per student, when `serve` received each event (from the Kafka records)."""
    received: dict[str, list[float]] = defaultdict(list)
    for record in await read_to_end(bootstrap, topic):
        change = QueuedChange.from_bytes(record.value)
        moment = change.received_at.timestamp()
        if moment >= since and change.data.schoolId:
            received[change.data.schoolId].append(moment)
    return received


@dataclass(frozen=True)
class Figures:
    received_to_write: list[float]  # ms
    sent_to_write: list[float]  # ms
    unmatched: int


def match(sent: list[Sent], received: dict[str, list[float]], writes: list[Any]) -> Figures:
    """Pair each edit with its student's write, in order (one write per edit)."""
    by_student: dict[str, list[float]] = defaultdict(list)
    for write in writes:
        if write.get("kind") == "student" and write.get("action") == "update":
            by_student[str(write["student_id"])].append(float(write["at"]))
    edits: dict[str, list[Sent]] = defaultdict(list)
    for item in sent:
        edits[item.student_id].append(item)
    received_ms: list[float] = []
    sent_ms: list[float] = []
    unmatched = 0
    for student_id, items in edits.items():
        stamps = sorted(by_student.get(student_id, []))
        arrivals = sorted(received.get(items[0].school_id, []))
        for index, item in enumerate(items):
            if index >= len(stamps) or index >= len(arrivals):
                unmatched += 1
                continue
            received_ms.append((stamps[index] - arrivals[index]) * 1000)
            sent_ms.append((stamps[index] - item.sent_at) * 1000)
    return Figures(received_ms, sent_ms, unmatched)


async def run(options: argparse.Namespace) -> int:
    started_kafka = start_kafka()
    bootstrap = "127.0.0.1:9092"
    prefix = f"bench-latency-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}."
    topics = Topics.with_prefix(prefix)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
            await ensure_topics(bootstrap, topics.all(), partitions=PARTITIONS)
            async with AsyncExitStack() as exits:
                exits.push_async_callback(delete_topics, bootstrap, topics.all())
                stack = await start_stack(exits, Path(tmp), bootstrap, topics, options.students)
                students = stack.school.all_students()
                await stack.emitter.send_all(stack.emitter.events_for_all_students(fat=True))
                await stack.wait_processed(len(students), timeout=600)
                state = (await stack.http.get(f"{stack.managebac_url}/_sim/state")).json()
                codes = {s["student_id"] for s in state["students"] if not s.get("archived")}
                synced = [
                    (r["schoolId"], r["schoolCode"]) for r in students if r["schoolCode"] in codes
                ]
                print(f"initial sync done: {len(synced)} of {len(students)} students synced")
                await asyncio.sleep(2.0)  # let the initial sync's commits settle
                before = await stack.histogram()
                cpu = {name: process_cpu(_pid(p)) for name, p in stack.processes.items()}
                started = time.time()
                sent = await steady_edits(
                    stack, synced, options.rate, options.duration, fat=not options.thin
                )
                await stack.wait_processed(len(students) + len(sent), timeout=600)
                cpu = {n: process_cpu(_pid(p)) - cpu[n] for n, p in stack.processes.items()}
                after = await stack.histogram()
                writes = (
                    await stack.http.get(
                        f"{stack.managebac_url}/_sim/writes", params={"since": started}
                    )
                ).json()
                received = await received_times(bootstrap, topics.changes, started)
                figures = match(sent, received, writes)
    finally:
        if started_kafka:
            stop_kafka()
    _report(options, len(sent), figures, before, after, cpu)
    return 0


def _pid(process: ManagedProcess) -> int:
    assert process.process is not None
    return process.process.pid


def _report(
    options: argparse.Namespace,
    sent: int,
    figures: Figures,
    before: dict[float, float],
    after: dict[float, float],
    cpu: dict[str, float],
) -> None:
    kind = "thin" if options.thin else "fat"
    print(f"bench.latency {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}")
    print(
        f"{sent} {kind} student edits at {options.rate:g}/s for {options.duration:g} s "
        f"({options.students} students), each one ManageBac+ write; "
        f"{figures.unmatched} unmatched"
    )
    for name, values in (
        ("webhook received -> ManageBac+ write", figures.received_to_write),
        ("sender's send   -> ManageBac+ write", figures.sent_to_write),
    ):
        print(f"  {name}: {_percentiles(values)}")
    p99 = _percentile(figures.received_to_write, 99)
    print(f"  aim p99 <= 250 ms: {'met' if p99 <= 250 else 'NOT met'} ({p99:.0f} ms)")
    total = after.get(float("inf"), 0) - before.get(float("inf"), 0)
    within = after.get(0.25, 0) - before.get(0.25, 0)
    if total:
        print(
            f"  consumer's own histogram: {within / total:.1%} of {total:.0f} writes "
            "within 250 ms of being received"
        )
    seconds = options.duration
    print(
        "  CPU % of one core during the edits: "
        + ", ".join(f"{name} {100 * used / seconds:.0f}%" for name, used in sorted(cpu.items()))
    )


def _percentile(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _percentiles(values: list[float]) -> str:
    if not values:
        return "no data"
    parts = [f"p{p} {_percentile(values, p):.0f} ms" for p in (50, 90, 99)]
    return ", ".join([*parts, f"max {max(values):.0f} ms", f"n={len(values)}"])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="edits per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of edits")
    parser.add_argument("--students", type=int, default=600, help="size of the school")
    parser.add_argument("--thin", action="store_true", help="thin events (consumer reads iSAMS)")
    options = parser.parse_args(argv)
    if options.rate <= 0 or options.duration <= 0 or options.students < 10:
        parser.error("--rate and --duration must be positive, --students at least 10")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
