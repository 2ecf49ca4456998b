"""A school's first sync at ManageBac+'s rate limit, live edits meanwhile, then nothing to do.

    .venv/bin/python -m bench.full_sync [--students 2000] [--staff 250] [--rate 50]
        [--edits 50] [--database-url URL]
    .venv/bin/python -m bench.full_sync --students 200 --staff 25 --edits 10   # a quick run

The stack of `bench/rig.py`: a generated school (`--students` pupils, their contacts,
`--staff` employees syncing with `staff.access_from: all_current`), the iSAMS simulator in
this process, the ManageBac+ simulator limited to `--rate` requests/s per client address and
the school's `max_requests_per_second` the same, `isams-sync serve` and one `isams-sync
consume` on the shared Kafka broker (this run's own topics). Then, in order:

1. **Plan** (not timed): `backfill --dry-run --json`, the creates and links a first sync
   has to make.
2. **First sync**: `isams-sync backfill` into the empty ManageBac+; timed from the command's
   start to ManageBac+'s last write (its write log's `at`). The lower bound is the writes
   made ÷ `--rate` (every request a write, at the full limit); the figure is the ratio.
   Requests per user created come from `/_sim/stats` (per route) and `/_sim/state`.
   Meanwhile, `--edits` live edits (each one student's mobile number, a signed fat webhook
   through `serve`), spread over the sync by its progress and alternating between students
   already in ManageBac+ and students not yet there. Each edit's latency is the student's
   last ManageBac+ write minus the `received_at` that `serve` put on its Kafka record, and
   ManageBac+ is checked to hold every edited number at the end.
3. **Second backfill** and **reconcile**, nothing changed in between: the ManageBac+ writes
   each made (logged writes, changed or not) and its requests by method.

Figures go to stdout; `--json FILE` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.consumer import WEBHOOK_SECRET, machine
from bench.rig import (
    BOOTSTRAP,
    Rig,
    RigOptions,
    WriteLog,
    by_method,
    counts,
    describe_school,
    open_rig,
    percentile,
    percentiles,
    require_broker,
    route_delta,
    run_and_report,
    run_topics,
    school_parser,
    settle,
    synced_students,
)
from consumers.adapters.budget import HEADROOM_ALONE as HEADROOM  # one consumer: all partitions
from consumers.adapters.kafka.reader import read_to_end
from consumers.events import QueuedChange
from sim.isams.emitter import WebhookEmitter

WRITE_ACTIONS = ("create", "adopt", "update", "unarchive", "archive", "link", "relink", "unlink")


# Live edits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """One live edit: whose, the number it set, whether ManageBac+ had the student then."""

    school_id: str
    code: str  # the schoolCode: ManageBac+'s student_id
    mobile: str
    synced_before: bool
    sent_at: float


class LiveEdits:
    """Send `count` edits as the first sync progresses: the k-th once ManageBac+ has made
    (k + 0.5) / count of 90% of the planned writes, so they spread over the whole sync."""

    def __init__(self, rig: Rig, emitter: WebhookEmitter, planned: int, count: int) -> None:
        self.rig = rig
        self.emitter = emitter
        self.planned = planned
        self.count = count
        self.log = WriteLog()
        self.edits: list[Edit] = []
        codes = {
            sid: str(rig.school.student(sid).get("schoolCode") or "")
            for sid in synced_students(rig.school)
        }
        self.candidates = [(sid, code) for sid, code in codes.items() if code]
        random.Random(7).shuffle(self.candidates)  # noqa: S311  (a benchmark's choice)

    async def run(self) -> None:
        for k in range(self.count):
            target = 0.9 * self.planned * (k + 0.5) / self.count
            while len(self.log.writes) < target:
                await asyncio.sleep(0.25)
                await self.log.refresh(self.rig)
            await self._edit(k)

    async def follow(self, stop: asyncio.Event) -> None:
        """Keep reading the write log until `stop` (after the edits are sent)."""
        while not stop.is_set():
            await self.log.refresh(self.rig)
            await asyncio.sleep(0.5)
        await self.log.refresh(self.rig)

    async def _edit(self, k: int) -> None:
        want_synced = k % 2 == 0
        index = next(
            (
                i
                for i, (_, code) in enumerate(self.candidates)
                if (code in self.log.students) == want_synced
            ),
            0,
        )
        school_id, code = self.candidates.pop(index)
        mobile = f"07700 9{k:05d}"
        self.rig.school.edit_student(school_id, {"mobileNumber": mobile})
        event = self.emitter.student_event(school_id, fat=True)
        sent = time.time()
        answer = await self.emitter.send(event)
        if answer.status_code != 202:
            raise SystemExit(f"serve refused a live edit: {answer.status_code} {answer.text}")
        self.edits.append(Edit(school_id, code, mobile, code in self.log.students, sent))


async def received_times(topic: str) -> dict[str, float]:
    """When `serve` received each student's (last) live edit, from the Kafka records."""
    received: dict[str, float] = {}
    for record in await read_to_end(BOOTSTRAP, topic):
        change = QueuedChange.from_bytes(record.value)
        if change.data.schoolId:
            received[change.data.schoolId] = change.received_at.timestamp()
    return received


