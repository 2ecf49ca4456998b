"""Students: map an iSAMS pupil to ManageBac+ student fields, and plan the writes.

docs/design.md §3 "Students" and "Precise semantics". Pure: the consumer loads the iSAMS record and
the ledger's `PushedState`, calls `plan_student`, applies the plan's writes and records
`plan.state`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from consumers.domain.fields import (
    address,
    archive_plan,
    day,
    gender,
    is_email,
    present,
    skip_plan,
    write_plan,
)
from consumers.domain.isams import IsamsStudent
from consumers.domain.iso import language_codes, nationality_codes
from consumers.domain.parse import parse_record
from consumers.domain.plan import Fields, FieldValue, Plan, PushedState, Skip

NOT_CURRENT = "not current in iSAMS"
DELETED = "deleted in iSAMS"
_REQUIRED = ("schoolCode", "forename", "surname")
_UNSAFE_LOCAL = re.compile(r"[^A-Za-z0-9._+-]+")
_YEAR_GROUP = "year_group_id"
PLACEHOLDER_FOR_INVALID = (
    "schoolEmailAddress: not a valid e-mail address in iSAMS; "
    "a placeholder address was sent instead"
)
PLACEHOLDER_FOR_EMPTY = (
    "schoolEmailAddress: empty in iSAMS; a placeholder address was sent until iSAMS has one"
)
# Warnings that say what was sent: true only of a plan that writes.
_SENT_WARNINGS = frozenset({PLACEHOLDER_FOR_INVALID, PLACEHOLDER_FOR_EMPTY})


@dataclass(frozen=True, slots=True)
class StudentRules:
    """One school's settings that student mapping needs (built by adapters from `School`).

    `year_groups` maps the iSAMS NC year to a ManageBac+ `year_group_id`; a year not in it
    is not synced. With `mappings.grades` (`year_group_setting`) the map is the one resolved
    from ManageBac+'s cohorts now, and `unresolved` says, per mapped year, why it has no
    year group (no active cohort of its grade, or two): its pupils are skipped with that.
    """

    year_groups: Mapping[int, int]
    placeholder_email_domain: str
    unresolved: Mapping[int, str] = field(default_factory=dict)
    year_group_setting: str = "mappings.year_groups"


@dataclass(frozen=True, slots=True)
class MappedStudent:
    """A pupil as ManageBac+ fields: the full desired state, empty values left out."""

    fields: Fields
    create_only: Fields
    warnings: tuple[str, ...]


def parse_student(raw: object) -> IsamsStudent | Skip:
    """Read an iSAMS REST student record; a record that cannot be read is a `Skip`."""
    return parse_record(IsamsStudent, raw)


def map_student(record: IsamsStudent, rules: StudentRules) -> MappedStudent | Skip:
    """Map a pupil as for creating them; `Skip` names what creation would lack.

    Required: `schoolCode`, `forename`, `surname` and a `yearGroup` in `year_groups`.
    Whether the pupil is current is the plan's concern, not the mapping's.
    """
    mapped = _map(record, rules)
    reason = _missing(record, rules, with_year_group=True)
    return Skip(reason) if reason else mapped


def plan_student(
    record: IsamsStudent | None,
    rules: StudentRules,
    previous: PushedState | None,
    event_deleted: bool,
    today: date,
) -> Plan:
    """Decide what to write to ManageBac+ for one pupil.

    - `record` None means iSAMS no longer has the pupil (treated like `student.deleted`).
    - Not current, or deleted: archive (`withdrawn_on` = leavingDate, else today) when
      ManageBac+ has the pupil unarchived; otherwise skip.
    - New: create (empty values left out, `attendance_start_date` from enrolmentDate).
    - Archived before and current again: unarchive, then write the whole current state
      (year group included, as archiving removed it). Like a creation, this needs a mapped
      year group; without one the pupil stays archived and the plan is a skip.
    - Synced before: write only changed fields; a field pushed before and now empty is
      cleared (`""`, or `[]` for lists). The placeholder e-mail is replaced by the same rule.
    - Synced before but `yearGroup` now empty or unmapped: the pupil stays in ManageBac+,
      their year group there is left as it was (iSAMS gives nothing to move them to, and
      clearing `year_group_id` is no documented write), other fields still sync, and a
      warning says so. Archiving them instead would hide a pupil who is still on roll because of a
      settings gap.
    - Missing `schoolCode`, `forename` or `surname`: skip, even when synced before (these are
      the match key and required names; clearing them would break the ManageBac+ record).
    - `yearGroup` mapped to a grade without a single active cohort now (`unresolved`): skip
      with the reason, synced before or not (docs/design.md §3: none, or two, skip).
    """
    if event_deleted or record is None or not record.is_current:
        gone = DELETED if event_deleted or record is None else NOT_CURRENT
        withdrawn_on = (record.leaving_date if record is not None else None) or today
        return archive_plan(previous, gone, withdrawn_on=withdrawn_on)

    mapped = _map(record, rules)
    warnings = mapped.warnings
    if previous is None or previous.archived:
        reason = _missing(record, rules, with_year_group=True)
        if reason:
            return skip_plan(previous, reason, _unsent(warnings))
        return write_plan(mapped.fields, previous, warnings, create_only=mapped.create_only)

    reason = _missing(record, rules, with_year_group=False) or _unresolved(record, rules)
    if reason:
        return skip_plan(previous, reason, _unsent(warnings))
    desired = dict(mapped.fields)
    if _YEAR_GROUP not in desired:
        warnings = (*warnings, _year_group_kept(record, rules))
        if _YEAR_GROUP in previous.fields:
            desired[_YEAR_GROUP] = previous.fields[_YEAR_GROUP]
    return write_plan(desired, previous, warnings)


def _unsent(warnings: tuple[str, ...]) -> tuple[str, ...]:
    """Drop the warnings that say something was sent: a skipped pupil was sent nothing."""
    return tuple(warning for warning in warnings if warning not in _SENT_WARNINGS)


def _missing(record: IsamsStudent, rules: StudentRules, with_year_group: bool) -> str | None:
    """Say which required iSAMS fields are missing, or None when all are there."""
    values = (record.school_code, record.forename, record.surname)
    missing = [name for name, value in zip(_REQUIRED, values, strict=True) if value is None]
    if with_year_group and record.year_group is None:
        missing.append("yearGroup")
    parts = [f"missing in iSAMS: {', '.join(missing)}"] if missing else []
    year = record.year_group
    if with_year_group and year is not None and year not in rules.year_groups:
        parts.append(
            rules.unresolved.get(year) or f"yearGroup {year} is not in {rules.year_group_setting}"
        )
    return "; ".join(parts) or None


def _unresolved(record: IsamsStudent, rules: StudentRules) -> str | None:
    """Say why the pupil's mapped year has no year group now, or None when it has one."""
    return rules.unresolved.get(record.year_group) if record.year_group is not None else None


