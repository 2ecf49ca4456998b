"""Parents: iSAMS contacts become one ManageBac+ parent per person, linked to each child.

A contact change updates the contact's ledger row (its record and link), then reconciles
the whole person under a per-person lock: the parent (create, adopt by e-mail, update,
archive when no child is active) and every link of theirs. A student change reconciles the
student's contacts, so a contact that arrived before its student is linked as soon as the
student is in ManageBac+, whichever order the events came in.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import partial

from consumers.domain.isams import (
    IsamsContact,
    contact_people,
    same_contact,
    second_person_id,
    with_known_mappings,
)
from consumers.domain.parents import (
    NO_PERSON,
    ParentRules,
    contact_syncs,
    parse_contact,
    person_key,
    plan_parent,
    representative_contact,
)
from consumers.domain.plan import Skip
from consumers.domain.records import Status, SyncRecord
from consumers.domain.relationships import (
    Link,
    LinkEnds,
    Relink,
    Unlink,
    decide_link,
)
from consumers.events import QueuedChange
from consumers.outcomes import Outcome, Result
from consumers.ports import Record
from consumers.sync.context import SyncContext
from consumers.sync.pipeline import by_email
from consumers.sync.writes import (
    STALE,
    applied,
    applied_version,
    apply_writes,
    failures_translated,
    is_stale_change,
    pushed_state,
    skipped,
)

CONTACT = "contact"
PARENT = "parent"
REMOVED = "removed in iSAMS"
PARENT_ARCHIVED = "archived: none of this parent's children is active in ManageBac+"


def rules_for(context: SyncContext) -> ParentRules:
    """Build the pure core's rules from the school's settings."""
    mappings = context.ports.settings.mappings
    return ParentRules.from_settings(mappings.contact_types, mappings.relationships)


async def sync_contact(change: QueuedChange, context: SyncContext) -> Result:
    """Apply one contact change, then reconcile the contact's person."""
    async with failures_translated():
        contact_id = change.event.record_id
        student_id = change.data.schoolId or ""
        raw: Record | None = None
        if change.event.action != "deleted":
            if change.data.record is not None and await _is_stale_contact(
                context, change, contact_id, change.data.record
            ):
                return STALE
            found = change.data.record or await _find_contact(context, student_id, contact_id)
            if isinstance(found, _Unlisted):  # the student left: the contact stays as it was
                return await _reconcile_people_of(context, contact_id, change.received_at)
            raw = found
        people: list[tuple[str, Record | None]] = [(contact_id, None)]
        if raw is not None:
            people = list(contact_people(contact_id, raw))
        second = second_person_id(contact_id)
        if second not in dict(people) and await context.ledger.get(context.school, CONTACT, second):
            people.append((second, None))  # no longer joint, or gone: the second person goes
        results = [
            await _upsert_contact(context, person_id, student_id, person, change.received_at)
            for person_id, person in people
        ]
        return results[0]


async def _reconcile_people_of(
    context: SyncContext, contact_id: str, received_at: datetime
) -> Result:
    """Reconcile the person(s) a contact stands for, with the records the ledger has."""
    results = []
    for person_id in (contact_id, second_person_id(contact_id)):
        row = await context.ledger.get(context.school, CONTACT, person_id)
        if row is not None and row.person_key:
            results.append(await reconcile_person(context, row.person_key, received_at))
    return results[0] if results else Result(Outcome.SKIPPED, reason=NO_PERSON)


async def _is_stale_contact(
    context: SyncContext, change: QueuedChange, contact_id: str, raw: Record
) -> bool:
    """Tell whether a fat contact event is older than the contact record last applied.

    Each contact record is judged on its own `lastUpdated`: a sender's retry or a replay of
    an older version must not put its old details back. The person's parent then still
    takes its fields from the most recently updated of the person's records.
    """
    contact = parse_contact(raw)
    if isinstance(contact, Skip):
        return False
    previous = await context.ledger.get(context.school, CONTACT, contact_id)
    return is_stale_change(change, contact.last_updated, previous)