@dataclass(frozen=True)
class EditFigures:
    latencies: dict[str, list[float]]  # "synced before" / "not yet synced" → seconds
    unmatched: int
    wrong_in_managebac: int


def edit_figures(
    edits: list[Edit],
    received: Mapping[str, float],
    writes: list[dict[str, Any]],
    state: Mapping[str, Any],
) -> EditFigures:
    """Each edit's latency: its student's last write after `received_at`, minus that."""
    stamps: dict[str, list[float]] = {}
    for write in writes:
        if write.get("kind") == "student" and write.get("student_id"):
            stamps.setdefault(str(write["student_id"]), []).append(float(write["at"]))
    mobiles = {s.get("student_id"): s.get("mobile_phone_number") for s in state["students"]}
    latencies: dict[str, list[float]] = {"synced before": [], "not yet synced": []}
    unmatched = wrong = 0
    for edit in edits:
        moment = received.get(edit.school_id)
        after = [at for at in stamps.get(edit.code, []) if moment is not None and at >= moment]
        if moment is None or not after:
            unmatched += 1
            continue
        group = "synced before" if edit.synced_before else "not yet synced"
        latencies[group].append(max(after) - moment)
        wrong += mobiles.get(edit.code) != edit.mobile
    return EditFigures(latencies, unmatched, wrong)


# Where the budget went ----------------------------------------------------------------

# Gaps between two requests, in multiples of the budget's spacing (1 / pace).
GAP_BUCKETS = (
    ("<= 1.5x", 1.5),
    ("1.5-3x", 3.0),
    ("3-10x", 10.0),
    ("10-50x", 50.0),
    ("> 50x", float("inf")),
)


@dataclass(frozen=True)
class BudgetUse:
    """How the first sync's ManageBac+ requests used the consumer's budget.

    The consumer spaces a school's requests evenly at `max_requests_per_second` times
    `HEADROOM`; whatever the requests' span exceeds that pace is budget nobody used (no
    request was waiting when a token came), split over the first and last 5% of the
    requests and the rest.
    """

    requests: int
    first_at: float
    last_at: float
    pace: float  # requests/s the budget allows
    idle_head: float
    idle_middle: float
    idle_tail: float
    statuses: dict[str, int]
    gaps: dict[str, tuple[int, float]]  # gap length → how many, and their time beyond pace

    @property
    def idle(self) -> float:
        return self.idle_head + self.idle_middle + self.idle_tail