def _year_group_kept(record: IsamsStudent, rules: StudentRules) -> str:
    what = (
        "yearGroup is empty in iSAMS"
        if record.year_group is None
        else f"yearGroup {record.year_group} is not in {rules.year_group_setting}"
    )
    return f"{what}; the ManageBac+ year group was left unchanged"


def _map(record: IsamsStudent, rules: StudentRules) -> MappedStudent:
    """Map every field the students table names; empty values are left out."""
    warnings: list[str] = []
    home = record.home_address
    fields: dict[str, FieldValue | None] = {
        "first_name": record.forename,
        "middle_name": record.middlenames,
        "last_name": record.surname,
        "nickname": record.preferred_name,
        "birthday": day(record.dob),
        "gender": gender(record.gender, warnings),
        _YEAR_GROUP: rules.year_groups.get(record.year_group)
        if record.year_group is not None
        else None,
        "email": _email(record, rules, warnings),
        "mobile_phone_number": record.mobile_number,
        **(
            address(home.address1, home.address2, home.town, home.county, home.postcode)
            if home
            else {}
        ),
        "identifier": record.school_id,
        "student_id": record.school_code,
    }
    nationalities, nationality_warnings = nationality_codes(
        record.nationalities, record.nationality_iso_mappings
    )
    languages, language_warnings = language_codes(record.languages, record.language_iso_mappings)
    fields["nationalities"] = nationalities
    fields["languages"] = languages
    warnings += nationality_warnings + language_warnings
    create_only: Fields = {}
    if record.enrolment_date is not None:
        create_only["attendance_start_date"] = record.enrolment_date.isoformat()
    return MappedStudent(fields=present(fields), create_only=create_only, warnings=tuple(warnings))


def _email(record: IsamsStudent, rules: StudentRules, warnings: list[str]) -> str:
    """Return the school e-mail, or the placeholder `<schoolCode>@<domain>` until iSAMS has one."""
    email = record.school_email_address
    if email is not None and is_email(email):
        return email
    warnings.append(PLACEHOLDER_FOR_INVALID if email is not None else PLACEHOLDER_FOR_EMPTY)
    local = _UNSAFE_LOCAL.sub("-", record.school_code or "").strip(".-")
    if not local:
        local = "student-" + _UNSAFE_LOCAL.sub("-", record.school_id).strip(".-")
    return f"{local}@{rules.placeholder_email_domain.lstrip('@')}"
