"""`make demo`: the whole local stack on its embedded defaults, visibly syncing a school.

Starts Kafka (unless one runs), the iSAMS simulator (in this process), the ManageBac+
simulator, `isams-sync serve`, `consume` and `poll`. As with a real iSAMS, which sends no
webhooks, changes are found by polling: the poller's first cycle syncs the whole school,
then live edits made in the simulated iSAMS are found by the next cycles. Shows progress;
prints a summary; stops everything it started.
"""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
import shutil
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from consumers.adapters.ledger import Ledger
from consumers.domain.records import SyncRecord
from sim.isams.app import SimConfig as IsamsConfig
from sim.isams.app import create_app as create_isams_app
from sim.isams.emitter import WebhookEmitter
from sim.isams.school import SchoolData, generate_school
from sim.serving import free_port, serve_app
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

SCHOOL_ID = "demo-school"
YEAR_GROUPS = {year: 10209265 + year for year in range(7, 14)}
# The sync names grades, not ids: each NC year's cohort is found in ManageBac+ at run time.
GRADES = {year: f"secondary;{year}" for year in YEAR_GROUPS}
MANAGEBAC_RATE_LIMIT = 200  # the simulator's limit (requests/s)
CLIENT_RATE = 150  # what the school's settings allow the sync to use
POLL_INTERVAL = 5.0  # seconds between the poller's cycles
PROCESSED = "isams_sync_changes_processed"


@dataclass
class DemoPaths:
    """Where the demo keeps its files (fresh every run)."""

    root: Path

    @property
    def schools_file(self) -> Path:
        return self.root / "schools.yaml"

    @property
    def database(self) -> Path:
        return self.root / "sync.db"


async def run_demo(students: int, edits: int, rate: float) -> int:
    """Run the demo; return the process exit code."""
    console = Console()
    paths = DemoPaths(REPO / "var" / "demo")
    shutil.rmtree(paths.root, ignore_errors=True)
    paths.root.mkdir(parents=True)
    console.rule("[bold]isams-sync demo")
    console.print("Starting Apache Kafka (local, KRaft) …")
    started_kafka = start_kafka()
    processes: list[ManagedProcess] = []
    try:
        return await _run(console, paths, processes, students, edits, rate)
    except StackError as exc:
        console.print(f"[red]The demo stack failed:[/red] {exc}")
        return 1
    finally:
        for process in reversed(processes):
            process.stop()
        if started_kafka:
            console.print("Stopping Kafka …")
            stop_kafka()
        console.print("Everything the demo started is stopped.")


