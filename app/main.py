"""The composition root of the ingest service: `create_app(settings, schools)`.

Nothing is built at import time. The lifespan connects to Kafka (creating the topics of
DESIGN §2.3 on each connection) and opens the ledger engine for the readiness check; if
either is down the service still starts, `/readyz` says which, and webhooks answer 503.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from app.deps import IngestContext
from app.events import ChangeEvent
from app.metrics import IngestMetrics, new_registry
from app.problems import Problem, install_problem_handlers
from app.publisher import KafkaPublisher, Publisher
from app.routes import admin, health, webhooks
from app.security import build_verifiers
from app.settings import SchoolsFile, Settings
from consumers.adapters.http import new_http_client
from consumers.adapters.kafka_admin import ensure_topics
from consumers.adapters.ledger import Ledger
from consumers.adapters.managebac import RetryPolicy
from consumers.backfill import BackfillReport, run_backfill
from consumers.bootstrap import school_ports

log = logging.getLogger(__name__)

API_TITLE = "isams-sync ingest"
API_VERSION = "1.0.0"
TOPIC_CREATION_TIMEOUT = 10.0


def create_app(
    settings: Settings, schools: SchoolsFile, publisher: Publisher | None = None
) -> FastAPI:
    """Build the ingest app; a `publisher` passed in is used as is and never started here."""
    verifiers = build_verifiers(schools)
    topics = settings.topics
    registry = new_registry()
    kafka = settings.kafka
    owned: KafkaPublisher | None = None
    if publisher is None:

        async def create_topics() -> None:
            await ensure_topics(
                kafka,
                topics.all(),
                settings.kafka_topic_partitions,
                replication_factor=settings.kafka_replication_factor,
                timeout=TOPIC_CREATION_TIMEOUT,
            )

        owned = KafkaPublisher(
            kafka, prepare=create_topics if settings.kafka_create_topics else None
        )
        publisher = owned
    ledger = Ledger.from_url(settings.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if owned is not None:
            await owned.start()
        try:
            await ledger.create_schema()
        except Exception as exc:  # the database may come later; /readyz says so meanwhile
            log.warning("ledger unavailable at start-up", extra={"error": type(exc).__name__})
        try:
            yield
        finally:
            await ledger.close()
            if owned is not None:
                await owned.stop()

    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        description="Receives signed iSAMS change events and queues them in Kafka.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ingest = IngestContext(
        verifiers=verifiers,
        publisher=publisher,
        topic=topics.changes,
        metrics=IngestMetrics(registry),
    )
    by_id = schools.by_id()

    async def backfill(school_id: str, dry_run: bool, force: bool) -> BackfillReport:
        async with new_http_client(30.0) as http:
            ports = school_ports(by_id[school_id], http, RetryPolicy())
            return await run_backfill(
                ports, ledger, publisher, topics, dry_run=dry_run, force=force
            )

    app.state.admin = admin.AdminContext(
        token=settings.admin_token,
        schools=frozenset(school.id for school in schools.schools),
        ledger=ledger,
        kafka=kafka,
        topics=topics,
        backfill=backfill,
    )
    install_problem_handlers(app)
    webhooks.add_webhook_route(app)
    app.include_router(admin.router)
    app.include_router(
        health.build_health_router(
            {"kafka": publisher.ping, "ledger": ledger.ping}, registry=registry
        )
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented hook
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """Build (once) the schema, adding the models that routes reference by hand."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=[webhooks.DOCUMENTED_ROUTE, *app.routes],
        )
        _, definitions = models_json_schema(
            [(Problem, "validation"), (ChangeEvent, "validation")],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(definitions["$defs"])
        schema["components"]["schemas"] = dict(sorted(components.items()))
        app.openapi_schema = schema
    return app.openapi_schema
