"""Field rules shared by students, parents and teachers, and the plans they lead to.

docs/design.md §3 "Precise semantics": gender `M`/`F` only, dates without their time, an
address block as five ManageBac+ fields (plus the country as ISO alpha-2 for parents and
teachers), empty values left out on create, and on update a field pushed before and now
empty cleared with `""` (`[]` for lists), because ManageBac+ ignores nulls. Warnings name
fields, never values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from consumers.domain.isams import IsoMapping
from consumers.domain.iso import country_code
from consumers.domain.plan import (
    Action,
    Archive,
    Create,
    Fields,
    FieldValue,
    NoChange,
    Plan,
    PushedState,
    Skip,
    Unarchive,
    Update,
)

GENDER_NOT_SENT = "gender: the iSAMS value is not M or F, so no gender was sent"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def is_email(value: str | None) -> bool:
    """Tell whether `value` looks like an e-mail address ManageBac+ accepts."""
    return value is not None and _EMAIL.fullmatch(value) is not None


def gender(value: str | None, warnings: list[str]) -> str | None:
    """Return `Male`/`Female` for `M`/`F` (any case); other values are not sent, with a warning."""
    if value is None:
        return None
    folded = value.casefold()
    if folded in ("m", "male"):
        return "Male"
    if folded in ("f", "female"):
        return "Female"
    warnings.append(GENDER_NOT_SENT)
    return None


def day(value: date | None) -> str | None:
    """Return a date as `yyyy-mm-dd` (iSAMS's time part was dropped when the record was read)."""
    return value.isoformat() if value is not None else None


def address(
    line1: str | None,
    line2: str | None,
    town: str | None,
    county: str | None,
    postcode: str | None,
) -> dict[str, str | None]:
    """Return an iSAMS address block as ManageBac+'s home address fields."""
    return {
        "street_address": line1,
        "street_address_ii": line2,
        "city": town,
        "state": county,
        "zipcode": postcode,
    }


def country(
    name: str | None, mappings: Sequence[IsoMapping], warnings: list[str], field: str = "country"
) -> str | None:
    """Return a country as ISO 3166-1 alpha-2 (school's mapping first, then by name).

    An unknown country is not sent; the warning names `field`, never the value.
    """
    code, found = country_code(name, mappings, field)
    warnings += found
    return code


def is_empty(value: object) -> bool:
    """Tell whether a value counts as empty: None, `""`, `[]` or `()`."""
    return value is None or value == "" or value == [] or value == ()


def present(fields: Mapping[str, FieldValue | None]) -> Fields:
    """Return the fields with a value; on create, null or empty iSAMS values are left out."""
    return {
        name: value for name, value in fields.items() if value is not None and not is_empty(value)
    }


def missing_reason(missing: Iterable[str], invalid_emails: Iterable[str] = ()) -> str | None:
    """Say which required iSAMS fields are missing or not valid e-mail addresses, or None."""
    missing, invalid = list(missing), list(invalid_emails)
    parts = [f"missing in iSAMS: {', '.join(missing)}"] if missing else []
    if invalid:
        parts.append(f"not a valid e-mail address in iSAMS: {', '.join(invalid)}")
    return "; ".join(parts) or None


def diff(desired: Mapping[str, FieldValue], pushed: Mapping[str, Any], full: bool) -> Fields:
    """Return the fields to write: changed ones (all, when `full`), plus clears.

    A field pushed before and now absent is cleared with `""` (`[]` for lists), since
    ManageBac+ ignores nulls.
    """
    changes: Fields = {
        name: value for name, value in desired.items() if full or pushed.get(name) != value
    }
    for name, old in pushed.items():
        if name not in desired and not is_empty(old):
            changes[name] = [] if isinstance(old, list | tuple) else ""
    return changes


def write_plan(
    desired: Fields,
    previous: PushedState | None,
    warnings: Sequence[str] = (),
    create_only: Fields | None = None,
) -> Plan:
    """Plan the writes that make ManageBac+ hold `desired` for a record that should sync.

    - Never pushed: create (`create_only` goes in the creating POST only).
    - Archived before: unarchive, then write the whole desired state (clears included),
      since archiving may have removed things (a student's year group).
    - Synced: write the changed fields and the clears, or nothing.
    """
    if previous is None:
        create = Create(payload=desired, create_only=dict(create_only or {}))
        return Plan(actions=(create,), state=PushedState(desired), warnings=tuple(warnings))
    state = PushedState(desired, archived=False, managebac_id=previous.managebac_id)
    if previous.archived:
        rewrite = Update(changes=diff(desired, previous.fields, full=True))
        return Plan(actions=(Unarchive(), rewrite), state=state, warnings=tuple(warnings))
    changes = diff(desired, previous.fields, full=False)
    action: Action = Update(changes=changes) if changes else NoChange()
    return Plan(actions=(action,), state=state, warnings=tuple(warnings))


def archive_plan(
    previous: PushedState | None,
    reason: str,
    withdrawn_on: date | None = None,
    warnings: Sequence[str] = (),
) -> Plan:
    """Archive a record that should no longer sync, if ManageBac+ still has it active.

    Never pushed, or archived already: a skip with `reason`, keeping what the ledger knows.
    """
    if previous is None or previous.archived:
        return Plan(actions=(Skip(reason),), state=previous, warnings=tuple(warnings))
    state = PushedState(previous.fields, archived=True, managebac_id=previous.managebac_id)
    archive = Archive(withdrawn_on=withdrawn_on)
    return Plan(actions=(archive,), state=state, warnings=tuple(warnings))


def skip_plan(previous: PushedState | None, reason: str, warnings: Sequence[str] = ()) -> Plan:
    """Skip a record with `reason`, leaving ManageBac+ and the ledger's link as they are."""
    return Plan(actions=(Skip(reason),), state=previous, warnings=tuple(warnings))
