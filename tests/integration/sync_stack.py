"""The whole sync on real parts, in this process but over real sockets: the iSAMS and
ManageBac+ simulators and the ingest app on uvicorn, the consumer on the real broker, the
ledger on SQLite. Shared by the end-to-end tests of every kind."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import open_app
from consumers.adapters.managebac import RetryPolicy
from consumers.bootstrap import open_services
from consumers.outcomes import Result
from consumers.ports import PublisherPort as Publisher
from consumers.runner import ChangeRunner, RunnerConfig
from consumers.settings import SchoolsFile, Settings, Topics
from sim.isams.app import SimConfig as IsamsConfig
from sim.isams.app import create_app as create_isams_app
from sim.isams.emitter import WebhookEmitter
from sim.isams.school import SchoolData, generate_school
from sim.managebac import SimConfig as ManagebacConfig
from sim.managebac import create_app as create_managebac_app
from sim.serving import serve_app

SCHOOL = "e2e-school"
SECRET = "whsec_" + base64.b64encode(b"end-to-end-test-secret-32-bytes!").decode()
TOKEN = "e2e-managebac-token"
ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef"
YEAR_GROUPS = {year: 20000000 + year for year in range(7, 14)}


@dataclass
class Stack:
    """The running parts a test drives and inspects."""

    school: SchoolData
    settings: Settings
    schools: SchoolsFile
    ingest_url: str
    emitter: WebhookEmitter
    thin_emitter: WebhookEmitter
    managebac: httpx.AsyncClient
    results: list[Result]
    start_consumer: Callable[[], Any]
    isams_url: str = ""
    stop_consumer: Callable[[], Any] | None = None

    async def managebac_students(self) -> dict[str, dict[str, Any]]:
        state = (await self.managebac.get("/_sim/state")).json()
        return {s["student_id"]: s for s in state["students"]}

    async def managebac_state(self) -> dict[str, Any]:
        state: dict[str, Any] = (await self.managebac.get("/_sim/state")).json()
        return state

    async def managebac_writes(self) -> int:
        return int((await self.managebac.get("/_sim/stats")).json()["writes"])

    async def wait_for_results(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.results) < count:
            assert time.monotonic() < deadline, f"only {len(self.results)} of {count} applied"
            await asyncio.sleep(0.05)


def school_entry(
    isams_url: str,
    managebac_url: str,
    *,
    school_rps: float = 500,
    mappings: dict[str, Any] | None = None,
    school: str = SCHOOL,
    secret: str = SECRET,
    token: str = TOKEN,
) -> dict[str, Any]:
    """One school of a schools file, pointing at the simulators."""
    return {
        "id": school,
        "webhook_secrets": [secret],
        "isams": {
            "base_url": isams_url,
            "client_id": "sync-client",
            "client_secret": "sync-secret",
        },
        "managebac": {
            "base_url": managebac_url,
            "token": token,
            "max_requests_per_second": school_rps,
        },
        "mappings": mappings or {"year_groups": YEAR_GROUPS},
    }


def _schools(
    isams_url: str,
    managebac_url: str,
    school_rps: float = 500,
    mappings: dict[str, Any] | None = None,
) -> SchoolsFile:
    entry = school_entry(isams_url, managebac_url, school_rps=school_rps, mappings=mappings)
    return SchoolsFile.model_validate({"schools": [entry]})


@asynccontextmanager
async def _consumer(
    settings: Settings, schools: SchoolsFile, results: list[Result], year_group_interval: float
) -> AsyncIterator[None]:
    async with open_services(settings, schools, retry=RetryPolicy(attempts=2)) as services:
        watch = services.year_group_watch(year_group_interval)  # grades schools only
        runner = ChangeRunner(
            RunnerConfig(
                settings.kafka_bootstrap,
                settings.consumer_group,
                settings.topics,
                blocked_delay=settings.token_recheck_seconds / 2,
            ),
            services.sync_service().process,
            on_result=lambda _change, result: results.append(result),
            on_share=services.set_managebac_share,
        )
        task = asyncio.create_task(runner.run())
        await watch.start()
        try:
            yield
        finally:
            await watch.stop()
            runner.stop()
            await asyncio.wait_for(task, timeout=30)


@pytest.fixture
async def stack(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(kafka_bootstrap, topics, tmp_path) as running:
        yield running


@asynccontextmanager
async def open_stack(
    kafka_bootstrap: str,
    topics: Topics,
    tmp_path: Path,
    publisher: Publisher | None = None,
    *,
    students: int = 40,
    school_rps: float = 500,
    school: SchoolData | None = None,
    mappings: dict[str, Any] | None = None,
    managebac_config: ManagebacConfig | None = None,
    year_group_interval: float = 60.0,
) -> AsyncIterator[Stack]:
    """Run the stack; `publisher`, when given, is the ingest's (started by the caller);
    `school_rps` is the school's ManageBac+ budget (`max_requests_per_second`). A test may
    also give its own generated school (else `students` pupils), mappings (else fixed year
    groups), ManageBac+ simulator, and the interval of the year-group watch."""
    school = school or generate_school(students, seed=11)
    isams = create_isams_app(IsamsConfig(), school)
    managebac = create_managebac_app(
        managebac_config or ManagebacConfig(token=TOKEN, year_groups=YEAR_GROUPS)
    )
    async with (
        serve_app(isams, lifespan="off") as isams_url,
        serve_app(managebac, lifespan="off") as managebac_url,
    ):
        schools = _schools(isams_url, managebac_url, school_rps, mappings)
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap,
            kafka_topic_prefix=topics.changes.removesuffix("isams.changes"),
            consumer_group=f"group-{topics.changes}",
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
            schools_file=tmp_path / "unused.yaml",
            admin_token=ADMIN_TOKEN,
            token_recheck_seconds=1.0,  # a blocked school is checked again every second
        )
        results: list[Result] = []
        async with (
            open_app(settings, schools, publisher=publisher) as ingest_app,
            serve_app(ingest_app) as ingest_url,
            httpx.AsyncClient(timeout=30) as http,
            httpx.AsyncClient(base_url=managebac_url) as managebac_http,
        ):
            common: dict[str, Any] = {
                "base_url": ingest_url,
                "school_id": SCHOOL,
                "secret": SECRET,
            }
            consumer_running: list[Any] = []

            async def start_consumer() -> None:
                context = _consumer(settings, schools, results, year_group_interval)
                await context.__aenter__()
                consumer_running.append(context)

            async def stop_consumer() -> None:
                """Stop the consumer started last, as a SIGTERM would (drain, commit)."""
                await consumer_running.pop().__aexit__(None, None, None)

            try:
                yield Stack(
                    school=school,
                    settings=settings,
                    schools=schools,
                    ingest_url=ingest_url,
                    emitter=WebhookEmitter(school, http, fat=True, **common),
                    thin_emitter=WebhookEmitter(school, http, fat=False, **common),
                    managebac=managebac_http,
                    results=results,
                    start_consumer=start_consumer,
                    isams_url=isams_url,
                    stop_consumer=stop_consumer,
                )
            finally:
                for context in consumer_running:
                    await context.__aexit__(None, None, None)
