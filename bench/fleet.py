"""Fleet: two consumer replicas and four schools, one of them busy and two in trouble.

    .venv/bin/python -m bench.fleet [--duration 30] [--busy 600] [--light-rate 4] [--runs 1]
        [--disabled 50] [--throttle-limit 3] [--database-url URL] [--trace]

Measures docs/design.md §4's promise that a school waiting on its budget, on 429s or on a
refused token never holds back another school's changes: per school, the requests/s it
sent against its budget and its 429s, and the light school's latency against a run
without the two troubled schools (aim: fleet p99 / baseline p99 <= 1.5).

Two `isams-sync consume` processes (the real CLI) in one consumer group, one schools file,
each school with its own ManageBac+ simulator (its own limits, tokens and stats) and one
shared iSAMS simulator, all simulators in this process. `contact_types: []` and staff off,
so each change is one fat `student.updated` event and one ManageBac+ create:
- **busy**: budget 20/s, `--busy` changes queued at once;
- **light**: budget 10/s, `--light-rate` changes/s for `--duration` s, each a different
  student, published one by one with `received_at` = the moment it is published;
- **disabled**: its token disabled in its simulator before the consumers start: its
  `--disabled` changes wait on the retry topic, none dead-lettered, and
  `isams_sync_school_blocked` is 1 on each consumer's `/metrics`;
- **throttling**: budget 15/s but its simulator allows `--throttle-limit` requests/s per
  client address (3: about a third of its calls are 429s); `--throttle-limit` x
  `--duration` changes queued at once, enough to last the trickle.

Each run is two scenarios, each on fresh topics, group, ledger, simulators and consumers:
**baseline** (busy + light) then **fleet** (all four), with the same light workload. The
light school's latency per change is the ManageBac+ simulator's time of its create
(`/_sim/writes` `at`) minus its `received_at`; its p99 is also shown from `SETTLED` s
into the trickle on, once the backlogs queued at the start have been handed out. Per
school: writes/s and calls/s from its first create to its last, writes/s as a share of
its budget, its 429s (calls counted by its token in its simulator, during the scenario).
`--runs N` repeats the pair and reports the median of the N ratios. The ledger is one
SQLite file shared by both replicas unless `--database-url` (then the school ids get a
per-scenario suffix, so a reused database starts empty for them). `--trace` runs the
replicas as `bench.fleet_trace` and prints where the light school's time went: Kafka
(publish, fetch, hand-out), slots, budget, ManageBac+ calls, ledger, the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.consumer import PARTITIONS, machine
from bench.cpu import machine_busy, process_cpu
from consumers.adapters.kafka.admin import delete_topics, ensure_topics, wait_for_stable_group
from consumers.adapters.kafka.dlq import list_dead_letters
from consumers.adapters.kafka.publisher import KafkaPublisher
from consumers.adapters.kafka.reader import read_to_end
from consumers.events import ChangeEvent, to_message
from consumers.ports import OutgoingMessage
from consumers.settings import Topics
from sim.isams.app import SimConfig as IsamsConfig
from sim.isams.app import create_app as create_isams_app
from sim.isams.school import generate_school
from sim.managebac import SimConfig as ManagebacConfig
from sim.managebac import create_app as create_managebac_app
from sim.managebac.config import DEFAULT_YEAR_GROUPS
from sim.serving import free_port, serve_app
from sim.stack import (
    ManagedProcess,
    python_module,
    start_kafka,
    stop_kafka,
    sync_command,
    wait_ready,
)

BOOTSTRAP = "127.0.0.1:9092"
REPLICAS = 2
SECRET = "whsec_" + "YmVuY2gtZmxlZXQtd2ViaG9vay1zZWNyZXQtMzJiIQ=="
SEED = 2027
BLOCKED = "isams_sync_school_blocked"
PROCESSED = "isams_sync_changes_processed"
AIM = 1.5
SETTLED = 2.0  # s into the trickle: the backlogs have been fetched and handed out by then


@dataclass(frozen=True)
class SchoolPlan:
    """One school of the fleet: its budget, its simulator's limit and its workload."""

    name: str
    budget: float  # max_requests_per_second, for the whole deployment
    backlog: int  # changes queued at once at the start (the light school: 0)
    sim_limit: int | None = None  # the simulator's requests/s per client address
    disabled: bool = False  # its token disabled in its simulator before the run
    tag: str = ""  # makes the school id unique to the scenario (a reused --database-url)

    @property
    def id(self) -> str:
        """The school's id in the schools file, the Kafka keys and the metrics."""
        return f"{self.name}-{self.tag}" if self.tag else self.name


