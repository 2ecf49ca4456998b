"""The archive guard (docs/design.md §3 "Guards"): more than 10% stops a run unless forced."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.domain.guard import GuardDecision, guard_archives


@pytest.mark.parametrize(
    ("to_archive", "synced", "allowed"),
    [
        (0, 300, True),
        (1, 300, True),
        (29, 300, True),
        (30, 300, True),  # exactly 10%: goes ahead
        (31, 300, False),  # just over: stops
        (57, 300, False),
        (300, 300, False),
        (1, 10, True),  # exactly 10% with small numbers
        (2, 10, False),
        (1, 9, False),
        (1, 1, False),
        (3, 30, True),
        (10, 100, True),
        (11, 100, False),
        (1000, 10000, True),
        (1001, 10000, False),
        (0, 0, True),  # nothing synced: nothing to protect
        (5, 0, True),
    ],
)
def test_more_than_ten_percent_stops(to_archive: int, synced: int, allowed: bool) -> None:
    assert guard_archives(to_archive, synced, force=False).allowed is allowed


@pytest.mark.parametrize(("to_archive", "synced"), [(31, 300), (300, 300), (1, 1)])
def test_force_lets_a_large_run_through_and_says_so(to_archive: int, synced: int) -> None:
    decision = guard_archives(to_archive, synced, force=True)
    assert decision.allowed is True
    assert "forced (--force)" in decision.reason


def test_the_reason_says_what_and_how_to_go_ahead() -> None:
    assert guard_archives(57, 300, force=False) == GuardDecision(
        allowed=False,
        reason="this run would archive 57 of 300 synced users (19%), more than 10%; "
        "run it again with --force if iSAMS really lost them",
    )


@pytest.mark.parametrize(
    ("to_archive", "synced", "shown"),
    [
        (30, 300, "(10%), within the 10% limit"),
        (31, 300, "(10.3%), more than 10%"),
        (3001, 30000, "(10.003%), more than 10%"),
        (2999, 30000, "(9.997%), within the 10% limit"),
        (1, 3, "(33%), more than 10%"),
    ],
)
def test_percentages_never_read_as_the_limit_they_cross(
    to_archive: int, synced: int, shown: str
) -> None:
    assert shown in guard_archives(to_archive, synced, force=False).reason


def test_nothing_to_archive_says_so() -> None:
    assert guard_archives(0, 300, force=False).reason == "this run has nothing to archive"
    assert guard_archives(3, 0, force=False).reason == "this run has no synced users to protect"


def test_another_threshold() -> None:
    assert guard_archives(1, 8, force=False, threshold=0.125).allowed is True
    assert guard_archives(2, 8, force=False, threshold=0.125).allowed is False
    assert "12.5% limit" in guard_archives(1, 8, force=False, threshold=0.125).reason
    assert guard_archives(1, 100, force=False, threshold=0.0).allowed is False


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_a_threshold_outside_zero_to_one_is_a_programming_error(threshold: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        guard_archives(1, 10, force=False, threshold=threshold)


@given(
    to_archive=st.integers(min_value=-5, max_value=10**6),
    synced=st.integers(min_value=-5, max_value=10**6),
    force=st.booleans(),
)
def test_the_guard_matches_exact_arithmetic(to_archive: int, synced: int, force: bool) -> None:
    decision = guard_archives(to_archive, synced, force)
    over = to_archive > 0 and synced > 0 and to_archive * 10 > synced
    assert decision.allowed is (force or not over)
    assert decision.reason


def test_what_else_is_guarded_the_same_way_is_worded_for_itself() -> None:
    noun = ("contact known to the poller", "contacts known to the poller")
    held = guard_archives(3, 20, force=False, verb="remove", noun=noun)
    assert held == GuardDecision(
        allowed=False,
        reason="this run would remove 3 of 20 contacts known to the poller (15%), more "
        "than 10%; run it again with --force if iSAMS really lost them",
    )
    assert guard_archives(0, 20, False, verb="remove", noun=noun).reason == (
        "this run has nothing to remove"
    )
    assert guard_archives(1, 0, False, verb="remove", noun=noun).reason == (
        "this run has no contacts known to the poller to protect"
    )
