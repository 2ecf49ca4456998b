"""The `poll` process: one poll loop per school, plus its own /healthz, /readyz, /metrics.

docs/design.md §6: every school with `poll_interval_s > 0` (or the ones named) is polled,
each on its own: cycles start `poll_interval_s` apart (start to start), the first at
start-up, and one school's iSAMS refusing or hanging never holds another back. The health
port comes up first; `/readyz` needs Kafka and the ledger, `/healthz` is 200 while every
school's loop runs, whatever iSAMS answers (that is the school's status, in the metrics and
the ledger's `poll` rows). SIGTERM or SIGINT: each running cycle publishes and stores what
it has read and stops before another page; the process exits 0 within 30 s.

`--once` runs one cycle per school and exits: 0 when every cycle ran whole, 3 when the
guard held removals, 1 when a list could not be read or a cycle failed (the worse wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import uvicorn
from prometheus_client import CollectorRegistry

from consumers.adapters.isams import POLL_RETRY, IsamsRetryPolicy
from consumers.adapters.kafka.admin import ping
from consumers.adapters.ledger import LEDGER_ERRORS
from consumers.bootstrap import Services, open_services
from consumers.capture.poll import poll_school
from consumers.capture.poll_report import PollReport
from consumers.health import build_health_router, health_server
from consumers.poll_metrics import PollMetrics, new_registry
from consumers.settings import School, SchoolsFile, Settings

log = logging.getLogger(__name__)

EXIT_RAN = 0
EXIT_ERROR = 1
EXIT_GUARD_HELD = 3
# A cycle of a large school on a slow iSAMS: ~40 pages, each bounded by the client's
# retries. Past this it is cancelled (nothing is lost: hashes follow Kafka's acks).
CYCLE_TIMEOUT = 1800.0
# After SIGTERM, running cycles get this long to publish and store the page in hand; then
# they are cancelled, so that closing Kafka and the ledger still fits in 30 s.
STOP_GRACE = 20.0
READY_WAIT_ONCE = 30.0


class PollRequestError(ValueError):
    """The schools asked for cannot be polled as asked; says which and why."""


def schools_to_poll(schools: SchoolsFile, named: Sequence[str], once: bool) -> list[School]:
    """Choose the schools: the named ones, else every school with a poll interval.

    A named school without an interval can be polled `--once` only (it has no schedule).
    """
    if not named:
        return [school for school in schools.schools if school.isams.polled]
    chosen = [schools.school(school_id) for school_id in dict.fromkeys(named)]
    unscheduled = [school.id for school in chosen if not school.isams.polled]
    if unscheduled and not once:
        raise PollRequestError(
            f"{', '.join(unscheduled)}: isams.poll_interval_s is 0 (webhooks only); "
            "poll it with --once, or give it an interval in the schools file"
        )
    return chosen


@dataclass
class PollOutcome:
    """What the cycles of a `--once` run came to."""

    reports: dict[str, PollReport | None] = field(default_factory=dict)

    def exit_code(self) -> int:
        """1 when a cycle failed or a list was refused, else 3 when the guard held, else 0."""
        if any(r is None or not r.ok for r in self.reports.values()):
            return EXIT_ERROR
        if any(r is not None and r.guard_held for r in self.reports.values()):
            return EXIT_GUARD_HELD
        return EXIT_RAN


class Poller:
    """Poll loops over the services, one task per school."""

    def __init__(
        self,
        services: Services,
        schools: Sequence[School],
        metrics: PollMetrics,
        *,
        once: bool,
        force: bool,
    ) -> None:
        self.services = services
        self.schools = list(schools)
        self.metrics = metrics
        self.once = once
        self.force = force
        self.stopping = asyncio.Event()
        self.outcome = PollOutcome()
        self.tasks: list[asyncio.Task[None]] = []

    def alive(self) -> bool:
        """Tell whether every school's loop still runs (or the process is stopping)."""
        return self.stopping.is_set() or all(not task.done() for task in self.tasks)

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._loop(school), name=f"poll-{school.id}")
            for school in self.schools
        ]

    async def wait(self) -> None:
        """Wait for the loops to end (all of them, for `--once`; else until stopped)."""
        if self.tasks:
            await asyncio.wait(self.tasks)

    async def stop(self) -> None:
        """Ask every cycle to stop before its next page; cancel what outlasts the grace."""
        self.stopping.set()
        if not self.tasks:
            return
        _, late = await asyncio.wait(self.tasks, timeout=STOP_GRACE)
        for task in late:
            task.cancel()
        if late:
            log.warning("poll cycles cancelled at stop", extra={"cycles": len(late)})
            await asyncio.wait(late, timeout=5.0)

    async def _loop(self, school: School) -> None:
        interval = school.isams.poll_interval_s
        force = self.force
        while not self.stopping.is_set():
            started = time.monotonic()
            report = await self._cycle(school, force)
            force = False  # released once: later cycles judge again
            if self.once:
                self.outcome.reports[school.id] = report
                return
            wait = max(interval - (time.monotonic() - started), 0.0)
            if report is not None and report.retry_after is not None:
                wait = max(wait, report.retry_after)  # iSAMS throttles the key: let it be
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=wait)

    async def _cycle(self, school: School, force: bool) -> PollReport | None:
        """Run one cycle of one school; its failures are logged and counted, never raised."""
        ports = self.services.ports_of(school.id)
        assert ports is not None, "the school comes from the services' own schools file"
        started = time.monotonic()
        report: PollReport | None = None
        try:
            async with asyncio.timeout(CYCLE_TIMEOUT):
                report = await poll_school(
                    school.id,
                    ports.isams,
                    self.services.ledger,
                    self.services.publisher,
                    self.services.topics,
                    force=force,
                    stop=self.stopping.is_set,
                )
        except TimeoutError:
            log.error("poll cycle timed out", extra={"school": school.id, "after_s": CYCLE_TIMEOUT})
        except Exception as exc:  # one school's failure (a bug, the ledger) stops no other
            log.error("poll cycle failed", extra={"school": school.id, "error": type(exc).__name__})
        self.metrics.observe(school.id, report, time.monotonic() - started)
        if report is not None:
            level = logging.INFO if report.ok else logging.WARNING
            log.log(level, report.summary(), extra={"school": school.id, "run": report.run_id})
        return report