def school_plans(options: argparse.Namespace, fleet: bool, tag: str) -> list[SchoolPlan]:
    """The schools of one scenario: busy and light; in the fleet also the two in trouble."""
    plans = [SchoolPlan("busy", 20, options.busy, tag=tag), SchoolPlan("light", 10, 0, tag=tag)]
    if fleet:
        plans += [
            SchoolPlan("disabled", 10, options.disabled, disabled=True, tag=tag),
            SchoolPlan(
                "throttling",
                15,
                throttling_backlog(options),
                sim_limit=options.throttle_limit,
                tag=tag,
            ),
        ]
    return plans


def throttling_backlog(options: argparse.Namespace) -> int:
    """Enough changes to keep the throttling school busy for the whole trickle."""
    return int(options.throttle_limit * options.duration)


@dataclass
class Sim:
    """One school's ManageBac+ simulator, running in this process."""

    plan: SchoolPlan
    url: str
    token: str
    http: httpx.AsyncClient

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = (await self.http.get("/_sim/stats")).json()
        return stats

    async def calls(self) -> Counter[str]:
        """Statuses of the calls made with this school's token so far."""
        tally = (await self.stats())["by_token"].get(self.token, {})
        return Counter(tally.get("statuses", {}))

    async def created(self) -> dict[str, float]:
        """Student id -> when the simulator wrote its create (its clock, epoch seconds)."""
        writes = (await self.http.get("/_sim/writes", params={"kind": "student"})).json()
        return {w["student_id"]: float(w["at"]) for w in writes if w["action"] == "create"}


@dataclass(frozen=True)
class Consumer:
    """One `isams-sync consume` replica and its health port."""

    process: ManagedProcess
    url: str

    async def metrics(self, http: httpx.AsyncClient) -> list[Any]:
        text = (await http.get(f"{self.url}/metrics")).text
        return [s for family in text_string_to_metric_families(text) for s in family.samples]

    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid


@dataclass(frozen=True)
class SchoolFigures:
    """What one school did during a scenario, from its simulator's log and stats."""

    plan: SchoolPlan
    changes: int
    written: int
    calls: Counter[str]  # statuses of the calls made during the scenario
    span: float  # seconds from its first create to its last

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def refused(self) -> int:
        return self.calls.get("429", 0)

    @property
    def writes_per_second(self) -> float:
        return (self.written - 1) / self.span if self.written > 1 and self.span > 0 else 0.0

    @property
    def calls_per_second(self) -> float:
        return self.total_calls / self.span if self.span > 0 else 0.0


@dataclass(frozen=True)
class Waiting:
    """The disabled school at the end of a scenario: where its changes are."""

    changes: int
    on_retry_topic: int  # distinct changes parked there
    parkings: int  # retry records in all (each look again parks it anew)
    dead_letters: int  # of every school
    blocked: list[float]  # isams_sync_school_blocked, per consumer
    waiting_outcomes: int  # `waiting` outcomes counted by the consumers


@dataclass
class Scenario:
    """One scenario's figures."""

    name: str
    light: list[tuple[float, float]]  # light changes: (s after the first, latency ms)
    schools: list[SchoolFigures]
    waiting: Waiting | None
    cpu: dict[str, float] = field(default_factory=dict)  # % of one core
    seconds: float = 0.0
    breakdowns: list[Breakdown] = field(default_factory=list)  # with --trace

    @property
    def latencies(self) -> list[float]:
        return [ms for _, ms in self.light]

    @property
    def steady(self) -> list[float]:
        """The light latencies from `SETTLED` s on, once the backlogs were handed out."""
        return [ms for at, ms in self.light if at >= SETTLED]

    def slowest(self, count: int = 3) -> list[tuple[float, float]]:
        return sorted(self.light, key=lambda item: -item[1])[:count]


