"""The admin API on the real app: token rules and explain, read from a real SQLite ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from app.main import open_app
from app.routes.admin import RecordKind
from consumers.adapters.ledger import Ledger
from consumers.domain.records import Status, SyncRecord
from consumers.ops.explain import EXPLAINABLE_KINDS
from consumers.settings import Settings
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
        open_app(settings, schools_file()) as app,
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield http


async def put_rows(tmp_path: Path, *records: SyncRecord) -> None:
    """Write ledger rows where the admin app under test reads them."""
    ledger = Ledger.from_url(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    try:
        await ledger.create_schema()
        for record in records:
            await ledger.put(record)
    finally:
        await ledger.close()


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
    await put_rows(
        tmp_path,
        SyncRecord(
            school=SCHOOL,
            kind="student",
            isams_id="1456290774001",
            status=Status.SKIPPED,
            reason="yearGroup 5 is not in mappings.year_groups",
            warnings=("gender: the iSAMS value is not M or F, so no gender was sent",),
            last_received_at=datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
        ),
    )

    body = (await admin.get(EXPLAIN)).json()
    assert body["status"] == "skipped"
    assert body["reason"] == "yearGroup 5 is not in mappings.year_groups"
    assert body["warnings"] == ["gender: the iSAMS value is not M or F, so no gender was sent"]
    assert "why: yearGroup 5" in body["explanation"]


@pytest.mark.parametrize("status", list(Status))
async def test_explain_answers_for_every_status_a_ledger_row_can_have(
    admin: httpx.AsyncClient, tmp_path: Path, status: Status
) -> None:
    await put_rows(
        tmp_path,
        SyncRecord(
            school=SCHOOL,
            kind="contact",
            isams_id="4411",
            status=status,
            reason=f"the reason of a {status.value} row",
        ),
    )

    response = await admin.get(f"/v1/schools/{SCHOOL}/records/contact/4411")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == status.value
    assert body["explanation"].startswith(f"contact 4411: {status.value}")
    assert f"why: the reason of a {status.value} row" in body["explanation"]


def test_the_admin_api_and_the_cli_explain_the_same_kinds() -> None:
    assert get_args(RecordKind) == EXPLAINABLE_KINDS


async def test_explain_a_parent_by_person(admin: httpx.AsyncClient, tmp_path: Path) -> None:
    person = "0f6a8a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    await put_rows(
        tmp_path,
        SyncRecord(
            school=SCHOOL, kind="parent", isams_id=person, status=Status.SYNCED, managebac_id=7
        ),
    )

    body = (await admin.get(f"/v1/schools/{SCHOOL}/records/parent/{person}")).json()
    assert body["status"] == "synced"
    assert body["managebac_id"] == 7


async def test_explain_refuses_an_unknown_school_and_kind(admin: httpx.AsyncClient) -> None:
    unknown_school = await admin.get("/v1/schools/nowhere/records/student/1")
    assert unknown_school.status_code == 404
    assert unknown_school.headers["content-type"] == "application/problem+json"
    unknown_kind = await admin.get(f"/v1/schools/{SCHOOL}/records/teacher/1")
    assert unknown_kind.status_code == 422
