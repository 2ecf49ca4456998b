"""The poller at steady state: iSAMS requests and CPU per cycle, and change-to-write latency.

    .venv/bin/python -m bench.poll [--students 2000] [--staff 250] [--interval 10]
        [--edits 50] [--edit-cycles 3] [--cycles 6] [--rate 50] [--database-url URL]
    .venv/bin/python -m bench.poll --students 200 --staff 25 --edits 10 --cycles 4   # quick

The stack of `bench/rig.py` (the school of `bench.full_sync`, ManageBac+ limited to
`--rate` requests/s), with `isams.poll_interval_s: --interval`: `isams-sync poll` as a
process beside one `isams-sync consume`. The poller's first cycle publishes every record
(the first sync, on the bulk lane); once `consume` has applied all of it and ManageBac+ is
quiet, two more cycles are let pass, then `--cycles` cycles are measured:

- **iSAMS requests per cycle**: the poller's `isams_sync_poll_isams_requests_last_cycle`
  after each cycle, and the iSAMS simulator's `/_sim/stats` per route over the window
  (which also counts `consume`'s reads), against the list pages one cycle must read
  (pages of 500 of `/api/students`, `/api/alumni`, `/api/students/contacts`,
  `/api/humanresources/employees`).
- **CPU per cycle**: the poll process's CPU seconds (`/proc`, `bench/cpu.py`) from one
  cycle's end to the next (the idle wait included), and the cycle's own duration
  (`isams_sync_poll_cycle_seconds`).
- **Latency**: `--edits` students already in ManageBac+ get a new mobile number through the
  iSAMS simulator (`POST /_sim/edit/student/{schoolId}`) at random moments over the first
  `--edit-cycles` cycles of the window; each edit's latency is the student's first
  ManageBac+ write after it (the write log's `at`) minus the moment the edit was answered.
  Aim: p99 within the interval plus 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.consumer import machine
from bench.cpu import machine_busy, process_cpu
from bench.rig import (
    Rig,
    RigOptions,
    WriteLog,
    counts,
    describe_school,
    list_pages,
    metric_sum,
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

CYCLES = "isams_sync_poll_cycles"
REQUESTS_LAST = "isams_sync_poll_isams_requests_last_cycle"
CYCLE_SECONDS = "isams_sync_poll_cycle_seconds"
CHANGES = "isams_sync_poll_changes"
SAMPLE_EVERY = 0.5  # seconds between two reads of the poller's /metrics
SETTLE_CYCLES = 2


@dataclass(frozen=True)
class PollerSample:
    """The poller's counters at one moment."""

    at: float
    cycles: int
    requests_last: int
    cycle_seconds: float  # sum over cycles
    published: int
    cpu: float  # the poll process's CPU seconds so far
    machine: float
    isams_routes: dict[str, int]


async def sample(rig: Rig) -> PollerSample:
    text = await rig.metrics("poll")
    return PollerSample(
        at=time.time(),
        cycles=int(metric_sum(text, CYCLES)),
        requests_last=int(metric_sum(text, REQUESTS_LAST, sample="")),
        cycle_seconds=metric_sum(text, CYCLE_SECONDS, sample="_sum"),
        published=int(metric_sum(text, CHANGES)),
        cpu=process_cpu(rig.pid("poll")),
        machine=machine_busy(),
        isams_routes=dict((await rig.isams("stats"))["requests"]),
    )


async def scrape_cost(rig: Rig, count: int = 40) -> float:
    """The poller's CPU seconds for one read of its /metrics (this benchmark's own load),
    measured just after a cycle ended, so no cycle runs meanwhile."""
    pid = rig.pid("poll")
    before = process_cpu(pid)
    for _ in range(count):
        await rig.metrics("poll")
    return (process_cpu(pid) - before) / count


async def next_cycle(rig: Rig, after: int, timeout: float) -> PollerSample:
    """Wait for the poller to finish a cycle beyond `after`; return the sample that saw it."""
    deadline = time.monotonic() + timeout
    while True:
        rig.check_alive()
        now = await sample(rig)
        if now.cycles > after:
            return now
        if time.monotonic() > deadline:
            raise SystemExit(
                f"no poll cycle ended in {timeout:.0f} s:\n{rig.processes['poll'].log_tail()}"
            )
        await asyncio.sleep(SAMPLE_EVERY)


@dataclass(frozen=True)
class Cycle:
    """One measured cycle: from the previous cycle's end to its own."""

    requests: int  # the poller's own count
    isams_routes: dict[str, int]  # the iSAMS simulator's, every client
    cpu: float
    other_cpu: float  # the rest of the machine meanwhile
    seconds: float  # the cycle's own duration
    published: int


