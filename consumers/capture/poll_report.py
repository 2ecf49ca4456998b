"""What one poll cycle of one school did: the lists it read, what it published, what it held.

Read by the poll process (logs, metrics, exit code of `--once`) and by tests; worded for an
operator, with ids and counts only (never a name or an e-mail).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from consumers.domain.removals import POLL_LISTS, Held, PollList

Change = Literal["new", "changed", "deleted"]
# Why a list could not be read, as a metric label (bounded): see `failure_kind`.
Refusal = Literal["forbidden", "not_found", "throttled", "unavailable", "auth", "error"]


@dataclass(frozen=True)
class ListFailure:
    """A list iSAMS did not give whole: the kind of refusal and iSAMS's own words."""

    refusal: Refusal
    message: str


@dataclass(frozen=True)
class PollReport:
    """One cycle of one school."""

    school: str
    run_id: str
    forced: bool
    read: Mapping[PollList, int]
    failed: Mapping[PollList, ListFailure]
    published: Mapping[tuple[PollList, Change], int]
    held: tuple[Held, ...] = ()
    guard_held: bool = False
    guard_reasons: tuple[str, ...] = ()
    stopped: bool = False
    error: str | None = None
    isams_requests: int = 0
    seconds: float = 0.0
    retry_after: float | None = None
    skipped: int = 0

    @property
    def ok(self) -> bool:
        """Tell whether every list was read and everything found was handled."""
        return not self.failed and self.error is None and not self.stopped

    def held_on(self, name: PollList) -> int:
        """Count the removals held on one list this cycle."""
        return sum(len(h.ids) for h in self.held if h.list == name)

    def published_total(self) -> int:
        return sum(self.published.values())

    def summary(self) -> str:
        """Say in one line what the cycle did (ids and counts only)."""
        read = ", ".join(f"{self.read.get(name, 0)} {name}" for name in POLL_LISTS)
        changes = ", ".join(
            f"{count} {change} ({name})"
            for (name, change), count in sorted(self.published.items())
            if count
        )
        parts = [f"poll {self.run_id} of {self.school}: read {read}"]
        parts.append(f"published {changes}" if changes else "published nothing")
        parts.extend(f"{name} not read: {failure.message}" for name, failure in self.failed.items())
        parts.extend(f"{len(h.ids)} {h.list} removal(s) held: {h.reason}" for h in self.held)
        if self.skipped:
            parts.append(f"{self.skipped} record(s) without usable ids skipped")
        if self.stopped:
            parts.append("stopped before the end (a stop was asked for)")
        if self.error is not None:
            parts.append(f"ended early: {self.error}")
        return "; ".join(parts)
