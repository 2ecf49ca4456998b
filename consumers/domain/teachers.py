"""Teachers: map an iSAMS employee to a ManageBac+ teacher, and plan the writes.

docs/design.md §3 "Teachers" and "Precise semantics". Pure: the consumer loads the employee,
resolves `managebacAccess` (the event's value, else the last known one, else None), and
calls `plan_teacher` with the ledger's `PushedState`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from consumers.domain.fields import (
    address,
    archive_plan,
    country,
    day,
    gender,
    is_email,
    missing_reason,
    present,
    skip_plan,
    write_plan,
)
from consumers.domain.isams import IsamsEmployee
from consumers.domain.iso import language_codes, nationality_codes
from consumers.domain.parse import parse_record
from consumers.domain.plan import Fields, FieldValue, Plan, PushedState, Skip

STAFF_DISABLED = "staff sync is off for this school (staff.enabled is false)"
LEFT = "not current in iSAMS (left the school)"
DELETED = "deleted in iSAMS"
ACCESS_UNKNOWN = (
    "ManageBac+ access unknown: no staff event has said whether this user has "
    "third-party access to ManageBac+ in iSAMS (staff.access_from is event; all_current or "
    "teaching_staff take it from the employee record)"
)
NO_ACCESS = "no ManageBac+ access in iSAMS"
ACCESS_REVOKED = "ManageBac+ access revoked in iSAMS"
ACCESS_REVOKED_IGNORED = (
    "ManageBac+ access revoked in iSAMS; staff.on_access_revoked is ignore, "
    "so the teacher was left in ManageBac+ as they were"
)


AccessFrom = Literal["event", "all_current", "teaching_staff"]


@dataclass(frozen=True, slots=True)
class TeacherRules:
    """One school's `staff` settings (built by adapters from `School`)."""

    enabled: bool
    on_access_revoked: Literal["archive", "ignore"] = "archive"
    access_from: AccessFrom = "event"


def access_for(
    rules: TeacherRules, employee: IsamsEmployee | None, remembered: bool | None
) -> bool | None:
    """Tell whether the member of staff has ManageBac+ access, as `staff.access_from` says.

    The iSAMS REST API has no such flag, so: `event` takes the last `managebacAccess` a staff
    event carried (`remembered`; None: never said); `all_current` gives every employee
    access (leavers are archived and a missing school e-mail is skipped by the plan, with
    their own reasons); `teaching_staff` gives it to those iSAMS marks `isTeachingStaff`.
    """
    if rules.access_from == "event" or employee is None:
        return remembered
    if rules.access_from == "all_current":
        return True
    return bool(employee.is_teaching_staff)


@dataclass(frozen=True, slots=True)
class MappedTeacher:
    """An employee as ManageBac+ teacher fields: the full desired state, empty values left out."""

    fields: Fields
    warnings: tuple[str, ...]


def parse_employee(raw: object) -> IsamsEmployee | Skip:
    """Read an iSAMS REST employee record; a record that cannot be read is a `Skip`."""
    return parse_record(IsamsEmployee, raw)


def map_teacher(employee: IsamsEmployee) -> MappedTeacher | Skip:
    """Map an employee as for creating their teacher; `Skip` names what creation would lack.

    Required: a valid `schoolEmailAddress` (the match key) and a `surname` (ManageBac+ needs
    `last_name`). Whether they may sync (access, left) is the plan's concern.
    """
    missing = _missing(employee)
    return Skip(missing) if missing else _map(employee)


def plan_teacher(
    employee: IsamsEmployee | None,
    access: bool | None,
    rules: TeacherRules,
    previous: PushedState | None,
    event_deleted: bool,
) -> Plan:
    """Decide what to write to ManageBac+ for one member of staff.

    In order:
    - `staff.enabled` false: skip (ManageBac+ is left as it is).
    - Left (`systemStatus` not current, `staff.deleted`, or the record gone): archive when
      ManageBac+ has the teacher unarchived, whatever `on_access_revoked` says.
    - Access never known: skip; the teacher is not synced until a staff event says.
    - Access revoked: archive, or with `on_access_revoked: ignore` skip, leaving the teacher
      and the ledger's link as they are (no field updates while access is off).
    - Access granted: create; or unarchive and rewrite everything (access granted again, or
      a return); or write the changed fields, clearing emptied ones with `""`.
    - Missing `surname` or a valid `schoolEmailAddress`: skip, even when synced before.
    """
    if not rules.enabled:
        return skip_plan(previous, STAFF_DISABLED)
    if event_deleted or employee is None:
        return archive_plan(previous, DELETED)
    if not employee.is_current:
        return archive_plan(previous, LEFT)
    if access is None:
        return skip_plan(previous, ACCESS_UNKNOWN)
    if not access:
        if previous is None:
            return skip_plan(previous, NO_ACCESS)
        if rules.on_access_revoked == "ignore":
            return skip_plan(previous, ACCESS_REVOKED_IGNORED)
        return archive_plan(previous, ACCESS_REVOKED)
    missing = _missing(employee)
    mapped = _map(employee)
    if missing:
        return skip_plan(previous, missing, mapped.warnings)
    return write_plan(mapped.fields, previous, mapped.warnings)


def _missing(employee: IsamsEmployee) -> str | None:
    missing = [] if employee.surname else ["surname"]
    invalid: list[str] = []
    if employee.school_email_address is None:
        missing.append("schoolEmailAddress")
    elif not is_email(employee.school_email_address):
        invalid.append("schoolEmailAddress")
    return missing_reason(missing, invalid)


def _map(employee: IsamsEmployee) -> MappedTeacher:
    """Map every field §3 names for teachers; empty values are left out."""
    warnings: list[str] = []
    email = employee.school_email_address
    fields: dict[str, FieldValue | None] = {
        "first_name": employee.forename,
        "last_name": employee.surname,
        "nickname": employee.preferred_name,
        "gender": gender(employee.gender, warnings),
        "email": email if is_email(email) else None,
        "birthday": day(employee.date_of_birth),
        "phone_number": employee.personal_telephone_number,
        "mobile_phone_number": employee.school_mobile_number or employee.personal_mobile_number,
        **address(
            employee.personal_address1,
            employee.personal_address2,
            employee.personal_town,
            employee.personal_county,
            employee.personal_postcode,
        ),
        "country": country(
            employee.personal_country, employee.country_iso_mappings, warnings, "personalCountry"
        ),
    }
    nationalities, nationality_warnings = nationality_codes(
        employee.nationalities, employee.nationality_iso_mappings
    )
    languages, language_warnings = language_codes(
        employee.languages, employee.language_iso_mappings, "language"
    )
    fields["nationalities"] = nationalities
    fields["languages"] = languages
    warnings += nationality_warnings + language_warnings
    return MappedTeacher(fields=present(fields), warnings=tuple(warnings))
