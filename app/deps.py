"""What `create_app` builds for the webhook route, kept on the app's state."""

from __future__ import annotations

from dataclasses import dataclass

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
