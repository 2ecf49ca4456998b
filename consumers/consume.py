"""The `consume` process: the change runner plus its own /healthz, /readyz, /metrics.

SIGTERM or SIGINT: stop fetching, finish in-flight changes, commit, leave the group, exit 0.
When Kafka is unreachable the runner waits and starts again ("pause and resume").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

import uvicorn

from consumers.adapters.kafka.admin import KAFKA_ERRORS, ensure_topics, ping
from consumers.adapters.kafka.connection import Kafka
from consumers.adapters.ledger import LEDGER_ERRORS
from consumers.bootstrap import open_services
from consumers.health import ReadinessDetail, build_health_router, health_server
from consumers.metrics import record_result
from consumers.parking import RetrySchedule
from consumers.ports import LedgerPort
from consumers.runner import ChangeRunner, RunnerConfig
from consumers.settings import SchoolsFile, Settings

log = logging.getLogger(__name__)


async def run_worker(
    settings: Settings, schools: SchoolsFile, health_host: str, health_port: int
) -> None:
    """Run until a stop signal, then shut down cleanly.

    The health port comes up first, so a probe sees a live process that is not ready while
    Kafka or the database is still unreachable; the worker waits for both rather than exit.
    """
    stopping = asyncio.Event()
    runners: list[ChangeRunner] = []

    def request_stop() -> None:
        log.info("stop requested: finishing in-flight changes")
        stopping.set()
        for runner in runners:
            runner.stop()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)

    kafka = settings.kafka
    async with open_services(settings, schools, client_id="isams-sync-consumer") as services:
        watch = services.year_group_watch()
        server = _health_server(
            kafka, services.ledger, health_host, health_port, {"year_groups": watch.problems}
        )
        health_task = asyncio.create_task(server.serve())
        try:
            if await _retry_until_stopped("ledger", services.ledger.create_schema, stopping):
                service = services.sync_service()
                # At start-up each school's token rights are read: one that lacks some is
                # blocked (its changes wait, the reason named) before its first change.
                await _bounded(service.blocks.check_all(services.school_ports), 30.0)
                # `mappings.grades` schools: year groups read now and every minute, students
                # placed when the cohorts moved grade (consumers/year_groups.py).
                await watch.start()
                runner = ChangeRunner(
                    RunnerConfig(
                        bootstrap=kafka,
                        group_id=settings.consumer_group,
                        topics=settings.topics,
                        retry=RetrySchedule(settings.retry_delays)
                        if settings.retry_delays
                        else RetrySchedule(),
                        blocked_delay=settings.token_recheck_seconds / 2,
                    ),
                    service.process,
                    on_result=record_result,
                    on_share=services.set_managebac_share,
                )
                runners.append(runner)
                if stopping.is_set():
                    runner.stop()

                async def consume() -> None:
                    if settings.kafka_create_topics:
                        await ensure_topics(
                            kafka,
                            settings.topics.all(),
                            settings.kafka_topic_partitions,
                            replication_factor=settings.kafka_replication_factor,
                        )
                    await runner.run()

                await _retry_until_stopped("kafka", consume, stopping)
        finally:
            await watch.stop()
            await services.sync_service().blocks.stop()
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await health_task
    log.info("consumer stopped cleanly")


def _health_server(
    kafka: Kafka,
    ledger: LedgerPort,
    host: str,
    port: int,
    details: dict[str, ReadinessDetail],
) -> uvicorn.Server:
    checks = {"kafka": lambda: ping(kafka, timeout=2.0), "ledger": ledger.ping}
    router = build_health_router(checks, details=details)
    return health_server("isams-sync consumer", router, host, port)


async def _bounded(work: Awaitable[None], seconds: float) -> None:
    """Run start-up work that must not hold the process up for long (it is retried later)."""
    try:
        async with asyncio.timeout(seconds):
            await work
    except TimeoutError:
        log.warning("start-up check took too long; going on", extra={"in_s": seconds})


async def _retry_until_stopped(
    what: str, attempt: Callable[[], Awaitable[None]], stopping: asyncio.Event
) -> bool:
    """Run `attempt` until it succeeds, waiting longer after each failure; False if stopped."""
    backoff = 1.0
    while not stopping.is_set():
        try:
            await attempt()
            return True
        except (*KAFKA_ERRORS, *LEDGER_ERRORS) as exc:
            log.warning(
                f"{what} unavailable; retrying",
                extra={"error": type(exc).__name__, "in_s": backoff},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=backoff)
            backoff = min(backoff * 2, 30.0)
    return False
