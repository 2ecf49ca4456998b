"""The poller's metrics follow its reports: a refused list blocks the school for that list
(1) until a cycle reads it again (0); held removals and published changes are counted."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from consumers.capture.poll_report import ListFailure, PollReport
from consumers.domain.removals import Held
from consumers.poll_metrics import PollMetrics, cycle_outcome

SCHOOL = "metrics-school"


def report(**changes: object) -> PollReport:
    values: dict[str, object] = {
        "school": SCHOOL,
        "run_id": "r",
        "forced": False,
        "read": {"students": 3},
        "failed": {},
        "published": {("students", "new"): 3},
        "isams_requests": 5,
    }
    values.update(changes)
    return PollReport(**values)  # type: ignore[arg-type]  # test data, any field


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"school": SCHOOL, **labels})


def test_a_refused_list_blocks_the_school_until_it_is_read_again() -> None:
    registry = CollectorRegistry()
    metrics = PollMetrics(registry)
    refused = ListFailure("forbidden", "The user is not authorised for this request")
    held = Held("contacts", ("1", "2"), "removals held: …")

    metrics.observe(SCHOOL, report(failed={"contacts": refused}, held=(held,)), 1.5)

    blocked = {"reason": "isams_contacts_forbidden"}
    assert value(registry, "isams_sync_school_blocked", **blocked) == 1
    assert value(registry, "isams_sync_poll_removals_held", list="contacts") == 2
    assert value(registry, "isams_sync_poll_cycles_total", outcome="refused") == 1
    assert value(registry, "isams_sync_poll_last_success_timestamp_seconds") is None

    metrics.observe(SCHOOL, report(), 0.5)

    assert value(registry, "isams_sync_school_blocked", **blocked) == 0
    assert value(registry, "isams_sync_poll_removals_held", list="contacts") == 0
    assert value(registry, "isams_sync_poll_changes_total", list="students", change="new") == 6
    assert value(registry, "isams_sync_poll_isams_requests_total") == 10
    assert value(registry, "isams_sync_poll_isams_requests_last_cycle") == 5
    assert value(registry, "isams_sync_poll_cycle_seconds_count") == 2
    assert value(registry, "isams_sync_poll_last_success_timestamp_seconds") is not None


def test_the_outcome_is_the_worst_thing_that_happened() -> None:
    refused = {"alumni": ListFailure("not_found", "x")}
    assert cycle_outcome(None) == "error"
    assert cycle_outcome(report(error="Kafka did not acknowledge")) == "error"
    assert cycle_outcome(report(stopped=True, failed=refused)) == "stopped"
    assert cycle_outcome(report(failed=refused, guard_held=True)) == "refused"
    assert cycle_outcome(report(guard_held=True)) == "held"
    assert cycle_outcome(report()) == "ok"