async def run_poller(
    settings: Settings,
    schools_file: SchoolsFile,
    chosen: Sequence[School],
    *,
    once: bool = False,
    force: bool = False,
    health_host: str = "0.0.0.0",  # noqa: S104  (probes come from the cluster)
    health_port: int = 8091,
    isams_retry: IsamsRetryPolicy | None = None,
) -> int:
    """Poll until a stop signal (or, `--once`, one cycle per school); return the exit code.

    The health port comes up first, so a probe sees a live process that is not ready while
    Kafka or the database is still unreachable; the poller waits for both rather than exit
    (a `--once` run waits a bounded time, then fails with 1).
    """
    signalled = asyncio.Event()
    pollers: list[Poller] = []

    def request_stop() -> None:
        log.info("stop requested: finishing the pages in hand")
        signalled.set()
        for poller in pollers:
            poller.stopping.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)
    registry = new_registry()
    async with open_services(
        settings,
        schools_file,
        client_id="isams-sync-poller",
        publish_timeout=30.0,
        isams_retry=isams_retry or POLL_RETRY,
    ) as services:
        poller = Poller(services, chosen, PollMetrics(registry), once=once, force=force)
        pollers.append(poller)
        server = _health_server(services, poller, registry, health_host, health_port)
        health_task = asyncio.create_task(server.serve())
        try:
            if not await _ready(services, signalled, once):
                return EXIT_RAN if signalled.is_set() else EXIT_ERROR
            if signalled.is_set():
                return EXIT_RAN
            if not chosen:
                # Not an error: a webhooks-only environment keeps a healthy, idle poller
                # (exiting would only make Kubernetes restart it again and again).
                log.warning("no school has isams.poll_interval_s > 0: nothing to poll")
            log.info("polling", extra={"schools": [s.id for s in chosen], "once": once})
            poller.start()
            await _until_done_or_stopped(poller, signalled)
            await poller.stop()
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await health_task
    log.info("poller stopped cleanly")
    if signalled.is_set() or not once:
        return EXIT_RAN
    return poller.outcome.exit_code()


async def _until_done_or_stopped(poller: Poller, signalled: asyncio.Event) -> None:
    """Wait for every loop to end (`--once`) or for a stop signal, whichever comes first;
    with no school to poll and no `--once`, for the signal."""
    if not poller.tasks and not poller.once:
        await signalled.wait()
        return
    waiting = asyncio.create_task(poller.wait())
    stopped = asyncio.create_task(signalled.wait())
    await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for task in (waiting, stopped):
        task.cancel()
    await asyncio.gather(waiting, stopped, return_exceptions=True)


async def _ready(services: Services, stopping: asyncio.Event, once: bool) -> bool:
    """Bring the ledger's schema up and connect to Kafka, waiting for both (bounded when
    `once`: a one-off run that cannot reach them fails instead of waiting for ever)."""
    deadline = time.monotonic() + READY_WAIT_ONCE
    backoff = 1.0
    schema_ready = False
    started_publisher = False
    while not stopping.is_set():
        try:
            if not schema_ready:
                await services.ledger.create_schema()
                schema_ready = True
            if not started_publisher:
                await services.start_publisher()
                started_publisher = True
            if await services.publisher.ping():
                return True
            what = "kafka"
        except LEDGER_ERRORS as exc:
            what = f"ledger ({type(exc).__name__})"
        if once and time.monotonic() >= deadline:
            log.error("not ready: giving up", extra={"waiting_for": what})
            return False
        log.warning("not ready; retrying", extra={"waiting_for": what, "in_s": backoff})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=backoff)
        backoff = min(backoff * 2, 10.0)
    return False


def _health_server(
    services: Services, poller: Poller, registry: CollectorRegistry, host: str, port: int
) -> uvicorn.Server:
    kafka = services.kafka
    router = build_health_router(
        {"kafka": lambda: ping(kafka, timeout=2.0), "ledger": services.ledger.ping},
        registry=registry,
        alive=poller.alive,
    )
    return health_server("isams-sync poller", router, host, port)