def budget_use(times: list[tuple[float, str, str, int]], rate: float) -> BudgetUse:
    stamps = sorted(at for at, *_ in times)
    pace = rate * HEADROOM
    edge = max(1, len(stamps) // 20)
    cuts = [0, edge, max(edge, len(stamps) - 1 - edge), len(stamps) - 1]

    def unused(start: int, end: int) -> float:
        """The part's span beyond its requests at the budget's pace (negative: faster)."""
        return (stamps[end] - stamps[start]) - (end - start) / pace if end > start else 0.0

    head, middle, tail = (unused(cuts[i], cuts[i + 1]) for i in range(3))
    gaps: dict[str, tuple[int, float]] = {}
    for before, after in pairwise(stamps):
        gap = after - before
        name = next((n for n, top in GAP_BUCKETS if gap <= top * (1 / pace)), "")
        if name:
            number, excess = gaps.get(name, (0, 0.0))
            gaps[name] = (number + 1, excess + gap - 1 / pace)
    return BudgetUse(
        requests=len(stamps),
        first_at=stamps[0] if stamps else 0.0,
        last_at=stamps[-1] if stamps else 0.0,
        pace=pace,
        idle_head=head,
        idle_middle=middle,
        idle_tail=tail,
        statuses=dict(Counter(str(status) for *_, status in times)),
        gaps=gaps,
    )


# The phases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """ManageBac+'s counts and the CPU used so far, at one moment."""

    at: float
    routes: dict[str, int]
    statuses: dict[str, int]
    writes: int
    noop_writes: int
    isams_routes: dict[str, int]
    cpu: dict[str, float]


async def snapshot(rig: Rig) -> Snapshot:
    stats = await rig.managebac("stats")
    isams = await rig.isams("stats")
    cpu = rig.cpu()
    return Snapshot(
        time.time(),
        dict(stats["requests"]),
        dict(stats["statuses"]),
        int(stats["writes"]),
        int(stats["noop_writes"]),
        dict(isams["requests"]),
        cpu,
    )


@dataclass(frozen=True)
class Phase:
    """What one phase cost: requests per route, writes, iSAMS reads, CPU seconds."""

    name: str
    seconds: float
    routes: dict[str, int]
    statuses: dict[str, int]
    writes: int
    noop_writes: int
    isams_routes: dict[str, int]
    cpu: dict[str, float]
    command: dict[str, Any] = field(default_factory=dict)

    @property
    def methods(self) -> Counter[str]:
        return by_method(self.routes)


def phase(name: str, before: Snapshot, after: Snapshot, command: dict[str, Any]) -> Phase:
    cpu = {k: after.cpu[k] - before.cpu.get(k, 0.0) for k in after.cpu}
    return Phase(
        name,
        after.at - before.at,
        dict(route_delta(after.routes, before.routes)),
        dict(route_delta(after.statuses, before.statuses)),
        after.writes - before.writes,
        after.noop_writes - before.noop_writes,
        dict(route_delta(after.isams_routes, before.isams_routes)),
        cpu,
        command,
    )


def json_output(stdout: str) -> dict[str, Any]:
    """The JSON document a `--json` command printed."""
    start = stdout.find("{")
    if start < 0:
        raise SystemExit(f"no JSON in the command's output:\n{stdout[-2000:]}")
    document: dict[str, Any] = json.loads(stdout[start:])
    return document


async def command(rig: Rig, *args: str) -> dict[str, Any]:
    finished = await rig.command(*args, "--school", rig.school_id, "--json")
    if finished.returncode != 0:
        raise SystemExit(
            f"isams-sync {' '.join(args)} exited {finished.returncode}:\n"
            f"{finished.stdout[-2000:]}\n{finished.stderr[-2000:]}"
        )
    document = json_output(finished.stdout)
    document["_seconds"] = finished.seconds
    items = document.pop("items", None) or []
    document["skip_reasons"] = dict(
        Counter(f"{i['kind']}: {i['reason']}" for i in items if i["action"] == "skip")
    )
    return document


@dataclass(frozen=True)
class FirstSync:
    phase: Phase
    started: float
    first_write: float
    last_write: float
    writes: int
    created: dict[str, int]
    edits: EditFigures
    edit_list: list[Edit]
    write_kinds: dict[str, int]
    budget: BudgetUse


async def first_sync(
    rig: Rig, serve_url: str, planned: int, options: argparse.Namespace
) -> FirstSync:
    """Backfill into the empty ManageBac+ with live edits meanwhile; wait until all is done."""
    emitter = WebhookEmitter(
        rig.school, rig.http, base_url=serve_url, school_id=rig.school_id, secret=WEBHOOK_SECRET
    )
    live = LiveEdits(rig, emitter, planned, options.edits)
    before = await snapshot(rig)
    processed = await rig.processed()
    stop = asyncio.Event()
    follower = asyncio.create_task(live.follow(stop))
    edits = asyncio.create_task(live.run())
    report = await command(rig, "backfill")
    await edits
    await settle(rig, processed + int(report["queued"]) + options.edits, timeout=7200)
    stop.set()
    await follower
    after = await snapshot(rig)
    writes = live.log.between(before.at, after.at)
    state = await rig.managebac("state")
    received = await received_times(rig.env["SYNC_KAFKA_TOPIC_PREFIX"] + "isams.changes")
    created = {
        "students": len(state["students"]),
        "parents": len(state["parents"]),
        "teachers": len(state["teachers"]),
        "links": len(state["links"]),
    }
    return FirstSync(
        phase=phase("first sync", before, after, report),
        started=before.at,
        first_write=float(writes[0]["at"]) if writes else before.at,
        last_write=float(writes[-1]["at"]) if writes else before.at,
        writes=len(writes),
        created=created,
        edits=edit_figures(live.edits, received, writes, state),
        edit_list=live.edits,
        write_kinds=dict(Counter(f"{w['kind']} {w['action']}" for w in writes)),
        budget=budget_use(await rig.request_times(before.at), options.rate),
    )


async def quiet_run(rig: Rig, name: str) -> Phase:
    """A second backfill or a reconcile with nothing changed; wait until all is done."""
    before = await snapshot(rig)
    processed = await rig.processed()
    report = await command(rig, name)
    queued = int(report.get("queued") or 0)
    await settle(rig, processed + queued, timeout=3600)
    return phase(name, before, await snapshot(rig), report)


async def planned_writes(rig: Rig) -> dict[str, Any]:
    """`backfill --dry-run --json`: what a first sync has to write (creates, links)."""
    return await command(rig, "backfill", "--dry-run")


# Running and reporting --------------------------------------------------------------------


@dataclass
class Results:
    options: dict[str, Any]
    school: str
    plan: dict[str, Any]
    first: FirstSync
    second: Phase
    reconcile: Phase


async def run(options: argparse.Namespace) -> Results:
    await require_broker()
    rig_options = RigOptions(
        students=options.students,
        staff=options.staff,
        rate_limit=options.rate,
        database_url=options.database_url,
    )
    with tempfile.TemporaryDirectory(prefix="bench-full-sync-") as tmp:
        async with (
            run_topics("full-sync") as topics,
            open_rig(rig_options, topics, Path(tmp)) as rig,
        ):
            print(f"school: {describe_school(rig.school)}", flush=True)
            serve_url = await rig.start("serve")
            await rig.start("consume")
            plan = await planned_writes(rig)
            writes = sum(v for k, v in plan["totals"]["all"].items() if k in WRITE_ACTIONS)
            print(f"plan: {plan['totals']['all']} ({writes} writes)", flush=True)
            first = await first_sync(rig, serve_url, writes, options)
            print(f"first sync done in {first.last_write - first.started:.1f} s", flush=True)
            second = await quiet_run(rig, "backfill")
            reconcile = await quiet_run(rig, "reconcile")
            return Results(
                vars(options), describe_school(rig.school), plan, first, second, reconcile
            )


def report(results: Results) -> None:
    options, first = results.options, results.first
    rate = float(options["rate"])
    wall = first.last_write - first.started
    bound = first.writes / rate
    planned = results.plan["totals"]
    needed = sum(v for k, v in planned["all"].items() if k in WRITE_ACTIONS)
    print(f"\nbench.full_sync {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}")
    print(f"school: {results.school}")
    print(f"ManageBac+ limit {rate:g} requests/s per client address = max_requests_per_second")
    print(f"plan (backfill --dry-run): {_plan_line(planned)}")
    print(f"  its skips: {counts(results.plan['skip_reasons'])}")
    print("first sync (backfill into an empty ManageBac+, one consume):")
    print(
        f"  wall {wall:.1f} s (command start to last write; first write after "
        f"{first.first_write - first.started:.1f} s); {first.writes} writes made, "
        f"{needed} planned"
    )
    print(
        f"  lower bound {bound:.1f} s (writes made / {rate:g}/s); planned/{rate:g} = "
        f"{needed / rate:.1f} s"
    )
    ratio = wall / bound if bound else float("nan")
    print(f"  ratio {ratio:.3f}: aim <= 1.10 {'met' if ratio <= 1.10 else 'NOT met'}")
    span = first.last_write - first.first_write
    total = sum(first.phase.routes.values())
    print(
        f"  ManageBac+ during the writes: {total / span:.1f} requests/s, "
        f"{first.writes / span:.1f} writes/s; statuses {counts(first.phase.statuses)}"
    )
    _budget(first, rate)
    _per_user(first)
    _edits(first)
    print(f"  CPU s: {_cpu(first.phase)}")
    for quiet in (results.second, results.reconcile):
        _quiet(quiet)


def _budget(first: FirstSync, rate: float) -> None:
    """Split the wall time: start-up, the requests at the budget's pace, unused budget."""
    use = first.budget
    startup = use.first_at - first.started
    paced = (use.requests - 1) / use.pace
    print(
        f"  where the time went: {startup:.1f} s before the first request; {use.requests} "
        f"requests at the budget's pace ({rate:g}/s x {HEADROOM:g} headroom = {use.pace:g}/s) "
        f"{paced:.1f} s; budget unused {use.idle:.1f} s "
        f"(first 5% of requests {use.idle_head:.1f}, middle {use.idle_middle:.1f}, "
        f"last 5% {use.idle_tail:.1f}); sum {startup + paced + use.idle:.1f} s"
    )
    buckets = ", ".join(
        f"{name} {number} ({excess:+.1f} s)"
        for name, _ in GAP_BUCKETS
        if name in use.gaps
        for number, excess in [use.gaps[name]]
    )
    print(f"  gaps between requests (x the {1000 / use.pace:.1f} ms spacing): {buckets}")
    span = use.last_at - use.first_at
    wall = first.last_write - first.started
    if not (first.writes and span and paced):
        return
    factors = {
        "requests per write": use.requests / first.writes,
        "1 / headroom": 1 / HEADROOM,
        "requests span / budget pace": span / paced,
        "wall / requests span": wall / span,
    }
    product = 1.0
    for value in factors.values():
        product *= value
    print(
        "  ratio = "
        + " x ".join(f"{name} {value:.3f}" for name, value in factors.items())
        + f" = {product:.3f}"
    )


def _plan_line(totals: Mapping[str, Mapping[str, int]]) -> str:
    return "; ".join(
        f"{kind} {counts(dict(acts))}" for kind, acts in totals.items() if kind != "all" and acts
    )


def _per_user(first: FirstSync) -> None:
    created = first.created
    routes = first.phase.routes
    kinds = {"students": "/v2/students", "parents": "/v2/parents", "teachers": "/v2/teachers"}
    print(
        f"  created: {created['students']} students, {created['parents']} parents, "
        f"{created['teachers']} teachers, {created['links']} links"
    )
    for kind, prefix in kinds.items():
        mine = {r: n for r, n in routes.items() if r.split(" ", 1)[1].startswith(prefix)}
        users = created[kind] or 1
        line = f"  {kind}: {sum(mine.values()) / users:.3f} requests per user ({counts(mine)})"
        if kind == "parents":
            aim = 1 + created["links"] / users
            line += f"; aim 1 + links = {aim:.3f}"
        else:
            line += "; aim 1"
        print(line)
    others = {r: n for r, n in routes.items() if not any(p in r for p in kinds.values())}
    print(f"  other requests: {counts(others)}")
    print(f"  writes by kind and action: {counts(first.write_kinds)}")


def _edits(first: FirstSync) -> None:
    figures = first.edits
    every = [v for values in figures.latencies.values() for v in values]
    print(
        f"  {len(first.edit_list)} live edits (webhook -> serve -> consume): "
        f"{percentiles(every)}; unmatched {figures.unmatched}, "
        f"ManageBac+ not holding the edit {figures.wrong_in_managebac}"
    )
    for group, values in figures.latencies.items():
        print(f"    {group}: {percentiles(values)}")
    p99 = percentile(every, 99)
    print(f"  live edits p99 {p99:.2f} s: aim <= 5 s {'met' if p99 <= 5 else 'NOT met'}")


def _quiet(quiet: Phase) -> None:
    summary = quiet.command.get("summary", "")
    print(f"{quiet.name} (nothing changed): {quiet.seconds:.1f} s until settled; {summary}")
    if "totals" in quiet.command:
        print(f"  its plan: {_plan_line(quiet.command['totals'])}")
        print(f"  its skips: {counts(quiet.command['skip_reasons'])}")
    print(
        f"  ManageBac+ writes {quiet.writes} ({quiet.noop_writes} no-op): aim 0 "
        f"{'met' if quiet.writes == 0 else 'NOT met'}"
    )
    print(f"  ManageBac+ requests by method: {counts(quiet.methods)}")
    print(f"  ManageBac+ requests by route: {counts(quiet.routes)}")
    print(f"  iSAMS requests by route: {counts(quiet.isams_routes)}")
    print(f"  CPU s: {_cpu(quiet)}")


def _cpu(result: Phase) -> str:
    cpu = dict(result.cpu)
    machine_s = cpu.pop("machine", 0.0)
    known = sum(cpu.values())
    parts = [f"{name} {seconds:.1f}" for name, seconds in sorted(cpu.items())]
    parts.append(f"rest of machine {max(0.0, machine_s - known):.1f} (Kafka, others)")
    return ", ".join(parts) + f" over {result.seconds:.0f} s"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = school_parser("python -m bench.full_sync", __doc__)
    parser.add_argument("--edits", type=int, default=50, help="live edits during the sync (50)")
    options = parser.parse_args(argv)
    if options.students < 20 or options.staff < 0 or options.rate < 1 or options.edits < 1:
        parser.error("--students >= 20, --staff >= 0, --rate >= 1, --edits >= 1")
    if options.edits * 2 > options.students:
        parser.error("--edits must be at most half of --students")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report(argv, parse_args, run, report)


if __name__ == "__main__":
    raise SystemExit(main())
