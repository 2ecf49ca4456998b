"""`isams-sync consume` as a real process with a school whose grade has two active year
groups: `/readyz` stays 200 and names that school's grade in its detail, the metric says so,
and `explain` gives the reason (docs/design.md §3: two, or none, skip the pupil)."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from consumers.adapters.ledger import Ledger
from consumers.domain.year_groups import NOT_READ
from consumers.ops.explain import year_group_problems
from consumers.settings import Topics
from sim.managebac import SimConfig as ManagebacConfig
from sim.managebac import create_app as create_managebac_app
from sim.managebac.cohorts import CohortSpec
from sim.serving import free_port, serve_app
from sim.stack import ManagedProcess, sync_command, wait_ready

pytestmark = pytest.mark.kafka

SECRET = "whsec_" + base64.b64encode(b"year-group-readiness-secret-32b!").decode()
TOKEN = "readiness-token"


def _school(school_id: str, managebac_url: str, mappings: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": school_id,
        "webhook_secrets": [SECRET],
        "isams": {"base_url": "http://127.0.0.1:9", "client_id": "c", "client_secret": "s"},
        "managebac": {"base_url": managebac_url, "token": TOKEN},
        "mappings": mappings,
    }


async def _ready_detail(url: str, process: ManagedProcess) -> dict[str, Any]:
    """Poll `/readyz` until its detail names a school's grade after the first read of the
    year groups (before it, each grade says they were not read yet); return the body."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            answer = await http.get(f"{url}/readyz")
            body: dict[str, Any] = answer.json()
            reported = body.get("detail", {}).get("year_groups", {})
            read = [why for grades in reported.values() for why in grades.values()]
            if answer.status_code == 200 and read and NOT_READ not in read:
                return body
            assert time.monotonic() < deadline, process.log_tail()
            await asyncio.sleep(0.2)


async def test_an_ambiguous_grade_is_named_in_readiness_without_failing_it(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    config = ManagebacConfig(token=TOKEN, cohorts=(CohortSpec(id=99, grade="secondary;8"),))
    async with serve_app(create_managebac_app(config), lifespan="off") as managebac_url:
        schools = [
            _school(
                "grades-school", managebac_url, {"grades": {7: "secondary;7", 8: "secondary;8"}}
            ),
            _school("fixed-school", managebac_url, {"year_groups": {7: 10209272}}),
        ]
        schools_file = tmp_path / "schools.yaml"
        schools_file.write_text(yaml.safe_dump({"schools": schools}))
        prefix = topics.changes.removesuffix("isams.changes")
        database = tmp_path / "ledger.db"
        port = free_port()
        process = ManagedProcess(
            "consume",
            sync_command("consume", "--health-port", str(port), "--health-host", "127.0.0.1"),
            tmp_path / "consume.log",
            {
                "SYNC_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "SYNC_KAFKA_TOPIC_PREFIX": prefix,
                "SYNC_CONSUMER_GROUP": f"group-{prefix}",
                "SYNC_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                "SYNC_SCHOOLS_FILE": str(schools_file),
            },
        )
        process.start()
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_ready(f"{url}/readyz", process)
            body = await _ready_detail(url, process)
            async with httpx.AsyncClient(timeout=5) as http:
                metrics = (await http.get(f"{url}/metrics")).text
        finally:
            process.stop()

    assert body["status"] == "ready"
    assert body["failed"] == []
    assert list(body["detail"]["year_groups"]) == ["grades-school"]
    reason = body["detail"]["year_groups"]["grades-school"]["secondary;8"]
    assert "2 active year groups of this grade (ids 99, 10209273)" in reason
    assert 'isams_sync_year_group_unresolved{grade="secondary;8",school="grades-school"} 1.0' in (
        metrics
    )
    assert 'isams_sync_year_group_unresolved{grade="secondary;7",school="grades-school"} 0.0' in (
        metrics
    )
    ledger = Ledger.from_url(f"sqlite+aiosqlite:///{database}")
    try:
        problem = await year_group_problems(ledger, "grades-school")
    finally:
        await ledger.close()
    assert problem is not None
    assert "grade secondary;8" in problem
