"""What the routes get from `create_app`, kept on the app's state, and their Annotated aliases.

The webhook route reads its `IngestContext` by hand (it is a plain Starlette route, for
speed: app/routes/webhooks.py); the admin routes take `AdminDep`, which also checks the
bearer token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from app.metrics import IngestMetrics
from app.security import WebhookVerifier, check_admin_token
from consumers.bootstrap import Services
from consumers.ports import PublisherPort


@dataclass(frozen=True)
class IngestContext:
    """Everything the webhook route needs, built once by `create_app`."""

    verifiers: dict[str, WebhookVerifier]
    publisher: PublisherPort
    topic: str
    metrics: IngestMetrics


@dataclass(frozen=True)
class AdminContext:
    """What the admin routes need: the admin token and the services."""

    token: SecretStr | None
    services: Services

    def knows(self, school_id: str) -> bool:
        return school_id in self.services.school_ports


def ingest_context(request: Request) -> IngestContext:
    context = request.app.state.ingest
    assert isinstance(context, IngestContext)
    return context


def require_admin(request: Request) -> AdminContext:
    """Let the request through only with `Authorization: Bearer $SYNC_ADMIN_TOKEN`."""
    context = request.app.state.admin
    assert isinstance(context, AdminContext)
    check_admin_token(context.token, request.headers.get("authorization", ""))
    return context


AdminDep = Annotated[AdminContext, Depends(require_admin)]
