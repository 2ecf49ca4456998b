"""`/readyz` with details: what a process reports beside its checks, without failing them
(the consume process: schools whose grades resolve to no year group), in the same shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from consumers.health import ReadinessDetail, build_health_router


async def ok() -> bool:
    return True


async def down() -> bool:
    return False


async def readyz(
    checks: Mapping[str, Any], details: Mapping[str, ReadinessDetail] | None = None
) -> httpx.Response:
    app = FastAPI()
    app.include_router(build_health_router(checks, details=details, registry=CollectorRegistry()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://health") as client:
        return await client.get("/readyz")


def unresolved() -> dict[str, Any]:
    return {"school-a": {"myp;8": "grade myp;8: ManageBac+ has 2 active year groups"}}


async def test_a_detail_is_reported_beside_the_checks_without_failing_readiness() -> None:
    response = await readyz({"kafka": ok, "ledger": ok}, {"year_groups": unresolved})

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"kafka": "ok", "ledger": "ok"},
        "failed": [],
        "detail": {"year_groups": unresolved()},
    }


async def test_a_failed_check_still_fails_readiness_and_the_detail_comes_along() -> None:
    response = await readyz({"kafka": down}, {"year_groups": dict})

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["failed"], body["detail"]) == (
        "unavailable",
        ["kafka"],
        {"year_groups": {}},
    )


async def test_a_detail_that_raises_reports_its_error_class_and_the_probe_answers() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("not today")

    response = await readyz({"kafka": ok}, {"year_groups": broken})

    assert response.status_code == 200
    assert response.json()["detail"] == {"year_groups": {"error": "RuntimeError"}}


async def test_without_details_the_body_keeps_its_shape() -> None:
    response = await readyz({"kafka": ok})

    assert response.json() == {"status": "ready", "checks": {"kafka": "ok"}, "failed": []}