def cycle_between(before: PollerSample, after: PollerSample) -> Cycle:
    cycles = max(1, after.cycles - before.cycles)
    cpu = after.cpu - before.cpu
    return Cycle(
        requests=after.requests_last,
        isams_routes=dict(route_delta(after.isams_routes, before.isams_routes)),
        cpu=cpu / cycles,
        other_cpu=(after.machine - before.machine - cpu) / cycles,
        seconds=(after.cycle_seconds - before.cycle_seconds) / cycles,
        published=after.published - before.published,
    )


@dataclass(frozen=True)
class Edit:
    school_id: str
    code: str  # ManageBac+'s student_id
    at: float  # when iSAMS answered the edit


async def edit_students(
    rig: Rig, chosen: list[tuple[str, str]], spread: float, seed: int
) -> list[Edit]:
    """Change each chosen student's mobile number at a random moment within `spread` s."""
    rng = random.Random(seed)  # noqa: S311  (a benchmark's schedule)
    moments = sorted(rng.uniform(0, spread) for _ in chosen)
    start = time.monotonic()
    edits: list[Edit] = []
    for number, ((school_id, code), moment) in enumerate(zip(chosen, moments, strict=True)):
        await asyncio.sleep(max(0.0, start + moment - time.monotonic()))
        response = await rig.http.post(
            f"{rig.isams_url}/_sim/edit/student/{school_id}",
            json={"mobileNumber": f"07700 8{number:05d}"},
        )
        response.raise_for_status()
        edits.append(Edit(school_id, code, time.time()))
    return edits


def latencies(edits: list[Edit], writes: list[dict[str, Any]]) -> tuple[list[float], int]:
    """Each edit's first student write after it, minus the edit; and how many had none."""
    stamps: dict[str, list[float]] = {}
    for write in writes:
        if write.get("kind") == "student" and write.get("student_id"):
            stamps.setdefault(str(write["student_id"]), []).append(float(write["at"]))
    found: list[float] = []
    missing = 0
    for edit in edits:
        after = [at for at in stamps.get(edit.code, []) if at >= edit.at]
        if after:
            found.append(min(after) - edit.at)
        else:
            missing += 1
    return found, missing