async def sync_contacts_of_student(
    context: SyncContext, student_id: str, received_at: datetime, student_moved: bool
) -> None:
    """Reconcile a student's contacts: new and changed ones, and those that vanished.

    `student_moved`: the student was created, adopted, archived or unarchived, so every
    one of their parents is reconciled; otherwise only contacts that changed or wait.
    """
    listed = await context.ports.isams.student_contacts(student_id)
    known = {
        row.isams_id: row
        for row in await context.ledger.related(context.school, CONTACT, student_id)
    }
    if listed is None:  # the student is gone from iSAMS: their parents may have no child left
        for person in {row.person_key for row in known.values() if row.person_key}:
            await reconcile_person(context, person, received_at)
        return
    seen: set[str] = set()
    for listed_raw in listed:
        listed_id = str(listed_raw.get("id", ""))
        if not listed_id:
            continue
        for contact_id, raw in contact_people(listed_id, listed_raw):
            seen.add(contact_id)
            row = known.get(contact_id)
            settled = row is not None and row.status is not Status.PENDING
            if (
                settled
                and not student_moved
                and row is not None
                and same_contact(row.source.record, raw)
            ):
                continue  # nothing new for this contact's parent or link
            await _upsert_contact(context, contact_id, student_id, raw, received_at)
    for contact_id in known.keys() - seen:
        await _upsert_contact(context, contact_id, student_id, None, received_at)


class _Unlisted:
    """The student has no contact list in iSAMS (not current): nothing is known of the
    contact from there, which is not the same as the contact being removed."""


UNLISTED = _Unlisted()


async def _find_contact(
    context: SyncContext, student_id: str, contact_id: str
) -> Record | _Unlisted | None:
    """Read a contact from its student's list; None when the list no longer has it."""
    contacts = await context.ports.isams.student_contacts(student_id) if student_id else None
    if contacts is None:
        return UNLISTED
    for raw in contacts:
        if str(raw.get("id", "")) == contact_id:
            return raw
    return None


async def _upsert_contact(
    context: SyncContext,
    contact_id: str,
    student_id: str,
    raw: Record | None,
    received_at: datetime,
) -> Result:
    """Record the contact's current record (None: removed), then reconcile its person(s)."""
    ledger = context.ledger
    previous = await ledger.get(context.school, CONTACT, contact_id)
    contact = parse_contact(raw) if raw is not None else None
    if isinstance(contact, Skip):
        contact = None
        raw = None
    person = (person_key(contact) if contact is not None else None) or (
        previous.person_key if previous is not None else None
    )
    base = previous or SyncRecord(
        school=context.school, kind=CONTACT, isams_id=contact_id, status=Status.SKIPPED
    )
    if person is None:
        await ledger.put(skipped(base, NO_PERSON, (), received_at, related_id=student_id or None))
        return Result(Outcome.SKIPPED, reason=NO_PERSON)
    if raw is not None:
        raw = with_known_mappings(raw, base.source.record)
    if raw is not None and same_contact(base.source.record, raw) and base.person_key == person:
        return await reconcile_person(context, person, received_at)  # same record: links may wait
    version = contact.last_updated if contact is not None else None
    await ledger.put(
        replace(
            base,
            related_id=student_id or base.related_id,
            person_key=person,
            source=replace(base.source, record=raw),
            source_updated_at=applied_version(version, base),
            last_received_at=received_at,
        )
    )
    result = await reconcile_person(context, person, received_at)
    if previous is not None and previous.person_key not in (None, person):
        await reconcile_person(context, previous.person_key, received_at)  # moved to a new person
    return result


async def reconcile_person(context: SyncContext, person: str, received_at: datetime) -> Result:
    """Bring one person's parent and all their links in line with their contact records."""
    async with context.locks.hold(f"{context.school}:person:{person}"):
        return await _reconcile_person(context, person, received_at)


