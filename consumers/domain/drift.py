"""Drift: how what ManageBac+ holds differs from the mapped iSAMS state, and what to write.

docs/design.md §6 "Reconcile". The plans themselves come from the mapping core
(`plan_student`, `plan_parent`, `plan_teacher`, `decide_link`), given what ManageBac+ holds
*now* as the previous state instead of what the ledger remembers pushing; this module adds
the few rules that planning against an observed state needs:

- only the fields this service sends (§3) are compared (`SENT_FIELDS`);
- a value ManageBac+ holds that this service never wrote and iSAMS has not got is the
  school's own, so it is not cleared (the change path clears only what it pushed);
- an e-mail differing only in case is the same address (§3: e-mail comparisons ignore case);
- a user ManageBac+ already has is adopted with only the fields that differ, as the change
  path adopts (consumers/sync/writes.py);
- a look-alike is an unmanaged user with a managed user's e-mail, or the same names and
  birthday, within one kind of user.

Pure: no I/O, and nothing but the core's own types.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from consumers.domain.fields import is_empty
from consumers.domain.plan import (
    Action,
    Create,
    Fields,
    FieldValue,
    NoChange,
    Plan,
    PushedState,
    Unarchive,
    Update,
)
from consumers.domain.records import LinkState

_ADDRESS = frozenset({"street_address", "street_address_ii", "city", "state", "zipcode"})
_PERSON = frozenset({"first_name", "last_name", "email", "mobile_phone_number"})

# The ManageBac+ fields each kind of user gets from iSAMS (docs/design.md §3), by ManageBac+
# resource. `attendance_start_date` is sent on creation only, so it is never drift.
SENT_FIELDS: Mapping[str, frozenset[str]] = {
    "students": _PERSON
    | _ADDRESS
    | {
        "middle_name",
        "nickname",
        "birthday",
        "gender",
        "year_group_id",
        "identifier",
        "student_id",
        "nationalities",
        "languages",
    },
    "parents": _PERSON | _ADDRESS | {"salutation", "title", "phone_number", "country"},
    "teachers": _PERSON
    | _ADDRESS
    | {
        "nickname",
        "gender",
        "birthday",
        "phone_number",
        "country",
        "nationalities",
        "languages",
    },
}


def observed_fields(resource: str, fields: Mapping[str, Any]) -> Fields:
    """Return the sent fields of a ManageBac+ user that have a value, as the plans compare them.

    Nulls, `""`, empty lists and values of a shape this service never sends count as empty.
    """
    found: Fields = {}
    for name in sorted(SENT_FIELDS[resource]):
        value = fields.get(name)
        if isinstance(value, bool) or is_empty(value):
            continue
        if isinstance(value, str | int):
            found[name] = value
        elif isinstance(value, list | tuple):
            items = [item for item in value if isinstance(item, str) and item]
            if items:
                found[name] = items
    return found


def same_value(name: str, ours: object, theirs: object) -> bool:
    """Tell whether two values of a field are the same; e-mails ignoring case."""
    if name == "email" and isinstance(ours, str) and isinstance(theirs, str):
        return ours.strip().casefold() == theirs.strip().casefold()
    return ours == theirs


def trimmed(plan: Plan, observed: Mapping[str, FieldValue], owned: Collection[str]) -> Plan:
    """Return `plan` writing only what ManageBac+ does not hold already.

    A clear of a field this service never wrote (`owned` are the fields the ledger says were
    pushed) is dropped: iSAMS has no value to win with, and the one there is the school's.
    An update that is not the rewrite after an unarchive keeps only the fields that differ
    from `observed`; the rewrite after an unarchive stays whole (§3: archiving removes things,
    the whole state is written again; it is one request either way). A plan left without a
    write becomes `NoChange`. The state to record is unchanged.
    """
    actions: list[Action] = []
    after_unarchive = False
    for action in plan.actions:
        if isinstance(action, Update):
            changes = {
                name: value
                for name, value in action.changes.items()
                if _worth_writing(name, value, observed, owned, after_unarchive)
            }
            if changes:
                actions.append(Update(changes=changes))
        else:
            actions.append(action)
        after_unarchive = isinstance(action, Unarchive)
    return replace(plan, actions=tuple(actions) or (NoChange(),))


def _worth_writing(
    name: str,
    value: FieldValue,
    observed: Mapping[str, FieldValue],
    owned: Collection[str],
    whole: bool,
) -> bool:
    if is_empty(value):
        return name in owned and (whole or not is_empty(observed.get(name)))
    return whole or not same_value(name, value, observed.get(name))


def adoption_changes(create: Create, observed: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    """Return the fields to write to an adopted user: where it differs from iSAMS (e-mails
    ignoring case); nothing is cleared and the creation-only fields are not sent."""
    return {
        name: value
        for name, value in create.adopt().changes.items()
        if not same_value(name, value, observed.get(name))
    }


def adoption_plan(
    create: Create,
    observed: Mapping[str, FieldValue],
    archived: bool,
    managebac_id: int,
    warnings: Iterable[str] = (),
) -> Plan:
    """Plan taking over a ManageBac+ user that matches a record to create (never a duplicate).

    As the change path adopts: unarchive it when archived, then write only the fields where
    it differs from iSAMS; nothing is cleared and the creation-only fields are not sent.
    """
    changes = adoption_changes(create, observed)
    actions: tuple[Action, ...] = (Unarchive(),) if archived else ()
    if changes:
        actions += (Update(changes=changes),)
    state = PushedState(create.payload, archived=False, managebac_id=managebac_id)
    return Plan(actions=actions or (NoChange(),), state=state, warnings=tuple(warnings))


def observed_link(
    links: Mapping[int, str | None] | None, student_id: int | None, remembered: LinkState | None
) -> LinkState | None:
    """Return a parent-child link as ManageBac+ holds it, for `decide_link`'s `previous`.

    `links` are the parent's links in ManageBac+ (None: not read, so the ledger's memory
    stands). A link ManageBac+ lacks is "not linked", whatever the ledger remembers.
    """
    if links is None or student_id is None:
        return remembered
    if student_id in links:
        return LinkState(links[student_id] or "", linked=True)
    return LinkState(remembered.relationship, linked=False) if remembered is not None else None


@dataclass(frozen=True, slots=True)
class Identity:
    """What tells one person from another in ManageBac+: e-mails, names and birthday."""

    managebac_id: int
    emails: frozenset[str]
    names: tuple[str, str] | None
    birthday: str | None


def identity(managebac_id: int, *sources: Mapping[str, Any]) -> Identity:
    """Return a user's identity from one or more field sets (what iSAMS says and what
    ManageBac+ holds): every e-mail found, the first names and birthday found."""
    emails: set[str] = set()
    names: tuple[str, str] | None = None
    birthday: str | None = None
    for fields in sources:
        email = fields.get("email")
        if isinstance(email, str) and email.strip():
            emails.add(email.strip().casefold())
        first, last = _folded(fields.get("first_name")), _folded(fields.get("last_name"))
        if names is None and first and last:
            names = (first, last)
        day = fields.get("birthday")
        if birthday is None and isinstance(day, str) and day.strip():
            birthday = day.strip()[:10]
    return Identity(managebac_id, frozenset(emails), names, birthday)


SAME_EMAIL = "same e-mail"
SAME_NAMES_AND_BIRTHDAY = "same names and birthday"


@dataclass(frozen=True, slots=True)
class LookAlike:
    """An unmanaged user that may duplicate a managed one, and why it was taken for one."""

    managebac_id: int
    like: int
    rule: str


def look_alikes(managed: Iterable[Identity], unmanaged: Iterable[Identity]) -> list[LookAlike]:
    """Find the unmanaged users that look like a managed one (of the same kind of user).

    Same e-mail, case ignored; or the same first and last names (case and spacing ignored)
    and the same birthday, both known. Each unmanaged user is reported once, e-mail first.
    """
    by_email: dict[str, int] = {}
    by_person: dict[tuple[str, str, str], int] = {}
    for user in managed:
        for email in user.emails:
            by_email.setdefault(email, user.managebac_id)
        if user.names is not None and user.birthday is not None:
            by_person.setdefault((*user.names, user.birthday), user.managebac_id)
    found: list[LookAlike] = []
    for user in unmanaged:
        like = next((by_email[email] for email in sorted(user.emails) if email in by_email), None)
        if like is not None:
            found.append(LookAlike(user.managebac_id, like, SAME_EMAIL))
            continue
        if user.names is not None and user.birthday is not None:
            like = by_person.get((*user.names, user.birthday))
            if like is not None:
                found.append(LookAlike(user.managebac_id, like, SAME_NAMES_AND_BIRTHDAY))
    return found


def _folded(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()).casefold() or None
