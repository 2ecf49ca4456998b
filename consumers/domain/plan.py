"""What to do in ManageBac+ for one iSAMS record: the plan the pure core hands the consumer.

Shared by every kind (students, parents, teachers). A plan holds either one `Skip`, one
`NoChange`, or the ManageBac+ writes to make in order, plus the state the ledger records once
they all succeeded, and warnings in plain words for the school's support desk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from consumers.domain.isams import parse_moment

FieldValue = str | int | list[str]
Fields = dict[str, FieldValue]


@dataclass(frozen=True, slots=True)
class Skip:
    """The record is not synced (or no longer); `reason` says why in plain words."""

    reason: str


@dataclass(frozen=True, slots=True)
class NoChange:
    """ManageBac+ already holds what iSAMS says: nothing to write."""


@dataclass(frozen=True, slots=True)
class Create:
    """POST a new ManageBac+ record.

    `create_only` holds fields sent only by the creating POST (a student's
    `attendance_start_date`), never to a record that already exists and is adopted.
    """

    payload: Fields
    create_only: Fields = field(default_factory=dict)

    def body(self) -> Fields:
        """Return the fields of the creating POST."""
        return {**self.payload, **self.create_only}

    def adopt(self) -> Update:
        """Return the write for a ManageBac+ record that exists already (matched, not made)."""
        return Update(changes=dict(self.payload))


@dataclass(frozen=True, slots=True)
class Update:
    """PATCH only these fields; `""` (or `[]` for lists) clears one, as ManageBac+ ignores nulls."""

    changes: Fields


@dataclass(frozen=True, slots=True)
class Archive:
    """PUT …/archive: students send `withdrawn_on` (yyyy-mm-dd); parents and teachers no date."""

    withdrawn_on: date | None = None

    def body(self) -> dict[str, str]:
        """Return the archive request's body (`{}` when the kind's archive takes no date)."""
        if self.withdrawn_on is None:
            return {}
        return {"withdrawn_on": self.withdrawn_on.isoformat()}


@dataclass(frozen=True, slots=True)
class Unarchive:
    """PUT …/unarchive."""


Write = Create | Update | Archive | Unarchive
Action = Write | Skip | NoChange


@dataclass(frozen=True, slots=True)
class PushedState:
    """What ManageBac+ holds from us for one record, as the ledger remembers it.

    `fields` are the ManageBac+ fields last written (empty values left out), so a field that
    iSAMS empties later can be cleared.
    """

    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    archived: bool = False
    managebac_id: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The actions for one record, in order, and the state to record once they succeeded.

    `actions` is `(Skip,)`, `(NoChange,)`, or one or more writes. `state` is what ManageBac+
    holds from us after the writes (None: nothing was ever pushed).
    """

    actions: tuple[Action, ...]
    state: PushedState | None
    warnings: tuple[str, ...] = ()

    @property
    def skip(self) -> Skip | None:
        """Return the skip, when the record is not synced."""
        first = self.actions[0] if self.actions else None
        return first if isinstance(first, Skip) else None

    @property
    def writes(self) -> tuple[Write, ...]:
        """Return the ManageBac+ writes, in the order to make them."""
        return tuple(a for a in self.actions if not isinstance(a, Skip | NoChange))


def content_hash(fields: Mapping[str, Any]) -> str:
    """Return a stable sha256 of a field dict (key order does not matter) for the ledger."""
    encoded = orjson.dumps(dict(fields), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()


def is_stale(
    record_last_updated: datetime | str | None, last_applied: datetime | str | None
) -> bool:
    """Tell whether a fat event's record is older than the one last applied.

    Only a strictly older `lastUpdated` is stale; an unknown time on either side is not
    (state-based processing makes a replay of the same version harmless). Times without a
    zone are taken as UTC, as the ledger stores them.
    """
    record = parse_moment(record_last_updated)
    applied = parse_moment(last_applied)
    return record is not None and applied is not None and record < applied