async def wait_written(rig: Rig, log: WriteLog, edits: list[Edit], timeout: float) -> None:
    """Follow the write log until every edit has its write (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await log.refresh(rig)
        if latencies(edits, log.writes)[1] == 0:
            return
        await asyncio.sleep(0.5)


@dataclass
class Results:
    options: dict[str, Any]
    school: str
    pages: dict[str, int]
    first_cycle: dict[str, Any]
    cycles: list[Cycle]
    window_routes: dict[str, int]
    latencies: list[float]
    missing: int
    window_seconds: float
    first_sync_seconds: float
    scrape_cpu: float  # poller CPU seconds per /metrics read
    managebac_routes: dict[str, int] = field(default_factory=dict)


async def first_sync(rig: Rig) -> tuple[dict[str, Any], float]:
    """Let the first cycle publish everything and `consume` apply it; what cycle 1 did."""
    started = time.time()
    first = await next_cycle(rig, 0, timeout=1800)
    await settle(rig, first.published, timeout=7200)
    stats = await rig.managebac("stats")
    writes = await rig.managebac("writes")
    done = float(writes[-1]["at"]) if writes else time.time()
    return (
        {
            "published": first.published,
            "requests": first.requests_last,
            "seconds": first.cycle_seconds,
            "isams_routes": first.isams_routes,
            "managebac_requests": stats["total"],
            "managebac_writes": stats["writes"],
        },
        done - started,
    )


async def measure(rig: Rig, options: argparse.Namespace) -> Results:
    first, synced_in = await first_sync(rig)
    print(
        f"first sync done in {synced_in:.0f} s (cycle 1: {first['published']} changes)", flush=True
    )
    now = await sample(rig)
    for _ in range(SETTLE_CYCLES):
        now = await next_cycle(rig, now.cycles, timeout=4 * options.interval + 600)
    state = await rig.managebac("state")
    in_managebac = {str(s.get("student_id")) for s in state["students"]}
    codes = [
        (sid, str(rig.school.student(sid).get("schoolCode") or ""))
        for sid in synced_students(rig.school)
    ]
    chosen = random.Random(11).sample(  # noqa: S311  (a benchmark's choice)
        [(sid, code) for sid, code in codes if code in in_managebac], options.edits
    )
    log = WriteLog(since=time.time())
    managebac_before = dict((await rig.managebac("stats"))["requests"])
    start = now
    editing = asyncio.create_task(
        edit_students(rig, chosen, options.edit_cycles * options.interval, seed=3)
    )
    samples = [start]
    for _ in range(options.cycles):
        samples.append(
            await next_cycle(rig, samples[-1].cycles, timeout=4 * options.interval + 600)
        )
        await log.refresh(rig)
    scrape = await scrape_cost(rig)  # a cycle just ended: the next is seconds away
    edits = await editing
    await wait_written(rig, log, edits, timeout=3 * options.interval + 60)
    found, missing = latencies(edits, log.writes)
    managebac_after = dict((await rig.managebac("stats"))["requests"])
    return Results(
        options=vars(options),
        school=describe_school(rig.school),
        pages=list_pages(rig.school),
        first_cycle=first,
        cycles=[cycle_between(a, b) for a, b in pairwise(samples)],
        window_routes=dict(route_delta(samples[-1].isams_routes, start.isams_routes)),
        latencies=found,
        missing=missing,
        window_seconds=samples[-1].at - start.at,
        first_sync_seconds=synced_in,
        scrape_cpu=scrape,
        managebac_routes=dict(route_delta(managebac_after, managebac_before)),
    )


async def run(options: argparse.Namespace) -> Results:
    await require_broker()
    rig_options = RigOptions(
        students=options.students,
        staff=options.staff,
        rate_limit=options.rate,
        poll_interval_s=options.interval,
        database_url=options.database_url,
    )
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp:
        async with run_topics("poll") as topics, open_rig(rig_options, topics, Path(tmp)) as rig:
            print(f"school: {describe_school(rig.school)}", flush=True)
            await rig.start("consume")
            await rig.start("poll")
            return await measure(rig, options)


def report(results: Results) -> None:
    options = results.options
    interval = float(options["interval"])
    pages = sum(results.pages.values())
    print(f"\nbench.poll {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}")
    print(f"school: {results.school}")
    print(
        f"poll_interval_s {interval:g}; ManageBac+ limit {options['rate']} requests/s; "
        f"first sync through cycle 1 ({results.first_cycle['published']} changes, "
        f"{results.first_cycle['requests']} iSAMS requests, "
        f"{results.first_cycle['seconds']:.1f} s) applied in {results.first_sync_seconds:.0f} s "
        f"(poll start to last write: {results.first_cycle['managebac_requests']} ManageBac+ "
        f"requests, {results.first_cycle['managebac_writes']} writes)"
    )
    print(f"list pages one cycle reads: {pages} ({counts(results.pages)})")
    cycles = results.cycles
    print(f"{len(cycles)} cycles measured over {results.window_seconds:.0f} s:")
    for number, cycle in enumerate(cycles, 1):
        print(
            f"  cycle {number}: {cycle.requests} iSAMS requests, {cycle.published} changes "
            f"published, {cycle.seconds:.2f} s long, poller CPU {cycle.cpu * 1000:.0f} ms "
            f"(rest of machine {cycle.other_cpu:.1f} s)"
        )
    worst = max((c.requests for c in cycles), default=0)
    print(
        f"  iSAMS requests per cycle: max {worst}, median "
        f"{percentile([c.requests for c in cycles], 50):.0f}: aim <= {pages} list pages "
        f"{'met' if worst <= pages else 'NOT met'}"
    )
    cpu = [c.cpu * 1000 for c in cycles]
    scrapes = results.scrape_cpu * 1000 * interval / SAMPLE_EVERY
    print(
        f"  poller CPU per cycle: median {percentile(cpu, 50):.0f} ms, max {max(cpu):.0f} ms "
        f"({percentile(cpu, 50) / interval / 10:.1f}% of a core at this interval), of which "
        f"this benchmark's /metrics reads every {SAMPLE_EVERY:g} s about {scrapes:.0f} ms "
        f"({results.scrape_cpu * 1000:.1f} ms each); cycle length median "
        f"{percentile([c.seconds for c in cycles], 50):.2f} s"
    )
    print(f"  iSAMS simulator, every client, over the window: {counts(results.window_routes)}")
    print(f"  ManageBac+ over the window: {counts(results.managebac_routes)}")
    p99 = percentile(results.latencies, 99)
    aim = interval + 5
    print(
        f"  {options['edits']} iSAMS edits over {options['edit_cycles']} cycles -> ManageBac+ "
        f"write: {percentiles(results.latencies)}; {results.missing} never written"
    )
    met = p99 <= aim and results.missing == 0
    print(f"  latency p99 {p99:.2f} s: aim <= {aim:g} s {'met' if met else 'NOT met'}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = school_parser("python -m bench.poll", __doc__)
    parser.add_argument("--interval", type=float, default=10.0, help="poll_interval_s (10)")
    parser.add_argument("--edits", type=int, default=50, help="iSAMS edits measured (50)")
    parser.add_argument(
        "--edit-cycles", type=int, default=3, help="cycles the edits are spread over (3)"
    )
    parser.add_argument("--cycles", type=int, default=6, help="cycles measured (6)")
    options = parser.parse_args(argv)
    if options.students < 20 or options.edits < 1 or options.edits * 2 > options.students:
        parser.error("--students >= 20 and 1 <= --edits <= half of --students")
    if options.interval < 1 or options.cycles <= options.edit_cycles or options.edit_cycles < 1:
        parser.error("--interval >= 1 and --cycles > --edit-cycles >= 1")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    return run_and_report(argv, parse_args, run, report)


if __name__ == "__main__":
    raise SystemExit(main())
