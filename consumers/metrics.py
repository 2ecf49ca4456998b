"""Prometheus metrics of the consumer process."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Counter, Histogram

from consumers.events import QueuedChange
from consumers.outcomes import Result

CHANGES_PROCESSED = Counter(
    "isams_sync_changes_processed_total",
    "Changes taken off Kafka, by school, kind and outcome.",
    ["school", "kind", "outcome"],
)
END_TO_END_SECONDS = Histogram(
    "isams_sync_end_to_end_seconds",
    "From webhook received to the ManageBac+ write finished.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


def record_result(change: QueuedChange | None, result: Result) -> None:
    """Count one finished change; observe its latency when it wrote to ManageBac+."""
    school = change.school if change is not None else "unknown"
    kind = change.event.kind if change is not None else "unknown"
    CHANGES_PROCESSED.labels(school=school, kind=kind, outcome=result.outcome.value).inc()
    if result.wrote and change is not None:
        END_TO_END_SECONDS.observe((datetime.now(UTC) - change.received_at).total_seconds())
