"""`/healthz`, `/readyz` and `/metrics` (docs/design.md §2.5), shared by `serve` and `consume`.

Readiness is a registered list of named async checks, so each process passes its own
(the ingest service: Kafka and the ledger; the consumers: theirs) and gets the same router.
A process may also name details: what `/readyz` reports beside the checks without failing
them (the consume process: the schools whose grades resolve to no year group), so one
school's problem is seen without taking the process out of service for every school.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Literal

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from pydantic import BaseModel, ConfigDict

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]
ReadinessDetail = Callable[[], Mapping[str, Any]]
CheckState = Literal["ok", "failed"]


class Liveness(BaseModel):
    """The process is alive."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Whether every dependency answered, and each check's result."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ready", "unavailable"]
    checks: dict[str, CheckState]
    failed: list[str]


class DetailedReadiness(Readiness):
    """Readiness, and what the process reports beside it without failing it, by name."""

    detail: dict[str, dict[str, Any]]


def build_health_router(
    checks: Mapping[str, ReadinessCheck],
    *,
    details: Mapping[str, ReadinessDetail] | None = None,
    registry: CollectorRegistry = REGISTRY,
    timeout: float = 3.0,
    alive: Callable[[], bool] | None = None,
) -> APIRouter:
    """Return a router serving liveness, readiness over `checks`, and `registry`'s metrics.

    Each check gets `timeout` seconds; one that raises or times out counts as failed.
    `alive`, when given, is the process's own word on its progress: False makes `/healthz`
    answer 503, so Kubernetes restarts it (the poller: a school's loop has died).
    With `details`, the readiness body also has `detail`: each one's current report.
    """
    named = dict(checks)
    reports = dict(details or {})
    model: type[Readiness] = DetailedReadiness if reports else Readiness
    last: dict[str, CheckState] = dict.fromkeys(named, "ok")
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        operation_id="getHealthz",
        summary="Liveness: 200 while the process lives",
        response_model=Liveness,
    )
    async def healthz() -> Liveness | JSONResponse:
        if alive is not None and not alive():
            return JSONResponse({"status": "stalled"}, status_code=503)
        return Liveness()

    @router.get(
        "/readyz",
        operation_id="getReadyz",
        summary="Readiness: 200 only when every dependency answers",
        response_model=model,
        responses={503: {"model": model, "description": "A dependency did not answer"}},
    )
    async def readyz() -> JSONResponse:
        results = await asyncio.gather(
            *(_run(name, check, timeout) for name, check in named.items())
        )
        states: dict[str, CheckState] = {}
        for name, (state, reason) in zip(named, results, strict=True):
            states[name] = state
            if state != last[name]:  # log changes, not every probe of a poller
                if state == "failed":
                    log.warning("readiness check %s failed: %s", name, reason)
                else:
                    log.info("readiness check %s is ok again", name)
                last[name] = state
        failed = [name for name, state in states.items() if state == "failed"]
        status: Literal["ready", "unavailable"] = "unavailable" if failed else "ready"
        body = (
            DetailedReadiness(status=status, checks=states, failed=failed, detail=_details(reports))
            if reports
            else Readiness(status=status, checks=states, failed=failed)
        )
        return JSONResponse(body.model_dump(), status_code=503 if failed else 200)

    @router.get(
        "/metrics",
        operation_id="getMetrics",
        summary="Prometheus metrics (text exposition format)",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return router


async def _run(name: str, check: ReadinessCheck, timeout: float) -> tuple[CheckState, str]:
    """Run one check; return its state and, when failed, why (an error class, no data)."""
    try:
        async with asyncio.timeout(timeout):
            ok = await check()
    except TimeoutError:
        return "failed", f"no answer within {timeout:g} s"
    except Exception as exc:  # a probe reports failure, it never fails the request
        return "failed", exc.__class__.__name__
    return ("ok", "") if ok else ("failed", "answered not ready")


def _details(reports: Mapping[str, ReadinessDetail]) -> dict[str, dict[str, Any]]:
    """Take each detail's report now; one that raises reports its error class only."""
    taken: dict[str, dict[str, Any]] = {}
    for name, report in reports.items():
        try:
            taken[name] = dict(report())
        except Exception as exc:  # a detail never fails the probe
            taken[name] = {"error": exc.__class__.__name__}
    return taken


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process it runs in."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def health_server(title: str, router: APIRouter, host: str, port: int) -> uvicorn.Server:
    """Return the health port's server of a worker process (`consume`, `poll`): started
    first, so a probe sees a live process that is not ready while its dependencies are
    still unreachable; it leaves SIGTERM to the process, which drains before it exits."""
    app = FastAPI(title=title, openapi_url=None)
    app.include_router(router)
    return _QuietServer(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    )