async def _run(
    console: Console,
    paths: DemoPaths,
    processes: list[ManagedProcess],
    students: int,
    edits: int,
    rate: float,
) -> int:
    run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    webhook_secret = "whsec_" + _b64(secrets.token_bytes(24))
    managebac_token = secrets.token_urlsafe(24)
    school = generate_school(students, seed=2026)
    isams_config = IsamsConfig(client_secret=secrets.token_urlsafe(16))
    async with serve_app(create_isams_app(isams_config, school), lifespan="off") as isams_url:
        managebac_port, serve_port = free_port(), free_port()
        consume_port, poll_port = free_port(), free_port()
        managebac_url = f"http://127.0.0.1:{managebac_port}"
        _write_schools_file(paths, isams_url, isams_config, managebac_url, webhook_secret)
        env = {
            "SYNC_KAFKA_TOPIC_PREFIX": f"demo-{run_id}.",
            "SYNC_CONSUMER_GROUP": f"isams-sync-demo-{run_id}",
            "SYNC_DATABASE_URL": f"sqlite+aiosqlite:///{paths.database}",
            "SYNC_SCHOOLS_FILE": str(paths.schools_file),
            "SYNC_LOG_LEVEL": "WARNING",
            "DEMO_ISAMS_CLIENT_SECRET": isams_config.client_secret,
            "DEMO_MANAGEBAC_TOKEN": managebac_token,
        }
        managebac = ManagedProcess(
            "ManageBac+ simulator",
            python_module(
                "sim.managebac",
                "--port",
                str(managebac_port),
                "--token",
                managebac_token,
                "--rate-limit",
                str(MANAGEBAC_RATE_LIMIT),
                "--year-groups",
                ",".join(f"{k}:{v}" for k, v in YEAR_GROUPS.items()),
            ),
            paths.root / "managebac.log",
        )
        serve = ManagedProcess(
            "isams-sync serve",
            sync_command("serve", "--port", str(serve_port)),
            paths.root / "serve.log",
            env,
        )
        consume = ManagedProcess(
            "isams-sync consume",
            sync_command(
                "consume", "--health-port", str(consume_port), "--health-host", "127.0.0.1"
            ),
            paths.root / "consume.log",
            env,
        )
        poll = ManagedProcess(
            "isams-sync poll",
            sync_command("poll", "--health-port", str(poll_port), "--health-host", "127.0.0.1"),
            paths.root / "poll.log",
            env,
        )
        console.print(
            "Starting the ManageBac+ simulator, isams-sync serve, consume and poll …\n"
            f"Change capture is by polling iSAMS every {POLL_INTERVAL:g} s, as with a real "
            "iSAMS (it sends no webhooks): no webhook emitter is needed."
        )
        for process in (managebac, serve, consume):
            process.start()
            processes.append(process)
        await wait_ready(f"{managebac_url}/_sim/stats", managebac)
        await wait_ready(f"http://127.0.0.1:{serve_port}/readyz", serve)
        await wait_ready(f"http://127.0.0.1:{consume_port}/readyz", consume)
        phase1_start = datetime.now(UTC)  # the poller's first cycle starts with it
        poll.start()
        processes.append(poll)
        await wait_ready(f"http://127.0.0.1:{poll_port}/readyz", poll)
        console.print(
            f"Stack up: iSAMS sim {isams_url}, ManageBac+ sim {managebac_url}, "
            f"serve :{serve_port}, consume health :{consume_port}, poll health :{poll_port}"
        )
        watch = Watch(
            consume=f"http://127.0.0.1:{consume_port}/metrics",
            poll=f"http://127.0.0.1:{poll_port}/metrics",
        )
        async with httpx.AsyncClient(timeout=30.0) as http:
            await _follow(
                console,
                "First sync: the poller's first cycle reads every list (on the bulk lane)",
                http,
                watch,
                edits=None,
            )
            phase2_start = datetime.now(UTC)
            editor = WebhookEmitter(
                school, http, base_url="http://unused", school_id=SCHOOL_ID, secret=webhook_secret
            )
            edited = await _follow(
                console,
                f"Live edits in iSAMS at {rate:g}/s, found by the next poll",
                http,
                watch,
                edits=_paced_edits(editor, edits, rate),
            )
            outcomes = _processed(await http.get(watch.consume))
            state = (await http.get(f"{managebac_url}/_sim/state")).json()
            stats = (await http.get(f"{managebac_url}/_sim/stats")).json()
            writes = (await http.get(f"{managebac_url}/_sim/writes")).json()
        ledger = Ledger.from_url(f"sqlite+aiosqlite:///{paths.database}")
        try:
            records = await ledger.records(SCHOOL_ID)
        finally:
            await ledger.close()
        _summary(console, outcomes, records, state, stats, phase1_start, phase2_start, len(edited))
        _edit_latency(console, school, edited, writes)
    return 0


@dataclass(frozen=True)
class Watch:
    """Where the demo reads how far the poller and the consumer are."""

    consume: str
    poll: str


async def _paced_edits(editor: WebhookEmitter, count: int, rate: float) -> dict[str, float]:
    """Change `count` students in iSAMS at `rate` per second (the emitter's random edits,
    applied to the simulated school; its events are not sent: the poller finds the edits);
    return each edited student's schoolId with the time of its last edit (epoch seconds)."""
    rng = random.Random(7)
    start = time.monotonic()
    edited: dict[str, float] = {}
    for index, event in enumerate(editor.random_edits(count, rng)):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        edited[str(event["data"]["schoolId"])] = time.time()
    return edited


