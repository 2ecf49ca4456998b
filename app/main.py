"""The ingest service's app: `create_app(services)` adds routes, problem handlers, lifespan.

Nothing is built at import time; the services come from the one composition root
(`consumers.bootstrap.open_services`), or from a test's fakes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from app.deps import AdminContext, IngestContext
from app.metrics import IngestMetrics, new_registry
from app.problems import Problem, install_problem_handlers
from app.routes import admin, webhooks
from app.security import build_verifiers
from consumers.bootstrap import Services, open_services, unconnected_services
from consumers.events import ChangeEvent
from consumers.health import build_health_router
from consumers.ports import PublisherPort
from consumers.settings import SchoolsFile, Settings

log = logging.getLogger(__name__)

API_TITLE = "isams-sync ingest"
API_VERSION = "1.0.0"


def create_app(services: Services) -> FastAPI:
    """Build the ingest app over `services` (whose owner, `open_services`, closes them).

    The lifespan starts the Kafka publisher (which creates the topics on each connection)
    and migrates the ledger; if either is down the service still starts, `/readyz` says
    which, and webhooks answer 503 until Kafka is back.
    """
    verifiers = build_verifiers(services.schools)
    registry = new_registry()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await services.start_publisher()
        try:
            await services.ledger.create_schema()
        except Exception as exc:  # the database may come later; /readyz says so meanwhile
            log.warning("ledger unavailable at start-up", extra={"error": type(exc).__name__})
        yield

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
        publisher=services.publisher,
        topic=services.topics.changes,
        metrics=IngestMetrics(registry),
    )
    app.state.admin = AdminContext(token=services.settings.admin_token, services=services)
    install_problem_handlers(app)
    webhooks.add_webhook_route(app)
    app.include_router(admin.router)
    app.include_router(
        build_health_router(
            {"kafka": services.publisher.ping, "ledger": services.ledger.ping}, registry=registry
        )
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented hook
    return app


@asynccontextmanager
async def open_app(
    settings: Settings,
    schools: SchoolsFile | None = None,
    *,
    publisher: PublisherPort | None = None,
    client_id: str = "isams-sync-ingest",
) -> AsyncIterator[FastAPI]:
    """Open the services (the one composition root) and yield the app built on them."""
    async with open_services(
        settings, schools, client_id=client_id, publisher=publisher
    ) as services:
        yield create_app(services)


def openapi_document(schools: SchoolsFile) -> dict[str, Any]:
    """Return the API's OpenAPI document, from an app on services that connect to nothing."""
    settings = Settings.model_construct(database_url="sqlite+aiosqlite:///:memory:")
    return create_app(unconnected_services(settings, schools)).openapi()


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