def current_students(count: int) -> list[dict[str, Any]]:
    """`count` current students in mapped years (each becomes one create)."""
    school = generate_school(int(count * 1.2) + 20, seed=SEED)
    students = [
        s
        for s in school.all_students()
        if s["systemStatus"] == "Current" and s["yearGroup"] in DEFAULT_YEAR_GROUPS
    ]
    if len(students) < count:
        raise SystemExit(f"the generated school has only {len(students)} current students")
    return students[:count]


def message(
    school: str, record: dict[str, Any], index: int, now: datetime | None = None
) -> OutgoingMessage:
    """The `isams.changes` record `serve` would write for a fat event received `now`."""
    now = now or datetime.now(UTC)
    event = ChangeEvent.model_validate(
        {
            "type": "student.updated",
            "timestamp": now,
            "data": {"schoolId": record["schoolId"], "record": record},
        }
    )
    return to_message(event, school, f"fleet-{school}-{index}", now)


def school_entry(plan: SchoolPlan, sim: Sim, isams_url: str, secret: str) -> dict[str, Any]:
    return {
        "id": plan.id,
        "webhook_secrets": [SECRET],
        "isams": {"base_url": isams_url, "client_id": "sync-client", "client_secret": secret},
        "managebac": {
            "base_url": sim.url,
            "token": sim.token,
            "max_requests_per_second": plan.budget,
        },
        "mappings": {"year_groups": DEFAULT_YEAR_GROUPS, "contact_types": []},
        "staff": {"enabled": False},
    }


async def start_sim(exits: AsyncExitStack, plan: SchoolPlan) -> Sim:
    """Serve the school's own ManageBac+ simulator; disable its token if the plan says so."""
    token = f"fleet-{plan.name}-{secrets.token_hex(8)}"
    config = ManagebacConfig(token=token, rate_limit_per_second=plan.sim_limit)
    url = await exits.enter_async_context(serve_app(create_managebac_app(config), lifespan="off"))
    http = await exits.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
    if plan.disabled:
        answer = await http.put(f"/_sim/tokens/{token}", json={"enabled": False})
        answer.raise_for_status()
    return Sim(plan, url, token, http)


def start_consumers(
    exits: AsyncExitStack, root: Path, env: dict[str, str], scenario: str, trace: bool
) -> list[Consumer]:
    """Start the replicas: the real CLI, or with `trace` the CLI timing each change."""
    consumers = []
    for number in range(1, REPLICAS + 1):
        port = free_port()
        args = ("consume", "--health-port", str(port), "--health-host", "127.0.0.1")
        command = python_module("bench.fleet_trace", *args) if trace else sync_command(*args)
        extra = {"BENCH_FLEET_TRACE": str(trace_path(root, number))} if trace else {}
        process = ManagedProcess(
            f"consume-{number}",
            command,
            root / f"{scenario}-consume-{number}.log",
            env | extra,
        )
        # Stopped in a thread: the simulators they may still be calling run on this loop.
        exits.push_async_callback(asyncio.to_thread, process.stop)
        process.start()
        consumers.append(Consumer(process, f"http://127.0.0.1:{port}"))
    return consumers


def trace_path(root: Path, number: int) -> Path:
    return root / f"trace-{number}.jsonl"


class GroupNotStableError(Exception):
    """The replicas' group kept rebalancing: the scenario is started again on a new group."""


async def wait_for_group(group: str, consumers: list[Consumer], timeout: float = 45.0) -> None:
    """Wait until the group is stable with every replica in it (partitions shared)."""
    members = len(consumers)
    state = await wait_for_stable_group(BOOTSTRAP, group, members, timeout)
    if state == ("Stable", members):
        return
    logs = "\n".join(f"{c.process.name}:\n{c.process.log_tail(3)}" for c in consumers)
    raise GroupNotStableError(
        f"group {group} not stable with {members} members ({state[0]}, {state[1]}):\n{logs}"
    )


async def publish_backlogs(
    publisher: KafkaPublisher, topic: str, plans: list[SchoolPlan], students: list[Any]
) -> None:
    """Queue every backlog school's changes at once."""
    messages = [
        message(plan.id, record, index)
        for plan in plans
        for index, record in enumerate(students[: plan.backlog])
    ]
    await publisher.publish(topic, messages)


@dataclass(frozen=True)
class LightChange:
    """One change of the light school: its student, its Kafka key, when it was received."""

    student_id: str  # the ManageBac+ student_id (iSAMS schoolCode)
    key: str
    received_at: float  # epoch seconds, as on the Kafka record