async def _reconcile_person(context: SyncContext, person: str, received_at: datetime) -> Result:
    ledger = context.ledger
    rules = rules_for(context)
    rows = await ledger.of_person(context.school, CONTACT, person)
    contacts: dict[str, IsamsContact] = {}
    for row in rows:
        parsed = parse_contact(row.source.record) if row.source.record else None
        if isinstance(parsed, IsamsContact):
            contacts[row.isams_id] = parsed
    students: dict[str, SyncRecord | None] = {
        row.related_id: await ledger.get(context.school, "student", row.related_id)
        for row in rows
        if row.related_id
    }
    syncing = {cid for cid, contact in contacts.items() if contact_syncs(contact, rules) is None}
    has_active_child = any(
        _active(students.get(row.related_id or "")) for row in rows if row.isams_id in syncing
    )
    parent_row = await ledger.get(context.school, PARENT, person)
    parent_base = parent_row or SyncRecord(
        school=context.school, kind=PARENT, isams_id=person, status=Status.SKIPPED
    )
    plan = plan_parent(
        representative_contact(contacts.values(), rules),
        rules,
        pushed_state(parent_row),
        has_active_child,
    )
    if plan.skip is not None:
        reason = plan.skip.reason
        if not syncing and rows:  # say which rule keeps the person out, not just that one does
            reason = f"{reason}: {_why_not_synced(rows[0], rules)}"
        parent_after = skipped(parent_base, reason, plan.warnings, received_at)
        result = Result(Outcome.SKIPPED, reason=reason)
    else:
        client = context.ports.managebac
        managebac_id, outcome = await apply_writes(
            plan,
            "parents",
            parent_base.managebac_id,
            client,
            partial(by_email, "parents", client),
        )
        parent_after = applied(
            parent_base,
            plan,
            managebac_id,
            outcome,
            received_at,
            archive_reason=PARENT_ARCHIVED,
            source=replace(parent_base.source, made_here=_made_here(outcome, parent_base)),
        )
        result = Result(outcome, wrote=outcome is not Outcome.UNCHANGED)
    await ledger.put(parent_after)
    made_here = parent_after.source.made_here  # every link of the account went through us
    for row in rows:
        contact = contacts.get(row.isams_id)
        await _sync_link(
            context,
            row,
            contact if row.isams_id in syncing else None,
            parent_after,
            students.get(row.related_id or ""),
            rules,
            received_at,
            likely_new=made_here,
        )
    return result


def _made_here(outcome: Outcome, base: SyncRecord) -> bool:
    """Tell whether the parent's ManageBac+ account is one this service created (then the
    ledger has seen every link it has); an adopted one may have links of its own."""
    if outcome is Outcome.CREATED:
        return True
    if outcome is Outcome.ADOPTED:
        return False
    return base.source.made_here


async def _sync_link(
    context: SyncContext,
    row: SyncRecord,
    contact: IsamsContact | None,
    parent: SyncRecord,
    student: SyncRecord | None,
    rules: ParentRules,
    received_at: datetime,
    *,
    likely_new: bool,
) -> None:
    """Link, relink or unlink one contact's parent and student; record where it stands."""
    ends = LinkEnds(
        parent_id=parent.managebac_id,
        parent_active=not parent.archived,
        student_id=student.managebac_id if student is not None else None,
        student_active=_active(student),
    )
    decision = decide_link(
        wanted=contact is not None,
        isams_relationship=contact.relationship if contact is not None else None,
        overrides=rules.relationships,
        previous=row.source.link,
        ends=ends,
        not_wanted_reason=_why_not_synced(row, rules) if contact is None else "",
    )
    client, action = context.ports.managebac, decision.action
    if ends.parent_id is not None and ends.student_id is not None:
        if isinstance(action, Link):
            await client.link_child(
                ends.parent_id, ends.student_id, action.relationship, likely_new=likely_new
            )
        elif isinstance(action, Relink):
            await client.relink_child(ends.parent_id, ends.student_id, action.relationship)
        elif isinstance(action, Unlink):
            await client.unlink_child(ends.parent_id, ends.student_id)
    await context.ledger.put(
        replace(
            row,
            status=decision.status,
            managebac_id=ends.parent_id if decision.linked else None,
            reason=decision.reason,
            warnings=decision.warnings,
            source=replace(row.source, link=decision.state),
            last_received_at=received_at,
        )
    )


def _why_not_synced(row: SyncRecord, rules: ParentRules) -> str:
    record = row.source.record
    if not record:
        return REMOVED
    parsed = parse_contact(record)
    if isinstance(parsed, Skip):
        return parsed.reason
    return contact_syncs(parsed, rules) or REMOVED


def _active(student: SyncRecord | None) -> bool:
    return (
        student is not None
        and student.managebac_id is not None
        and student.status is Status.SYNCED
        and not student.archived
    )
