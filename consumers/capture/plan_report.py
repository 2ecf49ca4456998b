"""The plan of a run: what reconcile or backfill does (or would do) to each record.

One model for both commands (docs/design.md §6: `--dry-run` prints creates, updates with
the changed fields, archives and skips with reasons, with totals), and its JSON form for
scripts; people read it as tables (app/cli/plan_view.py). Values are masked
(consumers/domain/masking.py), field names are not, so a plan can be pasted into a ticket.
A record that needs nothing is not listed, only counted (`unchanged`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from consumers.domain.drift import same_value
from consumers.domain.masking import EMPTY, mask
from consumers.domain.plan import Archive, Create, FieldValue, Plan, Unarchive, Update
from consumers.domain.relationships import Link, LinkAction, Relink, Unlink

KINDS = ("student", "parent", "teacher", "link")


class Act(StrEnum):
    """What a run does to one record, in the words of the plan."""

    CREATE = "create"
    ADOPT = "adopt"  # a ManageBac+ user this service did not manage yet, matched and taken over
    UPDATE = "update"
    UNARCHIVE = "unarchive"
    ARCHIVE = "archive"
    LINK = "link"
    RELINK = "relink"
    UNLINK = "unlink"
    HELD = "held"  # an archive the removals guard holds back until --force
    SKIP = "skip"


ACTS = tuple(Act)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field a write changes: its name, and the old and new values masked."""

    name: str
    before: str
    after: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.name, "from": self.before, "to": self.after}


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One record's line in the plan.

    `kind` is one of `KINDS`; `isams_id` the record's iSAMS id (a student's schoolId, a
    parent's person, a teacher's employee id; for a link the parent's person and the
    student's schoolId); `error` says why ManageBac+ refused the write, when it did.
    """

    kind: str
    isams_id: str
    action: Act
    managebac_id: int | None = None
    changes: tuple[FieldChange, ...] = ()
    reason: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "isams_id": self.isams_id,
            "action": self.action.value,
            "managebac_id": self.managebac_id if (self.managebac_id or 0) > 0 else None,
            "fields": [change.to_json() for change in self.changes],
            "reason": self.reason,
            "error": self.error,
        }


@dataclass
class RunPlan:
    """Every listed record of a run, and how many of each kind needed nothing."""

    items: list[PlanItem] = field(default_factory=list)
    unchanged: Counter[str] = field(default_factory=Counter)

    def add(self, item: PlanItem | None, kind: str) -> None:
        """List an item; None counts the record as unchanged."""
        if item is None:
            self.unchanged[kind] += 1
        else:
            self.items.append(item)

    @property
    def failures(self) -> list[PlanItem]:
        """Return the items whose write ManageBac+ refused."""
        return [item for item in self.items if item.error is not None]

    def totals(self) -> dict[str, dict[str, int]]:
        """Count the items per kind and action (refused ones too), with `unchanged`, and
        over every kind under `all`."""
        counts: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
        for item in self.items:
            counts.setdefault(item.kind, Counter())[item.action.value] += 1
            if item.error is not None:
                counts[item.kind]["failed"] += 1
        for kind, number in self.unchanged.items():
            counts.setdefault(kind, Counter())["unchanged"] += number
        overall: Counter[str] = Counter()
        for counted in counts.values():
            overall.update(counted)
        ordered = [*ACTS, "failed", "unchanged"]
        shaped = {kind: _ordered(counted, ordered) for kind, counted in counts.items()}
        return {**shaped, "all": _ordered(overall, ordered)}

    def writes(self) -> int:
        """Count the items that write to ManageBac+ (not skips, not held)."""
        return sum(1 for item in self.items if item.action not in (Act.SKIP, Act.HELD))

    def to_json(self) -> dict[str, Any]:
        return {
            "totals": self.totals(),
            "items": [item.to_json() for item in self.items],
        }


def _ordered(counted: Counter[str], order: list[str]) -> dict[str, int]:
    return {name: counted[name] for name in order if counted[name]}


def field_changes(
    new: Mapping[str, FieldValue], old: Mapping[str, FieldValue]
) -> tuple[FieldChange, ...]:
    """Return the fields of `new` that differ from `old`, masked, in name order."""
    return tuple(
        FieldChange(name, mask(old.get(name)), mask(value))
        for name, value in sorted(new.items())
        if not same_value(name, value, old.get(name))
    )


def item_of(
    kind: str,
    isams_id: str,
    plan: Plan,
    observed: Mapping[str, FieldValue],
    managebac_id: int | None,
    *,
    adopted: bool = False,
    reason: str | None = None,
) -> PlanItem | None:
    """Describe a user's plan: its first write names the action, the update after it the
    fields. None when the plan writes nothing (the record is unchanged)."""
    if plan.skip is not None:
        return PlanItem(kind, isams_id, Act.SKIP, managebac_id, reason=plan.skip.reason)
    writes = plan.writes
    if not writes:
        return None
    first = writes[0]
    changes: tuple[FieldChange, ...] = ()
    if isinstance(first, Create):
        action, changes = Act.CREATE, field_changes(first.body(), {})
    elif isinstance(first, Archive):
        action = Act.ARCHIVE
    else:
        updates = [write for write in writes if isinstance(write, Update)]
        for update in updates:
            changes += field_changes(update.changes, observed)
        if isinstance(first, Unarchive):
            action = Act.UNARCHIVE
        else:
            action = Act.ADOPT if adopted else Act.UPDATE
    return PlanItem(kind, isams_id, action, managebac_id, changes, reason)


def link_item(
    isams_id: str,
    action: LinkAction,
    before: str | None,
    managebac_id: int | None,
    reason: str | None = None,
) -> PlanItem | None:
    """Describe a link's write; relationships are ManageBac+'s words, shown as they are."""
    shown = before or EMPTY
    if isinstance(action, Link):
        change = FieldChange("relationship", EMPTY, action.relationship)
        return PlanItem("link", isams_id, Act.LINK, managebac_id, (change,), reason)
    if isinstance(action, Relink):
        change = FieldChange("relationship", shown, action.relationship)
        return PlanItem("link", isams_id, Act.RELINK, managebac_id, (change,), reason)
    if isinstance(action, Unlink):
        change = FieldChange("relationship", shown, EMPTY)
        return PlanItem("link", isams_id, Act.UNLINK, managebac_id, (change,), reason)
    return None
