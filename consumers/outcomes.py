"""What processing one change can end in, and the two kinds of failure the runner handles."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """The end of one change's processing, as counted in metrics and the demo summary."""

    CREATED = "created"
    ADOPTED = "adopted"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ARCHIVED = "archived"
    UNARCHIVED = "unarchived"
    SKIPPED = "skipped"
    STALE = "stale"
    WAITING = "waiting"  # the school is blocked: parked until its token works again
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Result:
    """An outcome and, for skips and dead letters, the reason in plain words."""

    outcome: Outcome
    reason: str | None = None
    wrote: bool = False


class PermanentFailureError(Exception):
    """Retrying will not help (e.g. ManageBac+ refused the data): dead-letter the change."""

    def __init__(self, error_class: str, detail: str) -> None:
        super().__init__(f"{error_class}: {detail}")
        self.error_class = error_class
        self.detail = detail


class TransientFailureError(Exception):
    """A dependency is down or overloaded: try the same change again later."""


class SchoolBlockedError(Exception):
    """The school's ManageBac+ token is refused or lacks a right: the change waits (parked,
    its attempts not counted) until the token works; it is never dead-lettered for it."""

    def __init__(self, school: str, reason: str) -> None:
        super().__init__(f"school {school} blocked: {reason}")
        self.school = school
        self.reason = reason