async def trickle(
    publisher: KafkaPublisher,
    topic: str,
    school: str,
    students: list[Any],
    options: argparse.Namespace,
) -> list[LightChange]:
    """Publish the light school's changes at `rate`/s, one by one."""
    received: list[LightChange] = []
    pending: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    rate = options.light_rate
    for index, record in enumerate(students[: int(rate * options.duration)]):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        now = datetime.now(UTC)
        outgoing = message(school, record, index, now)
        received.append(LightChange(record["schoolCode"], outgoing.key.decode(), now.timestamp()))
        task = asyncio.create_task(publisher.publish(topic, [outgoing]))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    return received


async def wait_written(
    sims: dict[str, Sim], wanted: dict[str, int], consumers: list[Consumer], timeout: float
) -> None:
    """Wait until each school in `wanted` has that many creates."""
    deadline = time.monotonic() + timeout
    while True:
        done = {name: len(await sims[name].created()) for name in wanted}
        if all(done[name] >= count for name, count in wanted.items()):
            return
        for consumer in consumers:
            if not consumer.process.alive():
                raise SystemExit(f"{consumer.process.name} died:\n{consumer.process.log_tail()}")
        if time.monotonic() > deadline:
            raise SystemExit(f"not all written in {timeout:.0f}s: {done} of {wanted}")
        await asyncio.sleep(0.5)


def light_latencies(
    received: list[LightChange], created: dict[str, float]
) -> list[tuple[float, float]]:
    """Per light change: when it was received (s after the first) and its ManageBac+ create
    time minus its received_at (ms)."""
    first = received[0].received_at
    return [
        (c.received_at - first, (created[c.student_id] - c.received_at) * 1000) for c in received
    ]


@dataclass(frozen=True)
class Breakdown:
    """Where one light change's time went (ms), from `bench.fleet_trace`."""

    received: float  # s after the first light change
    kafka: float  # received_at -> its task ran in a consumer (publish, fetch, hand-out)
    slots: float  # -> it held its school's and topic's slot and its key's lock
    budget: float  # waiting for the school's request budget
    http: float  # ManageBac+ calls
    ledger: float  # ledger calls
    other: float  # the rest, until it was finished (parsing, planning, the event loop)

    @property
    def total(self) -> float:
        return self.kafka + self.slots + self.budget + self.http + self.ledger + self.other


def breakdowns(received: list[LightChange], paths: list[Path], topic: str) -> list[Breakdown]:
    """Join the consumers' traces with the light changes (first attempt only)."""
    traces: dict[str, dict[str, Any]] = {}
    for path in paths:
        for line in path.read_text().splitlines() if path.exists() else ():
            trace = orjson.loads(line)
            if trace["topic"] == topic:
                traces.setdefault(trace["key"], trace)
    first = received[0].received_at
    found = []
    for change in received:
        t = traces.get(change.key)
        if t is None:
            continue
        work = t["done"] - t["started"] - t["budget"] - t["http"] - t["ledger"]
        found.append(
            Breakdown(
                change.received_at - first,
                1000 * (t["dispatched"] - change.received_at),
                1000 * (t["started"] - t["dispatched"]),
                1000 * t["budget"],
                1000 * t["http"],
                1000 * t["ledger"],
                1000 * work,
            )
        )
    return found


async def school_figures(
    sim: Sim, before: Counter[str], changes: int, stamps: dict[str, float]
) -> SchoolFigures:
    calls = await sim.calls()
    calls.subtract(before)
    span = max(stamps.values()) - min(stamps.values()) if stamps else 0.0
    return SchoolFigures(sim.plan, changes, len(stamps), +calls, span)


async def waiting_figures(
    topics: Topics, plan: SchoolPlan, consumers: list[Consumer], http: httpx.AsyncClient
) -> Waiting:
    """Where the disabled school's changes are: the retry topic, the DLQ, the gauge."""
    school = plan.id
    parked = [r for r in await read_to_end(BOOTSTRAP, topics.retry) if _school(r.key) == school]
    letters = await list_dead_letters(BOOTSTRAP, topics)
    blocked: list[float] = []
    waiting = 0.0
    for consumer in consumers:
        samples = await consumer.metrics(http)
        blocked.append(
            sum(s.value for s in samples if s.name == BLOCKED and s.labels.get("school") == school)
        )
        waiting += sum(
            s.value
            for s in samples
            if s.name == f"{PROCESSED}_total"
            and s.labels.get("school") == school
            and s.labels.get("outcome") == "waiting"
        )
    return Waiting(
        changes=plan.backlog,
        on_retry_topic=len({r.key for r in parked}),
        parkings=len(parked),
        dead_letters=len(letters),
        blocked=blocked,
        waiting_outcomes=int(waiting),
    )


