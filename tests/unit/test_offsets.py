"""The commit decision: only the lowest offset still in flight may be committed."""

from __future__ import annotations

from consumers.offsets import OffsetTracker


def test_nothing_to_commit_before_anything_started() -> None:
    assert OffsetTracker[str]().committable() == {}


def test_a_later_success_does_not_pass_over_an_earlier_record_in_flight() -> None:
    tracker = OffsetTracker[str]()
    for offset in (10, 11, 12):
        tracker.started("p0", offset)
    tracker.finished("p0", 11)
    tracker.finished("p0", 12)
    assert tracker.committable() == {"p0": 10}
    tracker.finished("p0", 10)
    assert tracker.committable() == {"p0": 13}


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker[str]()
    tracker.started("p0", 5)
    tracker.started("p1", 7)
    tracker.finished("p1", 7)
    assert tracker.committable() == {"p0": 5, "p1": 8}


def test_an_offset_committed_once_is_not_offered_again_until_it_moves() -> None:
    tracker = OffsetTracker[str]()
    tracker.started("p0", 1)
    tracker.finished("p0", 1)
    tracker.committed(tracker.committable())
    assert tracker.committable() == {}
    tracker.started("p0", 2)
    assert tracker.committable() == {}
    tracker.finished("p0", 2)
    assert tracker.committable() == {"p0": 3}


def test_forgotten_partitions_are_not_committed() -> None:
    tracker = OffsetTracker[str]()
    tracker.started("p0", 1)
    tracker.forget({"p0"})
    assert tracker.committable() == {}
    assert tracker.in_flight("p0") == 0
