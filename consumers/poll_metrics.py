"""Prometheus metrics of the poll process, on a registry the process owns.

One registry per poller (not the process-global one), so tests can run several in one
process. What an operator watches: how long each school's cycle takes and how many iSAMS
requests it spends (a throttled API key has a budget), what it published, which removals
the guard holds, and which of a school's lists iSAMS refuses
(`isams_sync_school_blocked{school,reason}`, 1 while it lasts, then 0).
"""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from consumers.capture.poll_report import PollReport
from consumers.domain.removals import POLL_LISTS

CYCLE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


def new_registry() -> CollectorRegistry:
    """Return a registry with the usual process, platform and GC collectors."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def cycle_outcome(report: PollReport | None) -> str:
    """Name how a cycle ended, as a bounded label: the worst thing that happened."""
    if report is None or report.error is not None:
        return "error"
    if report.stopped:
        return "stopped"
    if report.failed:
        return "refused"
    if report.guard_held:
        return "held"
    return "ok"


class PollMetrics:
    """The poller's metrics, and how one cycle's report updates them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.cycle_seconds = Histogram(
            "isams_sync_poll_cycle_seconds",
            "Time one poll cycle of a school took.",
            ["school"],
            buckets=CYCLE_BUCKETS,
            registry=registry,
        )
        self.cycles = Counter(
            "isams_sync_poll_cycles",
            "Poll cycles finished, by school and outcome (ok, held, refused, stopped, error).",
            ["school", "outcome"],
            registry=registry,
        )
        self.requests = Counter(
            "isams_sync_poll_isams_requests",
            "iSAMS requests the poller sent (retries and token requests included).",
            ["school"],
            registry=registry,
        )
        self.requests_last_cycle = Gauge(
            "isams_sync_poll_isams_requests_last_cycle",
            "iSAMS requests of the school's last poll cycle.",
            ["school"],
            registry=registry,
        )
        self.changes = Counter(
            "isams_sync_poll_changes",
            "Changes the poller published, by school, list and change (new, changed, deleted).",
            ["school", "list", "change"],
            registry=registry,
        )
        self.removals_held = Gauge(
            "isams_sync_poll_removals_held",
            "Removals held in the school's last cycle, by list (guard or refused list).",
            ["school", "list"],
            registry=registry,
        )
        self.blocked = Gauge(
            "isams_sync_school_blocked",
            "1 while iSAMS refuses one of the school's lists (reason: isams_<list>_<why>).",
            ["school", "reason"],
            registry=registry,
        )
        self.last_success = Gauge(
            "isams_sync_poll_last_success_timestamp_seconds",
            "When the school's last poll cycle that read every list ended (Unix time).",
            ["school"],
            registry=registry,
        )
        self._blocked_now: dict[str, set[str]] = {}

    def observe(self, school: str, report: PollReport | None, seconds: float) -> None:
        """Record one finished cycle (None: it crashed before it could report)."""
        self.cycle_seconds.labels(school=school).observe(seconds)
        self.cycles.labels(school=school, outcome=cycle_outcome(report)).inc()
        if report is None:
            return
        self.requests.labels(school=school).inc(report.isams_requests)
        self.requests_last_cycle.labels(school=school).set(report.isams_requests)
        for (name, change), count in report.published.items():
            self.changes.labels(school=school, list=name, change=change).inc(count)
        if report.stopped:
            return  # half a cycle says nothing about what is held or blocked
        for name in POLL_LISTS:
            self.removals_held.labels(school=school, list=name).set(report.held_on(name))
        self._set_blocked(
            school, {f"isams_{name}_{f.refusal}" for name, f in report.failed.items()}
        )
        if report.ok:
            self.last_success.labels(school=school).set(time.time())

    def _set_blocked(self, school: str, reasons: set[str]) -> None:
        for reason in self._blocked_now.get(school, set()) - reasons:
            self.blocked.labels(school=school, reason=reason).set(0)
        for reason in reasons:
            self.blocked.labels(school=school, reason=reason).set(1)
        self._blocked_now[school] = reasons
