"""The admin API on the real app: token rules and explain, read from a real SQLite ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from consumers.adapters.ledger import Ledger
from consumers.domain.records import Status, SyncRecord
from sim.serving import serve_app
from tests.integration.ingest_support import SCHOOL, schools_file

pytestmark = pytest.mark.kafka

ADMIN_TOKEN = "admin-token-for-the-tests-0123456789"
EXPLAIN = f"/v1/schools/{SCHOOL}/records/student/1456290774001"


def _settings(kafka_bootstrap: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap": kafka_bootstrap,
        "kafka_topic_prefix": "admin-tests.",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        **overrides,
    }
    return Settings(**values)


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_app(create_app(settings, schools_file())) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield http


@pytest.fixture
async def admin(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client(_settings(kafka_bootstrap, tmp_path, admin_token=ADMIN_TOKEN)):
        http.headers["authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield http


async def test_without_an_admin_token_set_the_admin_api_answers_403(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async for http in _client(_settings(kafka_bootstrap, tmp_path)):
        response = await http.get(EXPLAIN, headers={"authorization": "Bearer anything"})
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert "SYNC_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {ADMIN_TOKEN}"])
async def test_a_missing_or_wrong_token_answers_401(
    admin: httpx.AsyncClient, header: str | None
) -> None:
    del admin.headers["authorization"]
    response = await admin.get(EXPLAIN, headers={"authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert ADMIN_TOKEN not in response.text


async def test_explain_a_record_never_seen(admin: httpx.AsyncClient) -> None:
    response = await admin.get(EXPLAIN)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "not_seen"
    assert "never seen" in body["explanation"]


async def test_explain_a_skipped_record_gives_its_reason(
    admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    ledger = Ledger.from_url(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    try:
        await ledger.create_schema()
        await ledger.put(
            SyncRecord(
                school=SCHOOL,
                kind="student",
                isams_id="1456290774001",
                status=Status.SKIPPED,
                reason="yearGroup 5 is not in mappings.year_groups",
                warnings=("gender: the iSAMS value is not M or F, so no gender was sent",),
                last_received_at=datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
            )
        )
    finally:
        await ledger.close()

    body = (await admin.get(EXPLAIN)).json()
    assert body["status"] == "skipped"
    assert body["reason"] == "yearGroup 5 is not in mappings.year_groups"
    assert body["warnings"] == ["gender: the iSAMS value is not M or F, so no gender was sent"]
    assert "why: yearGroup 5" in body["explanation"]


async def test_explain_refuses_an_unknown_school_and_kind(admin: httpx.AsyncClient) -> None:
    unknown_school = await admin.get("/v1/schools/nowhere/records/student/1")
    assert unknown_school.status_code == 404
    assert unknown_school.headers["content-type"] == "application/problem+json"
    unknown_kind = await admin.get(f"/v1/schools/{SCHOOL}/records/teacher/1")
    assert unknown_kind.status_code == 422