async def _follow(
    console: Console,
    title: str,
    http: httpx.AsyncClient,
    watch: Watch,
    edits: Any,
) -> dict[str, float]:
    """Show what the poller published and the consumer applied, until both have settled:
    a whole poll cycle began after the last edit, and everything published was applied."""
    with Progress(
        TextColumn("{task.description:<30}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        console.print(f"[bold]{title}")
        published_bar = progress.add_task("changes found by the poller", total=None)
        applied_bar = progress.add_task("applied by the consumer", total=None)
        task = asyncio.ensure_future(edits) if edits is not None else None
        cycles_at_start = await _poll_cycles(http, watch)
        cycles_after_edits: int | None = None if task is not None else cycles_at_start
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            published = await _poll_published(http, watch)
            applied = sum(_processed(await http.get(watch.consume)).values())
            cycles = await _poll_cycles(http, watch)
            progress.update(published_bar, completed=published, total=max(published, 1))
            progress.update(applied_bar, completed=min(applied, published), total=max(published, 1))
            if task is not None and task.done() and cycles_after_edits is None:
                cycles_after_edits = cycles
            settled = cycles_after_edits is not None and cycles >= cycles_after_edits + 1
            if settled and published and applied >= published:
                break
            await asyncio.sleep(0.25)
        else:
            raise StackError(f"{title}: not every change was applied within 10 minutes")
        result = await task if task is not None else {}
    return result if isinstance(result, dict) else {}


async def _poll_cycles(http: httpx.AsyncClient, watch: Watch) -> int:
    return int(_metric_sum(await http.get(watch.poll), "isams_sync_poll_cycles"))


async def _poll_published(http: httpx.AsyncClient, watch: Watch) -> int:
    return int(_metric_sum(await http.get(watch.poll), "isams_sync_poll_changes"))


def _metric_sum(response: httpx.Response, name: str) -> float:
    """Sum a counter's `_total` samples over all its labels."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        if family.name == name
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def _processed(response: httpx.Response) -> Counter[str]:
    """Sum the consumer's processed-changes counter by outcome."""
    outcomes: Counter[str] = Counter()
    for family in text_string_to_metric_families(response.text):
        if family.name != PROCESSED:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                outcomes[sample.labels["outcome"]] += int(sample.value)
    return outcomes


def _summary(
    console: Console,
    outcomes: Counter[str],
    records: list[SyncRecord],
    state: dict[str, Any],
    stats: dict[str, Any],
    phase1_start: datetime,
    phase2_start: datetime,
    edits_sent: int,
) -> None:
    console.rule("[bold]Summary")
    table = Table(title="Changes processed", show_header=True)
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for outcome, count in sorted(outcomes.items()):
        table.add_row(outcome, str(count))
    console.print(table)

    people = Table(title="In the ledger, by kind and status")
    people.add_column("kind")
    for status in ("synced", "archived", "pending", "skipped"):
        people.add_column(status, justify="right")
    by_kind = Counter((r.kind, r.status.value) for r in records)
    for kind in ("student", "parent", "contact", "staff"):
        people.add_row(
            kind, *(str(by_kind[(kind, s)]) for s in ("synced", "archived", "pending", "skipped"))
        )
    console.print(people)

    skipped = Table(title="Not in ManageBac+, by reason (top 8)")
    skipped.add_column("kind")
    skipped.add_column("reason")
    skipped.add_column("count", justify="right")
    reasons = Counter(
        (r.kind, r.reason) for r in records if r.status.value == "skipped" and r.reason
    )
    for (kind, reason), count in reasons.most_common(8):
        skipped.add_row(kind, reason, str(count))
    console.print(skipped)

    latency = Table(title="Students' latency in the sync (change queued → ManageBac+ write)")
    latency.add_column("phase")
    latency.add_column("writes", justify="right")
    latency.add_column("p50 ms", justify="right")
    latency.add_column("p99 ms", justify="right")
    for name, start, end in (
        ("initial sync", phase1_start, phase2_start),
        (f"live edits ({edits_sent} students edited)", phase2_start, None),
    ):
        values = [
            r.latency_ms
            for r in records
            if r.kind == "student"
            and r.latency_ms is not None
            and r.last_received_at is not None
            and r.last_received_at >= start
            and (end is None or r.last_received_at < end)
        ]
        latency.add_row(name, str(len(values)), *_percentiles(values))
    console.print(latency)
    held = ", ".join(
        f"{sum(not u.get('archived') for u in state[kind])} active and "
        f"{sum(bool(u.get('archived')) for u in state[kind])} archived {kind}"
        for kind in ("students", "parents", "teachers")
    )
    applied = sum(
        count
        for outcome, count in outcomes.items()
        if outcome in ("created", "adopted", "updated", "archived", "unarchived")
    )
    per_change = stats["total"] / applied if applied else 0.0
    by_method: Counter[str] = Counter()
    for route, count in stats.get("requests", {}).items():
        by_method[route.split(" ", 1)[0]] += count
    methods = ", ".join(f"{count} {method}" for method, count in by_method.most_common())
    console.print(
        f"ManageBac+ now holds {held}, and {len(state['links'])} parent-child links. "
        f"It answered {stats['total']} API requests ({methods}; "
        f"{stats['statuses'].get('429', 0)} rate-limited): {per_change:.2f} requests per "
        f"applied change ({applied} changes wrote users; links and reads count too)."
    )


def _edit_latency(
    console: Console, school: SchoolData, edited: dict[str, float], writes: list[Any]
) -> None:
    """Print how long edits in iSAMS took to reach ManageBac+ (through the poller)."""
    codes = {sid: str(school.student(sid).get("schoolCode")) for sid in edited}
    waits = []
    for sid, at in edited.items():
        later = [w["at"] for w in writes if w.get("student_id") == codes[sid] and w["at"] >= at]
        if later:
            waits.append((min(later) - at) * 1000)
    p50, p99 = _percentiles(waits)
    console.print(
        f"Edits in iSAMS reached ManageBac+ (by polling every {POLL_INTERVAL:g} s): "
        f"{len(waits)} of {len(edited)} edited students written; p50 {p50} ms, p99 {p99} ms "
        "(the others changed nothing ManageBac+ holds)."
    )


def _percentiles(values: list[float]) -> tuple[str, str]:
    if len(values) < 2:
        return ("-", "-") if not values else (f"{values[0]:.0f}", f"{values[0]:.0f}")
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49]:.0f}", f"{cuts[98]:.0f}"