def _school(key: bytes | None) -> str:
    return (key or b"").split(b":", 1)[0].decode()


def consumer_env(
    root: Path, topics: Topics, group: str, schools_file: Path, database_url: str | None
) -> dict[str, str]:
    return {
        "SYNC_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "SYNC_KAFKA_TOPIC_PREFIX": topics.changes.removesuffix("isams.changes"),
        "SYNC_CONSUMER_GROUP": group,
        "SYNC_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{root / 'ledger.db'}",
        "SYNC_SCHOOLS_FILE": str(schools_file),
        "SYNC_KAFKA_CREATE_TOPICS": "false",
        "SYNC_LOG_LEVEL": os.environ.get("BENCH_FLEET_LOG_LEVEL", "WARNING"),
    }


async def run_scenario(
    name: str, fleet: bool, students: list[Any], options: argparse.Namespace
) -> Scenario:
    """Start the stack for the scenario, run the workload, collect the figures, clean up."""
    tag = uuid.uuid4().hex[:6]
    plans = school_plans(options, fleet, tag if options.database_url else "")
    stamp = f"{datetime.now(UTC):%Y%m%d%H%M%S}-{tag}"
    topics = Topics.with_prefix(f"bench-fleet-{stamp}-{name}.")
    group = f"bench-fleet-{stamp}-{name}"
    await ensure_topics(BOOTSTRAP, topics.all(), partitions=PARTITIONS)
    async with AsyncExitStack() as exits:
        exits.push_async_callback(delete_topics, BOOTSTRAP, topics.all())
        root = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="bench-fleet-")))
        isams_secret = secrets.token_urlsafe(16)
        isams = create_isams_app(
            IsamsConfig(client_secret=isams_secret), generate_school(20, seed=SEED)
        )
        isams_url = await exits.enter_async_context(serve_app(isams, lifespan="off"))
        sims = {plan.name: await start_sim(exits, plan) for plan in plans}
        schools_file = root / "schools.yaml"
        entries = [school_entry(p, sims[p.name], isams_url, isams_secret) for p in plans]
        schools_file.write_text(yaml.safe_dump({"schools": entries}, sort_keys=False))
        env = consumer_env(root, topics, group, schools_file, options.database_url)
        consumers = start_consumers(exits, root, env, name, options.trace)
        http = await exits.enter_async_context(httpx.AsyncClient(timeout=30))
        for consumer in consumers:
            await wait_ready(f"{consumer.url}/readyz", consumer.process)
        await wait_for_group(group, consumers)
        publisher = KafkaPublisher(BOOTSTRAP, client_id="bench-fleet")
        await publisher.start()
        exits.push_async_callback(publisher.stop)
        before = {plan.name: await sims[plan.name].calls() for plan in plans}
        cpu_before = _cpu(consumers)
        started = time.monotonic()
        await publish_backlogs(publisher, topics.changes, plans, students)
        light = next(p for p in plans if p.name == "light")
        received = await trickle(publisher, topics.changes, light.id, students, options)
        wanted = {p.name: p.backlog for p in plans if not p.disabled} | {"light": len(received)}
        await wait_written(sims, wanted, consumers, timeout=120 + 2 * options.duration)
        seconds = time.monotonic() - started
        cpu = {k: 100 * (v - cpu_before[k]) / seconds for k, v in _cpu(consumers).items()}
        created = {p.name: await sims[p.name].created() for p in plans}
        figures = [
            await school_figures(
                sims[p.name], before[p.name], wanted.get(p.name, p.backlog), created[p.name]
            )
            for p in plans
        ]
        disabled = next((p for p in plans if p.disabled), None)
        waiting = (
            await waiting_figures(topics, disabled, consumers, http)
            if disabled is not None
            else None
        )
        scenario = Scenario(
            name, light_latencies(received, created["light"]), figures, waiting, cpu, seconds
        )
        if options.trace:
            await asyncio.sleep(1.0)  # the last change's line comes after its write
            paths = [trace_path(root, n) for n in range(1, REPLICAS + 1)]
            scenario.breakdowns = breakdowns(received, paths, topics.changes)
        return scenario


