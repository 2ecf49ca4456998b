"""The stack the sync benchmarks share (`bench.full_sync`, `bench.poll`): one school.

- **The school**: `generate_school(students, seed)`, topped up to `staff` employees from a
  second generated school when asked for more than it has (`students // 10`), with fresh
  ids and unique e-mails. Staff sync with `staff.access_from: all_current`.
- **iSAMS**: the simulator in this process (`sim.serving.serve_app`), sharing the school, so
  the benchmark can edit it and read `/_sim/stats`.
- **ManageBac+**: the simulator as its own process, `--rate-limit` requests per second per
  client address; the school's `max_requests_per_second` is set to the same.
- **The service**: `isams-sync consume`, `serve` and `poll` as processes
  (`sim.stack.ManagedProcess`), and the one-off commands (`backfill`, `reconcile`) run to
  their end, all with the same `SYNC_*` environment and schools file in a temp folder.
- **Kafka**: the shared local broker, which is never started or stopped here; each run has
  its own topic prefix and consumer group, and deletes its topics at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import secrets
import statistics
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.consumer import PARTITIONS, WEBHOOK_SECRET, YEAR_GROUPS
from bench.cpu import machine_busy, process_cpu
from consumers.adapters.kafka.admin import delete_topics, ensure_topics, ping
from consumers.settings import Topics
from sim.isams.app import SimConfig as IsamsConfig
from sim.isams.app import create_app as create_isams_app
from sim.isams.school import SchoolData, generate_school
from sim.isams.store import roll_of
from sim.serving import free_port, serve_app
from sim.stack import REPO, ManagedProcess, python_module, sync_command, wait_ready

BOOTSTRAP = "127.0.0.1:9092"
SEED = 2026
PROCESSED = "isams_sync_changes_processed"
SETTLE_SECONDS = 5.0  # no ManageBac+ request for this long, all changes processed: done


# The school --------------------------------------------------------------------------------


def bench_school(students: int, staff: int, seed: int = SEED) -> SchoolData:
    """The generated school, with `staff` employees (topped up if it has fewer)."""
    school = generate_school(students, seed=seed)
    missing = staff - len(school.employees)
    if missing > 0:
        _add_staff(school, missing, seed)
    return school


def _add_staff(school: SchoolData, count: int, seed: int) -> None:
    """Add `count` employees taken from another generated school: new ids, unique e-mails."""
    donor = generate_school(count * 10, seed=seed + 1)
    taken = {
        str(e.get(key) or "").lower()
        for e in school.employees.values()
        for key in ("schoolEmailAddress", "personalEmailAddress")
    }
    next_id = max(school.employees, default=0) + 1
    for donor_id, employee in list(donor.employees.items())[:count]:
        record = copy.deepcopy(employee)
        record["id"] = next_id
        for key in ("schoolEmailAddress", "personalEmailAddress"):
            record[key] = _unique_email(record.get(key), next_id, taken)
        school.employees[next_id] = record
        school.managebac_access[next_id] = donor.managebac_access.get(donor_id, False)
        next_id += 1


def _unique_email(value: object, number: int, taken: set[str]) -> object:
    if not isinstance(value, str) or "@" not in value:
        return value
    if value.lower() in taken:
        local, domain = value.split("@", 1)
        value = f"{local}.{number}@{domain}"
    taken.add(value.lower())
    return value


def synced_students(school: SchoolData) -> list[str]:
    """The schoolIds that sync to ManageBac+: pupils on roll in a mapped year."""
    return [
        str(r["schoolId"])
        for r in school.all_students()
        if roll_of(r) == "current" and r.get("yearGroup") in YEAR_GROUPS
    ]


def list_pages(school: SchoolData, page_size: int = 500) -> dict[str, int]:
    """The pages of each list one poll cycle reads (the iSAMS client's pages of 500)."""
    pupils = Counter(roll_of(r) for r in school.all_students())
    sizes = {
        "GET /api/students": pupils["current"],
        "GET /api/alumni": pupils["alumni"],
        "GET /api/students/contacts": school.listed_contacts(0, 10**7, include_deceased=True)[0],
        "GET /api/humanresources/employees": len(school.all_employees()),
    }
    return {route: max(1, -(-size // page_size)) for route, size in sizes.items()}


def describe_school(school: SchoolData) -> str:
    """One line: how many pupils, contacts (records and persons) and staff."""
    contacts = school.all_contacts()
    mapped = sum(1 for c in contacts if c.get("contactType") in ("Parents", "Guardian"))
    persons = {c.get("personId") for c in contacts} | {
        c.get("secondaryPersonId") for c in contacts if c.get("secondaryPersonId")
    }
    rolls = Counter(roll_of(r) for r in school.all_students())
    return (
        f"{len(school.students)} pupils ({rolls['current']} on roll, {rolls['alumni']} "
        f"leavers, {rolls['applicants']} future; {len(synced_students(school))} in mapped "
        f"years), {len(contacts)} contact records ({mapped} Parents/Guardian, "
        f"{len(persons)} persons), {len(school.employees)} staff"
    )


# Kafka ------------------------------------------------------------------------------------


async def require_broker(bootstrap: str = BOOTSTRAP) -> None:
    """Stop with a message when the shared broker does not answer (it is never started here)."""
    if not await ping(bootstrap, timeout=10.0):
        raise SystemExit(f"no Kafka broker answers at {bootstrap} (start it: scripts/kafka.sh)")


@asynccontextmanager
async def run_topics(name: str, bootstrap: str = BOOTSTRAP) -> AsyncIterator[Topics]:
    """This run's own topics (`bench-<name>-<time>-<hex>.`), deleted at the end."""
    prefix = f"bench-{name}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}."
    topics = Topics.with_prefix(prefix)
    await ensure_topics(bootstrap, topics.all(), partitions=PARTITIONS)
    try:
        yield topics
    finally:
        await delete_topics(bootstrap, topics.all())


# The stack --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RigOptions:
    """What the school and its schools-file entry look like."""

    students: int
    staff: int
    rate_limit: int  # ManageBac+ requests/s per client address, and the school's budget
    poll_interval_s: float = 0.0
    database_url: str | None = None
    seed: int = SEED


@dataclass(frozen=True)
class Finished:
    """How a one-off command ended."""

    returncode: int
    stdout: str
    stderr: str
    started: float  # wall clock
    seconds: float


@dataclass
class Rig:
    """The running simulators, the service's environment and its processes."""

    root: Path
    school: SchoolData
    school_id: str
    isams_url: str
    managebac_url: str
    simulator: ManagedProcess  # ManageBac+'s (iSAMS runs in this process)
    env: dict[str, str]
    http: httpx.AsyncClient
    exits: AsyncExitStack
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    async def start(self, name: str, *args: str, ready: str = "/readyz") -> str:
        """Start `isams-sync NAME ARGS` with its health port; return its base URL when ready."""
        port = free_port()
        option = "--port" if name == "serve" else "--health-port"
        extra = () if name == "serve" else ("--health-host", "127.0.0.1")
        process = ManagedProcess(
            f"isams-sync {name}",
            sync_command(name, *args, option, str(port), *extra),
            self.root / f"{name}.log",
            self.env,
        )
        self.exits.callback(process.stop)
        process.start()
        self.processes[name] = process
        self.ports[name] = port
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url + ready, process)
        return url

    def pid(self, name: str) -> int:
        process = self.processes[name].process
        assert process is not None
        return process.pid

    async def command(self, *args: str, timeout: float = 1800.0) -> Finished:
        """Run `isams-sync ARGS` to its end, without blocking this loop (iSAMS runs in it)."""
        started, clock = time.time(), time.monotonic()
        child = await asyncio.create_subprocess_exec(
            *sync_command(*args),
            env={**os.environ, **self.env},
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(child.communicate(), timeout=timeout)
        except TimeoutError:
            child.kill()
            await child.wait()
            raise SystemExit(f"isams-sync {' '.join(args)} took over {timeout:.0f} s") from None
        assert child.returncode is not None
        return Finished(
            child.returncode,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
            started,
            time.monotonic() - clock,
        )

    async def managebac(self, path: str, **params: Any) -> Any:
        """GET a ManageBac+ simulator control route (`/_sim/...`)."""
        response = await self.http.get(f"{self.managebac_url}/_sim/{path}", params=params)
        response.raise_for_status()
        return response.json()

    async def request_times(self, since: float) -> list[tuple[float, str, str, int]]:
        """ManageBac+'s `/v2` requests answered after `since`: (at, method, path, status)."""
        response = await self.http.get(
            f"{self.managebac_url}/_bench/requests", params={"since": since}
        )
        response.raise_for_status()
        return [(float(a), str(m), str(p), int(s)) for a, m, p, s in response.json()]

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: each service process, the ManageBac+ simulator, this process
        (the iSAMS simulator, the benchmark) and the whole machine."""
        used = {name: process_cpu(self.pid(name)) for name in self.processes}
        assert self.simulator.process is not None
        used["managebac sim"] = process_cpu(self.simulator.process.pid)
        used["bench + iSAMS sim"] = process_cpu(os.getpid())
        used["machine"] = machine_busy()
        return used

    async def isams(self, path: str) -> Any:
        """GET an iSAMS simulator control route (`/_sim/...`)."""
        response = await self.http.get(f"{self.isams_url}/_sim/{path}")
        response.raise_for_status()
        return response.json()

    async def metrics(self, name: str) -> str:
        return (await self.http.get(f"http://127.0.0.1:{self.ports[name]}/metrics")).text

    async def processed(self) -> int:
        """The changes `consume` has finished (every outcome)."""
        return int(metric_sum(await self.metrics("consume"), PROCESSED))

    def check_alive(self) -> None:
        for process in self.processes.values():
            if not process.alive():
                raise SystemExit(f"{process.name} died:\n{process.log_tail()}")


@asynccontextmanager
async def open_rig(options: RigOptions, topics: Topics, root: Path) -> AsyncIterator[Rig]:
    """Start the simulators and write the service's environment; stop everything at the end."""
    async with AsyncExitStack() as exits:
        school = bench_school(options.students, options.staff, options.seed)
        isams_config = IsamsConfig(client_secret=secrets.token_urlsafe(16))
        isams_url = await exits.enter_async_context(
            serve_app(create_isams_app(isams_config, school), lifespan="off")
        )
        token = secrets.token_urlsafe(16)
        managebac_url, simulator = await _start_managebac(exits, root, token, options.rate_limit)
        school_id = f"bench-{uuid.uuid4().hex[:8]}"
        schools_file = root / "schools.yaml"
        entry = _school_entry(school_id, isams_url, isams_config, managebac_url, token, options)
        schools_file.write_text(yaml.safe_dump({"schools": [entry]}, sort_keys=False))
        env = {
            "SYNC_KAFKA_BOOTSTRAP": BOOTSTRAP,
            "SYNC_KAFKA_TOPIC_PREFIX": topics.changes.removesuffix("isams.changes"),
            "SYNC_CONSUMER_GROUP": f"{school_id}-group",
            "SYNC_DATABASE_URL": options.database_url
            or f"sqlite+aiosqlite:///{root / 'ledger.db'}",
            "SYNC_SCHOOLS_FILE": str(schools_file),
            "SYNC_LOG_LEVEL": "WARNING",
        }
        http = await exits.enter_async_context(httpx.AsyncClient(timeout=60.0))
        yield Rig(root, school, school_id, isams_url, managebac_url, simulator, env, http, exits)


async def _start_managebac(
    exits: AsyncExitStack, root: Path, token: str, rate: int
) -> tuple[str, ManagedProcess]:
    port = free_port()
    process = ManagedProcess(
        "ManageBac+ simulator",
        python_module(
            "bench.managebac_timed",
            "--port",
            str(port),
            f"--token={token}",  # (a token may start with "-")
            "--rate-limit",
            str(rate),
            "--year-groups",
            ",".join(f"{k}:{v}" for k, v in YEAR_GROUPS.items()),
        ),
        root / "managebac.log",
    )
    exits.callback(process.stop)
    process.start()
    url = f"http://127.0.0.1:{port}"
    await wait_ready(f"{url}/_sim/stats", process)
    return url, process


def _school_entry(
    school_id: str,
    isams_url: str,
    isams: IsamsConfig,
    managebac_url: str,
    token: str,
    options: RigOptions,
) -> dict[str, Any]:
    return {
        "id": school_id,
        "webhook_secrets": [WEBHOOK_SECRET],
        "isams": {
            "base_url": isams_url,
            "client_id": isams.client_id,
            "client_secret": isams.client_secret,
            "poll_interval_s": options.poll_interval_s,
        },
        "managebac": {
            "base_url": managebac_url,
            "token": token,
            "max_requests_per_second": options.rate_limit,
        },
        "mappings": {"year_groups": YEAR_GROUPS},
        "staff": {"access_from": "all_current"},
    }


# Following the sync ------------------------------------------------------------------------


@dataclass
class WriteLog:
    """ManageBac+'s write log, read incrementally (`/_sim/writes?since=`)."""

    writes: list[dict[str, Any]] = field(default_factory=list)
    students: set[str] = field(default_factory=set)  # student_ids created so far
    since: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def refresh(self, rig: Rig) -> None:
        async with self.lock:  # two readers must not both append the same writes
            await self._read(rig)

    async def _read(self, rig: Rig) -> None:
        new: list[dict[str, Any]] = await rig.managebac("writes", since=self.since)
        for write in new:
            self.writes.append(write)
            if write.get("kind") == "student" and write.get("student_id"):
                self.students.add(str(write["student_id"]))
        if new:
            self.since = float(new[-1]["at"])

    def between(self, start: float, end: float) -> list[dict[str, Any]]:
        return [w for w in self.writes if start <= float(w["at"]) <= end]


async def requests_total(rig: Rig) -> int:
    return int((await rig.managebac("stats"))["total"])


async def settle(rig: Rig, processed: int, timeout: float) -> None:
    """Wait until `consume` finished `processed` changes and ManageBac+ is quiet."""
    deadline = time.monotonic() + timeout
    last, quiet_since = -1, time.monotonic()
    while True:
        rig.check_alive()
        total, done = await requests_total(rig), await rig.processed()
        if total != last:
            last, quiet_since = total, time.monotonic()
        if done >= processed and time.monotonic() - quiet_since >= SETTLE_SECONDS:
            return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"not settled after {timeout:.0f} s: {done} of {processed} changes processed; "
                f"consume's log ends:\n{rig.processes['consume'].log_tail(20)}"
            )
        await asyncio.sleep(0.5)


# Reading figures ---------------------------------------------------------------------------


def metric_sum(text: str, family: str, sample: str = "_total", **labels: str) -> float:
    """Sum a metric family's samples (ending in `sample`) whose labels match `labels`."""
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        if f.name == family
        for s in f.samples
        if s.name == family + sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def route_delta(after: Mapping[str, int], before: Mapping[str, int]) -> Counter[str]:
    """Requests per route between two `/_sim/stats` snapshots (routes that moved)."""
    delta = Counter({route: n - before.get(route, 0) for route, n in after.items()})
    return +delta


def by_method(routes: Mapping[str, int]) -> Counter[str]:
    """Requests per HTTP method from per-route counts (`GET /v2/students` → GET)."""
    methods: Counter[str] = Counter()
    for route, count in routes.items():
        methods[route.split(" ", 1)[0]] += count
    return methods


def percentile(values: Iterable[float], pct: int) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    return statistics.quantiles(data, n=100, method="inclusive")[pct - 1]


def percentiles(values: list[float], unit: str = "s") -> str:
    if not values:
        return "no data"
    parts = [f"p{p} {percentile(values, p):.2f} {unit}" for p in (50, 90, 99)]
    return ", ".join([*parts, f"max {max(values):.2f} {unit}", f"n={len(values)}"])


def counts(values: Mapping[str, int]) -> str:
    """`{'GET': 3, 'POST': 1}` as `GET 3, POST 1` (largest first)."""
    if not values:
        return "none"
    return ", ".join(f"{k} {v}" for k, v in sorted(values.items(), key=lambda kv: -kv[1]))


def school_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The options every benchmark on a generated school takes: its size, ManageBac+'s rate,
    the ledger and where to write the figures."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--students", type=int, default=2000, help="pupils (default 2000)")
    parser.add_argument("--staff", type=int, default=250, help="employees (default 250)")
    parser.add_argument(
        "--rate", type=int, default=50, help="ManageBac+ requests/s, limit and budget (50)"
    )
    parser.add_argument("--database-url", default=None, help="ledger; default a temp SQLite")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser


Figures = TypeVar("Figures")


def run_and_report(
    argv: Sequence[str] | None,
    parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, Figures]],
    report: Callable[[Figures], None],
) -> int:
    """A benchmark's `main`: run it, print its figures, and write them to `--json` if given."""
    options = parse_args(argv)
    figures = asyncio.run(run(options))
    report(figures)
    if options.json is not None:
        options.json.write_text(json.dumps(asdict(figures), indent=2, default=str))  # type: ignore[call-overload]
    return 0
