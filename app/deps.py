"""Dependency aliases for routes: what `create_app` built, fetched from the app's state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.metrics import IngestMetrics
from app.publisher import Publisher
from app.security import WebhookVerifier


@dataclass(frozen=True)
class IngestContext:
    """Everything the webhook route needs, built once by `create_app`."""

    verifiers: dict[str, WebhookVerifier]
    publisher: Publisher
    topic: str
    metrics: IngestMetrics


async def get_ingest(request: Request) -> IngestContext:
    """Fetch the ingest context (async: FastAPI runs plain `def` dependencies in threads)."""
    context = request.app.state.ingest
    assert isinstance(context, IngestContext)
    return context


IngestDep = Annotated[IngestContext, Depends(get_ingest)]
