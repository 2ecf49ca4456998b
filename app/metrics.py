"""Prometheus metrics of the ingest service, on a registry owned by each app instance.

A registry per `create_app` call (not the process-global one) lets tests build several apps
in one process without "duplicated timeseries" errors.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

UNKNOWN_SCHOOL = "unknown"  # label for ids not in the schools file: keeps cardinality bounded


def new_registry() -> CollectorRegistry:
    """Return a registry with the usual process, platform and GC collectors."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class IngestMetrics:
    """Webhook request counts, accepted events and Kafka publish latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "isams_sync_webhook_requests",
            "Webhook requests answered, by school and HTTP status.",
            ["school", "status"],
            registry=registry,
        )
        self.events_accepted = Counter(
            "isams_sync_events_accepted",
            "Change events accepted (durably in Kafka), by school.",
            ["school"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "isams_sync_publish_duration_seconds",
            "Time from the first send to the last Kafka acknowledgement of one request.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )

    def answered(self, school: str, status: int) -> None:
        self.requests.labels(school=school, status=str(status)).inc()

    def accepted(self, school: str, count: int) -> None:
        self.events_accepted.labels(school=school).inc(count)
