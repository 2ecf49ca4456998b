"""The archive guard: a poll, backfill or reconcile run must not empty a school by accident.

docs/design.md §3 "Guards" and §6: removals found by a poll, backfill or reconcile run that
would archive more than 10% of a school's synced users stop and ask for `--force` (an
emptied or truncated iSAMS export looks exactly like everybody leaving). Single change
events are never held back.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

DEFAULT_THRESHOLD = 0.10


@dataclass(frozen=True, slots=True)
class GuardDecision:
    """Whether the run may archive, and why, in words for the operator and the ledger."""

    allowed: bool
    reason: str


USERS = ("synced user", "synced users")


def guard_archives(
    to_archive: int,
    synced: int,
    force: bool,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    verb: str = "archive",
    noun: tuple[str, str] = USERS,
) -> GuardDecision:
    """Decide whether a run may archive `to_archive` of a school's `synced` users.

    More than `threshold` (strictly; exactly 10% goes ahead) stops unless `force`. Nothing
    synced, or nothing to archive, always goes ahead. The comparison is exact (no float
    rounding at the boundary). A threshold outside 0..1 is a programming error. `verb` and
    `noun` (singular, plural) word the reason for what else is guarded the same way (the
    poller's contact removals: "remove", "contact known to the poller").
    """
    if not 0 <= threshold <= 1:
        raise ValueError("the archive guard's threshold is a share between 0 and 1")
    limit = Fraction(repr(threshold))
    limit_text = _percent(limit * 100)
    if to_archive <= 0 or synced <= 0:
        what = f"nothing to {verb}" if to_archive <= 0 else f"no {noun[1]} to protect"
        return GuardDecision(allowed=True, reason=f"this run has {what}")
    share = Fraction(to_archive, synced)
    share_text = _percent(share * 100, limit * 100)
    counted = f"{to_archive} of {synced} {noun[0] if synced == 1 else noun[1]} ({share_text}%)"
    if share <= limit:
        return GuardDecision(
            allowed=True, reason=f"this run {verb}s {counted}, within the {limit_text}% limit"
        )
    if force:
        return GuardDecision(
            allowed=True,
            reason=f"this run {verb}s {counted}, more than {limit_text}%; "
            "going ahead because it was forced (--force)",
        )
    return GuardDecision(
        allowed=False,
        reason=f"this run would {verb} {counted}, more than {limit_text}%; "
        "run it again with --force if iSAMS really lost them",
    )


def _percent(value: Fraction, limit: Fraction | None = None) -> str:
    """Show a percentage with the fewest decimals (up to 3) that neither hide that it is
    above or below `limit` (10.3, not 10) nor, without a limit, round it at all (12.5)."""
    text = str(value.numerator)
    for places in range(4):
        text = f"{float(value):.{places}f}"
        shown = Fraction(text)
        if shown == value or (limit is not None and value != limit and shown != limit):
            return text
    return text
