"""The `consume` process: the change runner plus its own /healthz, /readyz, /metrics.

SIGTERM or SIGINT: stop fetching, finish in-flight changes, commit, leave the group, exit 0.
When Kafka is unreachable the runner waits and starts again ("pause and resume").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn
from aiokafka.errors import KafkaError
from fastapi import FastAPI

from app.routes.health import build_health_router
from app.settings import Settings, load_schools
from consumers.adapters.kafka_admin import ensure_topics, ping
from consumers.bootstrap import build_sync_service
from consumers.metrics import record_result
from consumers.runner import ChangeRunner, RetrySchedule, RunnerConfig

log = logging.getLogger(__name__)


async def run_worker(settings: Settings, health_host: str, health_port: int) -> None:
    """Run until a stop signal, then shut down cleanly."""
    schools = load_schools(settings.schools_file)
    async with build_sync_service(settings, schools) as service:
        runner = ChangeRunner(
            RunnerConfig(
                bootstrap=settings.kafka_bootstrap,
                group_id=settings.consumer_group,
                topics=settings.topics,
                retry=RetrySchedule(settings.retry_delays)
                if settings.retry_delays
                else RetrySchedule(),
            ),
            service.process,
            on_result=record_result,
        )
        health_app = FastAPI(title="isams-sync consumer", openapi_url=None)
        health_app.include_router(
            build_health_router(
                {
                    "kafka": lambda: ping(settings.kafka_bootstrap, timeout=2.0),
                    "ledger": service.ledger.ping,
                }
            )
        )
        server = _QuietServer(
            uvicorn.Config(
                health_app, host=health_host, port=health_port, log_config=None, access_log=False
            )
        )
        stopping = asyncio.Event()

        def request_stop() -> None:
            log.info("stop requested: finishing in-flight changes")
            stopping.set()
            runner.stop()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, request_stop)

        health_task = asyncio.create_task(server.serve())
        try:
            await _run_until_stopped(settings, runner, stopping)
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await health_task
    log.info("consumer stopped cleanly")


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the worker."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _run_until_stopped(
    settings: Settings, runner: ChangeRunner, stopping: asyncio.Event
) -> None:
    backoff = 1.0
    while not stopping.is_set():
        try:
            await ensure_topics(settings.kafka_bootstrap, settings.topics.all())
            await runner.run()
            return
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning(
                "Kafka unavailable; retrying", extra={"error": type(exc).__name__, "in_s": backoff}
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=backoff)
            backoff = min(backoff * 2, 30.0)