def _write_schools_file(
    paths: DemoPaths,
    isams_url: str,
    isams: IsamsConfig,
    managebac_url: str,
    webhook_secret: str,
) -> None:
    """Write the demo's schools file; secrets come from the environment via ${VAR}."""
    document = {
        "schools": [
            {
                "id": SCHOOL_ID,
                "webhook_secrets": [webhook_secret],
                "isams": {
                    "base_url": isams_url,
                    "client_id": isams.client_id,
                    "client_secret": "${DEMO_ISAMS_CLIENT_SECRET}",
                    "poll_interval_s": POLL_INTERVAL,
                },
                "managebac": {
                    "base_url": managebac_url,
                    "token": "${DEMO_MANAGEBAC_TOKEN}",
                    "max_requests_per_second": CLIENT_RATE,
                },
                "mappings": {
                    "grades": GRADES,
                    "contact_types": ["Parents", "Guardian"],
                },
                # Polled staff records carry no ManageBac+ access: teaching staff have it.
                "staff": {"access_from": "teaching_staff"},
            }
        ]
    }
    paths.schools_file.write_text(yaml.safe_dump(document, sort_keys=False))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def main(argv: list[str] | None = None) -> int:
    """`python -m sim.demo`: what `make demo` (and `isams-sync demo`) runs."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sim.demo", description=__doc__)
    parser.add_argument("--students", type=int, default=600, help="size of the generated school")
    parser.add_argument("--edits", type=int, default=200, help="live edits after the first sync")
    parser.add_argument("--edits-per-second", type=float, default=20.0, help="their pace")
    args = parser.parse_args(argv)
    return asyncio.run(run_demo(args.students, args.edits, args.edits_per_second))


if __name__ == "__main__":
    raise SystemExit(main())
