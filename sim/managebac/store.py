"""In-memory ManageBac+ state: users, parent-child links, year groups, indexes, the write log.

Async safety: every method is synchronous and handlers call them without awaiting in between,
so each check-then-write runs to completion on the event loop with no other request interleaved.
Records are frozen pydantic models, replaced on change, so a snapshot copies containers only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sim.managebac.cohorts import Cohorts, YearGroupQuery
from sim.managebac.errors import ErrorCollector, LinkNotFoundError, NotFoundError
from sim.managebac.models import (
    MODEL_NAMES,
    RECORD_MODELS,
    USER_KINDS,
    ChildRelation,
    Parent,
    Student,
    UserKind,
    UserRecord,
    YearGroup,
    format_timestamp,
)
from sim.managebac.payloads import ARCHIVED, MUST_EXIST, TAKEN, ParsedUser

Clock = Callable[[], float]
FIRST_ID = 10_000_001

_METHODS = {
    "create": "POST",
    "update": "PATCH",
    "archive": "PUT",
    "unarchive": "PUT",
    "link": "POST",
    "relink": "PUT",
    "unlink": "DELETE",
    "replace_links": "PUT",
}
_SEARCHED: dict[UserKind, tuple[str, ...]] = {
    "student": (
        "first_name",
        "last_name",
        "middle_name",
        "nickname",
        "other_name",
        "email",
        "student_id",
    ),
    "parent": ("first_name", "last_name", "middle_name", "nickname", "other_name", "email"),
    "teacher": ("first_name", "last_name", "middle_name", "nickname", "other_name", "email"),
}


@dataclass(frozen=True)
class UserQuery:
    """Filters of the list endpoints; None means "not filtered"."""

    archived: bool | None = None
    q: str | None = None
    ids: frozenset[int] | None = None
    modified_since: datetime | None = None
    year_group_ids: frozenset[int] | None = None
    status: str | None = None


@dataclass
class _Tables:
    users: dict[UserKind, dict[int, UserRecord]] = field(
        default_factory=lambda: {kind: {} for kind in USER_KINDS}
    )
    children: dict[int, dict[int, str | None]] = field(default_factory=dict)
    unlinked: dict[int, dict[int, str | None]] = field(default_factory=dict)
    """Deleted links with their last relationship: re-posting one restores it (notes)."""
    parents_of: dict[int, set[int]] = field(default_factory=dict)
    emails: dict[str, tuple[UserKind, int]] = field(default_factory=dict)
    student_ids: dict[str, int] = field(default_factory=dict)
    next_id: int = FIRST_ID

    def copy(self) -> _Tables:
        """Return a snapshot; records are frozen, so only the containers are copied."""
        return _Tables(
            users={kind: dict(table) for kind, table in self.users.items()},
            children={parent: dict(links) for parent, links in self.children.items()},
            unlinked={parent: dict(links) for parent, links in self.unlinked.items()},
            parents_of={child: set(parents) for child, parents in self.parents_of.items()},
            emails=dict(self.emails),
            student_ids=dict(self.student_ids),
            next_id=self.next_id,
        )


class Store:
    """The simulated school's ManageBac+ data."""

    def __init__(self, cohorts: Cohorts, clock: Clock, max_write_log: int) -> None:
        self.cohorts = cohorts
        self._clock = clock
        self._t = _Tables()
        self.writes: deque[dict[str, Any]] = deque(maxlen=max_write_log)
        self.write_count = 0
        self.noop_write_count = 0

    def reset(self) -> None:
        """Forget every record, link and logged write; year groups go back to the configured."""
        self._t = _Tables()
        self.cohorts.reset()
        self.writes.clear()
        self.write_count = 0
        self.noop_write_count = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Undo every change made inside the block when it raises."""
        snapshot = self._t.copy()
        try:
            yield
        except BaseException:
            self._t = snapshot
            raise

    # Reading

    def get(self, kind: UserKind, record_id: int) -> UserRecord:
        """Return one user or raise NotFoundError."""
        record = self._t.users[kind].get(record_id)
        if record is None:
            raise NotFoundError(MODEL_NAMES[kind], record_id)
        return record

    def query(self, kind: UserKind, query: UserQuery) -> list[UserRecord]:
        """Return the users of `kind` matching `query`, by ascending id."""
        return [r for _, r in sorted(self._t.users[kind].items()) if _matches(kind, r, query)]

    def render(self, record: UserRecord) -> dict[str, Any]:
        """Return a user as ManageBac+ answers it: nulls left out, links filled in."""
        if isinstance(record, Student):
            record = record.model_copy(
                update={"parent_ids": sorted(self._t.parents_of.get(record.id, ()))}
            )
        elif isinstance(record, Parent):
            children = self.children_of(record.id)
            record = record.model_copy(
                update={"child_ids": [c.id for c in children], "children": children}
            )
        body = record.model_dump(mode="json", exclude_none=True)
        if isinstance(record, Parent):
            body["children"] = [child.model_dump() for child in record.children]
        return {"id": body.pop("id"), **body}

    def children_of(self, parent_id: int) -> list[ChildRelation]:
        """Return a parent's links by ascending child id (the parent must exist)."""
        self.get("parent", parent_id)
        links = self._t.children.get(parent_id, {})
        return [ChildRelation(id=c, relationship=links[c]) for c in sorted(links)]

    def get_link(self, parent_id: int, child_id: int) -> ChildRelation:
        """Return one link or raise LinkNotFoundError."""
        self.get("parent", parent_id)
        links = self._t.children.get(parent_id, {})
        if child_id not in links:
            raise LinkNotFoundError(parent_id, child_id)
        return ChildRelation(id=child_id, relationship=links[child_id])

    def links(self) -> list[dict[str, Any]]:
        """Return every link as `{"parent_id", "child_id", "relationship"}`."""
        return [
            {"parent_id": p, "child_id": c, "relationship": rel}
            for p, links in sorted(self._t.children.items())
            for c, rel in sorted(links.items())
        ]

    def year_groups(self, query: YearGroupQuery | None = None) -> list[YearGroup]:
        """Return the year groups matching `query` (default: all) with their students."""
        members = self._members()
        return [
            cohort.render(members.get(cohort.id, []))
            for cohort in self.cohorts.query(query or YearGroupQuery(), members)
        ]

    def year_group_state(self) -> list[dict[str, Any]]:
        """Return every year group with its `updated_at`, for `GET /_sim/state`."""
        members = self._members()
        return [
            {
                **cohort.render(members.get(cohort.id, [])).model_dump(),
                "updated_at": format_timestamp(cohort.updated_at),
            }
            for cohort in self.cohorts.all()
        ]

    # Writing users

    def create(
        self,
        kind: UserKind,
        parsed: ParsedUser,
        *,
        record_id: int | None = None,
        extra: dict[str, Any] | None = None,
        log: bool = True,
    ) -> UserRecord:
        """Validate against the stored data and create a user (the seed sets id, owned fields)."""
        changes = {k: v for k, v in parsed.changes.items() if k != "password"}
        child_ids: list[int] = changes.pop("child_ids", None) or []
        errors = parsed.errors
        self._check_unique(kind, None, changes, errors)
        self._check_year_group(changes, errors)
        if any(c not in self._t.users["student"] for c in child_ids):
            errors.add("child_ids", MUST_EXIST)
        if record_id is not None and self._id_taken(record_id):
            errors.add("id", TAKEN)
        errors.raise_if_any()
        if record_id is None:
            record_id = self._t.next_id
        self._t.next_id = max(self._t.next_id, record_id + 1)
        now = self._now()
        fields = {**changes, **(extra or {})}
        record = RECORD_MODELS[kind](id=record_id, created_at=now, updated_at=now, **fields)
        self._store(kind, record)
        for child_id in child_ids:
            self._put_link(record_id, child_id, None)
        if log:
            self._log("create", kind, record, changed=True)
        return record

    def update(self, kind: UserKind, record_id: int, parsed: ParsedUser) -> UserRecord:
        """Validate against the stored data and apply a PATCH."""
        current = self.get(kind, record_id)
        changes = {k: v for k, v in parsed.changes.items() if k != "password"}
        self._check_unique(kind, record_id, changes, parsed.errors)
        self._check_year_group(changes, parsed.errors)
        parsed.errors.raise_if_any()
        changed = any(getattr(current, name) != value for name, value in changes.items())
        return self._replace(kind, current, changes, "update", changed)

    def archive(
        self, kind: UserKind, record_id: int, dates: dict[str, str] | None = None
    ) -> UserRecord:
        """Archive a user; a student also leaves the year group and gets its archive date."""
        current = self.get(kind, record_id)
        changes: dict[str, Any] = {"archived": True}
        if kind == "student":
            dates = dates or {}
            changes |= {
                "year_group_id": None,
                "withdrawn_on": dates.get("withdrawn_on"),
                "graduated_on": dates.get("graduated_on"),
            }
        changed = any(getattr(current, name) != value for name, value in changes.items())
        return self._replace(kind, current, changes, "archive", changed)

    def unarchive(self, kind: UserKind, record_id: int) -> UserRecord:
        """Unarchive a user; a student's archive dates are cleared, the year group stays empty."""
        current = self.get(kind, record_id)
        changes: dict[str, Any] = {"archived": False}
        if kind == "student":
            changes |= {"withdrawn_on": None, "graduated_on": None}
        changed = any(getattr(current, name) != value for name, value in changes.items())
        return self._replace(kind, current, changes, "unarchive", changed)

    # Writing links

    def link(
        self,
        parent_id: int,
        child_id: int | None,
        relationship: str | None,
        errors: ErrorCollector,
        *,
        log: bool = True,
    ) -> ChildRelation:
        """Link a student to a parent; an existing link is a 422, as in ManageBac+.

        A deleted link is restored, keeping its old relationship unless one is given (the
        notes say re-posting restores it; keeping the relationship is assumed).
        """
        self.get("parent", parent_id)
        if child_id is None or child_id not in self._t.users["student"]:
            errors.add("child", MUST_EXIST)
        elif child_id in self._t.children.get(parent_id, {}):
            errors.add("child", TAKEN)
        errors.raise_if_any()
        assert child_id is not None  # checked above; narrows the type
        deleted = self._t.unlinked.get(parent_id, {})
        restored = child_id in deleted
        if restored and relationship is None:
            relationship = deleted[child_id]
        self._put_link(parent_id, child_id, relationship)
        if log:
            self._log_link("link", parent_id, child_id, changed=True, restored=restored)
        return ChildRelation(id=child_id, relationship=relationship)

    def relink(self, parent_id: int, child_id: int, relationship: str | None) -> ChildRelation:
        """Change the relationship of an existing link."""
        before = self.get_link(parent_id, child_id)
        self._t.children[parent_id][child_id] = relationship
        self._log_link("relink", parent_id, child_id, before.relationship != relationship)
        return ChildRelation(id=child_id, relationship=relationship)

    def unlink(self, parent_id: int, child_id: int) -> None:
        """Remove a link."""
        link = self.get_link(parent_id, child_id)
        self._drop_link(parent_id, child_id, link.relationship)
        self._log_link("unlink", parent_id, child_id, changed=True)

    def replace_links(
        self, parent_id: int, links: list[ChildRelation], errors: ErrorCollector
    ) -> list[ChildRelation]:
        """Make `links` the parent's complete set of children."""
        self.get("parent", parent_id)
        if any(link.id not in self._t.users["student"] for link in links):
            errors.add("child", MUST_EXIST)
        errors.raise_if_any()
        before = dict(self._t.children.get(parent_id, {}))
        after = {link.id: link.relationship for link in links}
        for child_id, relationship in before.items():
            self._drop_link(parent_id, child_id, relationship)
        for child_id, relationship in after.items():
            self._put_link(parent_id, child_id, relationship)
        self._log(
            "replace_links",
            "parent_child",
            self.get("parent", parent_id),
            changed=before != after,
            child_ids=sorted(after),
        )
        return self.children_of(parent_id)

    # Internals

    def _members(self) -> dict[int, list[int]]:
        """Return each year group's students (archiving takes a student out of it)."""
        members: dict[int, list[int]] = {}
        for record in self._t.users["student"].values():
            if isinstance(record, Student) and record.year_group_id is not None:
                members.setdefault(record.year_group_id, []).append(record.id)
        return members

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _id_taken(self, record_id: int) -> bool:
        return any(record_id in table for table in self._t.users.values())

    def _check_unique(
        self,
        kind: UserKind,
        record_id: int | None,
        changes: dict[str, Any],
        errors: ErrorCollector,
    ) -> None:
        email = changes.get("email")
        if email and "email" not in errors.errors:
            owner = self._t.emails.get(email.lower())
            if owner is not None and owner != (kind, record_id):
                errors.add("email", TAKEN)
        student_id = changes.get("student_id")
        if kind == "student" and student_id:
            owner_id = self._t.student_ids.get(student_id)
            if owner_id is not None and owner_id != record_id:
                errors.add("student_id", TAKEN)

    def _check_year_group(self, changes: dict[str, Any], errors: ErrorCollector) -> None:
        """Refuse an unknown year group, and an archived one (a cohort that has graduated)."""
        group_id = changes.get("year_group_id")
        if group_id is None:
            return
        cohort = self.cohorts.get(group_id)
        if cohort is None:
            errors.add("year_group_id", MUST_EXIST)
        elif cohort.archived:
            errors.add("year_group_id", ARCHIVED)

    def _replace(
        self,
        kind: UserKind,
        current: UserRecord,
        changes: dict[str, Any],
        action: str,
        changed: bool,
    ) -> UserRecord:
        if changed:
            changes = {**changes, "updated_at": self._now()}
        record = current.model_copy(update=changes)
        self._unindex(kind, current)
        self._store(kind, record)
        self._log(action, kind, record, changed=changed)
        return record

    def _store(self, kind: UserKind, record: UserRecord) -> None:
        self._t.users[kind][record.id] = record
        if record.email:
            self._t.emails[record.email.lower()] = (kind, record.id)
        if isinstance(record, Student) and record.student_id:
            self._t.student_ids[record.student_id] = record.id

    def _unindex(self, kind: UserKind, record: UserRecord) -> None:
        if record.email and self._t.emails.get(record.email.lower()) == (kind, record.id):
            del self._t.emails[record.email.lower()]
        if isinstance(record, Student) and record.student_id:
            self._t.student_ids.pop(record.student_id, None)

    def _put_link(self, parent_id: int, child_id: int, relationship: str | None) -> None:
        self._t.children.setdefault(parent_id, {})[child_id] = relationship
        self._t.parents_of.setdefault(child_id, set()).add(parent_id)
        self._t.unlinked.get(parent_id, {}).pop(child_id, None)

    def _drop_link(self, parent_id: int, child_id: int, relationship: str | None) -> None:
        del self._t.children[parent_id][child_id]
        self._t.parents_of[child_id].discard(parent_id)
        self._t.unlinked.setdefault(parent_id, {})[child_id] = relationship

    def _log(
        self, action: str, kind: str, record: UserRecord, *, changed: bool, **extra: Any
    ) -> None:
        self.write_count += 1
        if not changed:
            self.noop_write_count += 1
        entry: dict[str, Any] = {
            "at": self._clock(),
            "method": _METHODS[action],
            "action": action,
            "kind": kind,
            "id": record.id,
            "changed": changed,
            "email": record.email,
        }
        if isinstance(record, Student):
            entry["student_id"] = record.student_id
        self.writes.append(entry | extra)

    def _log_link(
        self, action: str, parent_id: int, child_id: int, changed: bool, **extra: Any
    ) -> None:
        child = self._t.users["student"].get(child_id)
        student_id = child.student_id if isinstance(child, Student) else None
        self._log(
            action,
            "parent_child",
            self.get("parent", parent_id),
            changed=changed,
            child_id=child_id,
            student_id=student_id,
            **extra,
        )


def _matches(kind: UserKind, record: UserRecord, query: UserQuery) -> bool:
    if query.archived is not None and record.archived != query.archived:
        return False
    if query.ids is not None and record.id not in query.ids:
        return False
    if query.modified_since is not None and record.updated_at < query.modified_since:
        return False
    if query.q:
        needle = query.q.lower()
        values = (getattr(record, name, None) for name in _SEARCHED[kind])
        if not any(needle in value.lower() for value in values if isinstance(value, str)):
            return False
    if isinstance(record, Student):
        if query.year_group_ids is not None and record.year_group_id not in query.year_group_ids:
            return False
        if query.status is not None and _status(record) != query.status:
            return False
    return True


def _status(student: Student) -> str:
    if student.graduated_on:
        return "graduated"
    if student.withdrawn_on or student.archived:
        return "withdrawn"
    return "enrolled"