def _cpu(consumers: list[Consumer]) -> dict[str, float]:
    """CPU seconds so far: each consumer, this process (simulators, publisher), the machine."""
    counts = {c.process.name: process_cpu(c.pid()) for c in consumers}
    counts["bench (sims)"] = process_cpu(os.getpid())
    counts["machine"] = machine_busy()
    return counts


def percentile(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def report_scenario(number: int, scenario: Scenario) -> None:
    values = scenario.latencies
    print(
        f"run {number} {scenario.name}: light school latency p50 {percentile(values, 50):.0f} ms"
        f", p90 {percentile(values, 90):.0f} ms, p99 {percentile(values, 99):.0f} ms"
        f", max {max(values, default=float('nan')):.0f} ms, n={len(values)}; from {SETTLED:g} s"
        f" on: p99 {percentile(scenario.steady, 99):.0f} ms"
        f"  ({scenario.seconds:.0f} s; CPU % of a core: "
        + ", ".join(f"{k} {v:.0f}" for k, v in scenario.cpu.items())
        + ")"
    )
    print(
        "  slowest light changes (s into the trickle: ms): "
        + ", ".join(f"{at:.1f}: {ms:.0f}" for at, ms in scenario.slowest())
    )
    print(
        f"  {'school':<11}{'budget/s':>9}{'changes':>8}{'written':>8}{'span s':>7}"
        f"{'writes/s':>9}{'of budget':>10}{'calls':>7}{'calls/s':>8}{'429s':>6}{'429 %':>7}"
        f"{'401s':>6}"
    )
    for school in scenario.schools:
        plan = school.plan
        share = school.writes_per_second / plan.budget
        refused = school.refused / school.total_calls if school.total_calls else 0.0
        print(
            f"  {plan.name:<11}{plan.budget:>9g}{school.changes:>8}{school.written:>8}"
            f"{school.span:>7.1f}{school.writes_per_second:>9.1f}{share:>10.0%}"
            f"{school.total_calls:>7}{school.calls_per_second:>8.1f}{school.refused:>6}"
            f"{refused:>7.1%}{school.calls.get('401', 0):>6}"
        )
    if scenario.breakdowns:
        report_breakdowns(scenario.breakdowns)
    if scenario.waiting is not None:
        w = scenario.waiting
        print(
            f"  disabled: {w.on_retry_topic} of {w.changes} changes waiting on the retry topic "
            f"({w.parkings} parkings, {w.waiting_outcomes} `waiting` outcomes), "
            f"{w.dead_letters} dead letters (all schools), {BLOCKED} per consumer: "
            + ", ".join(f"{v:g}" for v in w.blocked)
        )


PARTS = ("kafka", "slots", "budget", "http", "ledger", "other", "total")


def report_breakdowns(found: list[Breakdown]) -> None:
    """Where the light school's time went: each part's p50/p99, and the slowest changes."""
    print(f"  light school, where the time went (ms, {len(found)} traced changes):")
    print(f"    {'':<22}" + "".join(f"{part:>8}" for part in PARTS))
    for pct in (50, 90, 99):
        values = [percentile([_part(b, part) for b in found], pct) for part in PARTS]
        print(f"    {f'p{pct} of each part':<22}" + "".join(f"{v:>8.0f}" for v in values))
    for item in sorted(found, key=lambda b: -b.total)[:3]:
        values = [_part(item, part) for part in PARTS]
        label = f"change at {item.received:.1f} s"
        print(f"    {label:<22}" + "".join(f"{v:>8.0f}" for v in values))


def _part(item: Breakdown, part: str) -> float:
    value: float = getattr(item, part)
    return value


def report_header(options: argparse.Namespace) -> None:
    ledger = "SQLite" if options.database_url is None else options.database_url.split(":")[0]
    print(f"bench.fleet {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; ledger {ledger}")
    print(
        f"{REPLICAS} consumers, {PARTITIONS} partitions; busy {options.busy} queued, light "
        f"{options.light_rate:g}/s for {options.duration:g} s, disabled {options.disabled} "
        f"queued, throttling {throttling_backlog(options)} queued (simulator "
        f"{options.throttle_limit}/s per address)",
        flush=True,
    )


def ratios(baseline: Scenario, fleet: Scenario) -> tuple[float, float]:
    """Light p99, fleet / baseline: all changes, and those from `SETTLED` s on."""
    return (
        percentile(fleet.latencies, 99) / percentile(baseline.latencies, 99),
        percentile(fleet.steady, 99) / percentile(baseline.steady, 99),
    )


def report_pair(number: int, baseline: Scenario, fleet: Scenario) -> None:
    report_scenario(number, baseline)
    report_scenario(number, fleet)
    ratio, settled = ratios(baseline, fleet)
    print(
        f"run {number}: light p99 fleet / baseline = {ratio:.2f} "
        f"(from {SETTLED:g} s on: {settled:.2f})",
        flush=True,
    )


def report_summary(pairs: list[tuple[Scenario, Scenario]]) -> None:
    figures = [ratios(baseline, fleet) for baseline, fleet in pairs]
    all_changes = [ratio for ratio, _ in figures]
    steady = [settled for _, settled in figures]
    median = statistics.median(all_changes)
    verdict = "met" if median <= AIM else "NOT met"
    print(
        f"light p99 fleet / baseline, median of {len(figures)}: {median:.2f} "
        f"(aim <= {AIM}: {verdict}); each run: " + ", ".join(f"{r:.2f}" for r in all_changes)
    )
    print(
        f"the same from {SETTLED:g} s into the trickle on, median: "
        f"{statistics.median(steady):.2f}; each run: " + ", ".join(f"{r:.2f}" for r in steady)
    )


async def run(options: argparse.Namespace) -> int:
    # scripts/kafka.sh asks the broker with the checkout's .venv; a worktree may have none.
    os.environ.setdefault("KAFKA_ADMIN_PYTHON", sys.executable)
    started_kafka = start_kafka()
    needed = max(
        options.busy, throttling_backlog(options), int(options.light_rate * options.duration)
    )
    students = current_students(max(needed, options.disabled))
    pairs = []
    report_header(options)
    try:
        for number in range(1, options.runs + 1):
            baseline = await attempt_scenario("baseline", False, students, options)
            fleet = await attempt_scenario("fleet", True, students, options)
            pairs.append((baseline, fleet))
            report_pair(number, baseline, fleet)
    finally:
        if started_kafka:
            stop_kafka()
    report_summary(pairs)
    return 0


async def attempt_scenario(
    name: str, fleet: bool, students: list[Any], options: argparse.Namespace, attempts: int = 3
) -> Scenario:
    """Run the scenario; start it again (new group) when the group never settles."""
    for attempt in range(1, attempts + 1):
        try:
            return await run_scenario(name, fleet, students, options)
        except GroupNotStableError as exc:
            print(f"({name}, attempt {attempt}: {str(exc).splitlines()[0]}; starting again)")
    raise SystemExit(f"{name}: the consumer group never settled in {attempts} attempts")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of light changes")
    parser.add_argument("--busy", type=int, default=600, help="busy school's changes, queued")
    parser.add_argument("--light-rate", type=float, default=4.0, help="light changes per second")
    parser.add_argument("--disabled", type=int, default=50, help="disabled school's changes")
    parser.add_argument(
        "--throttle-limit",
        type=int,
        default=3,
        help="the throttling school's simulator: requests/s per client address (its budget "
        "is 15/s; 3 makes about a third of its calls 429s)",
    )
    parser.add_argument(
        "--database-url", default=None, help="the consumers' ledger; default a temp SQLite file"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="run the consumers as bench.fleet_trace: where the light school's time goes",
    )
    parser.add_argument("--runs", type=int, default=1, help="baseline + fleet pairs")
    options = parser.parse_args(argv)
    if options.duration <= 0 or options.light_rate <= 0 or options.runs < 1:
        parser.error("--duration and --light-rate must be positive, --runs at least 1")
    if (
        options.busy < 1
        or options.disabled < 1
        or options.throttle_limit < 1
        or options.light_rate * options.duration < 2
    ):
        parser.error(
            "--busy, --disabled, --throttle-limit at least 1, and at least 2 light changes"
        )
    return options


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
