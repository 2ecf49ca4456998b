"""Parents and their links: one ManageBac+ parent per person, linked to each child.

As in the change path (consumers/sync/parents.py), each person's contact records decide
their parent (the representative record, and whether any child is active) and each link
(`decide_link`), but against what ManageBac+ holds now: its links come from the parent list.
Contacts of pupils on roll are the ones iSAMS lists now (a listed contact that vanished is
removed); for other pupils what the ledger remembers stands. Between a managed parent and a
managed student ManageBac+ holds a link exactly when a syncing contact of that person has
that student: a link to a student this service does not manage is left alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import partial

from consumers.capture.drift_users import Subject, reconcile_user
from consumers.capture.plan_report import link_item
from consumers.capture.run_state import End, RunState, refusal, row_changed
from consumers.domain.drift import observed_link
from consumers.domain.isams import IsamsContact, contact_people
from consumers.domain.parents import (
    NO_ACTIVE_CHILD,
    NO_CONTACT,
    ParentRules,
    contact_syncs,
    parse_contact,
    person_key,
    plan_parent,
    representative_contact,
)
from consumers.domain.plan import NoChange, Plan, PushedState
from consumers.domain.records import SyncRecord
from consumers.domain.relationships import (
    LinkAction,
    LinkDecision,
    LinkEnds,
    Unlink,
    decide_link,
)
from consumers.ports import ManagebacRejectedError, Record
from consumers.sync import parents as parent_sync
from consumers.sync.pipeline import by_email
from consumers.sync.writes import applied_version

EXTRA_LINK = "no contact of this person for this student in iSAMS"
UNARCHIVED = "archived in ManageBac+ but a child is active and a contact syncs in iSAMS"


@dataclass(frozen=True, slots=True)
class Seen:
    """One contact record as this run sees it: its pupil, its record (None: removed in
    iSAMS), the ledger's row, and whether iSAMS listed it now."""

    contact_id: str
    student: str
    raw: Record | None
    contact: IsamsContact | None
    row: SyncRecord | None
    fresh: bool


async def reconcile_parents(run: RunState) -> None:
    """Reconcile every person with a contact record, and every parent this service manages."""
    rules = parent_sync.rules_for(run.context)
    people = contacts_by_person(run)
    for row in run.rows_of("parent"):
        if row.managebac_id is not None:
            people.setdefault(row.isams_id, [])
    for person, seen in people.items():
        await _reconcile_person(run, rules, person, seen)


def contacts_by_person(run: RunState) -> dict[str, list[Seen]]:
    """Group every contact record (listed now, or remembered) by the person behind it."""
    rows = {row.isams_id: row for row in run.rows_of("contact")}
    rows_by_student: dict[str | None, list[SyncRecord]] = {}
    for row in rows.values():
        rows_by_student.setdefault(row.related_id, []).append(row)
    seen: dict[str, Seen] = {}
    for student, listed in run.isams.contacts.items():
        if listed is None:
            continue  # iSAMS gave no list: what the ledger remembers stands
        for listed_raw in listed:
            listed_id = str(listed_raw.get("id") or "")
            if not listed_id:
                continue
            # A joint contact is two people, as on the change path (consumers/sync/parents.py).
            for contact_id, raw in contact_people(listed_id, listed_raw):
                parsed = parse_contact(raw)
                contact = parsed if isinstance(parsed, IsamsContact) else None
                record = raw if contact is not None else None
                seen[contact_id] = Seen(
                    contact_id, student, record, contact, rows.get(contact_id), True
                )
        for row in rows_by_student.get(student, []):
            if row.isams_id not in seen:
                seen[row.isams_id] = Seen(row.isams_id, student, None, None, row, True)
    for row in rows.values():
        if row.isams_id not in seen:
            remembered = dict(row.source.record) if row.source.record else None
            old = parse_contact(remembered) if remembered else None
            contact = old if isinstance(old, IsamsContact) else None
            seen[row.isams_id] = Seen(
                row.isams_id, row.related_id or "", remembered, contact, row, False
            )
    people: dict[str, list[Seen]] = defaultdict(list)
    for one in seen.values():
        person = person_key(one.contact) if one.contact is not None else None
        person = person or (one.row.person_key if one.row is not None else None)
        if person is not None:
            people[person].append(one)
    return dict(people)


async def _reconcile_person(
    run: RunState, rules: ParentRules, person: str, seen: list[Seen]
) -> None:
    contacts = [one.contact for one in seen if one.contact is not None]
    syncing = {
        one.contact_id
        for one in seen
        if one.contact is not None and contact_syncs(one.contact, rules) is None
    }
    has_active_child = any(
        run.student(one.student).active for one in seen if one.contact_id in syncing
    )
    representative = representative_contact(contacts, rules)

    def plan(previous: PushedState | None) -> Plan:
        return plan_parent(representative, rules, previous, has_active_child)

    parent = await reconcile_user(
        run,
        Subject(
            kind="parent",
            shown="parent",
            resource="parents",
            isams_id=person,
            plan=plan,
            match_key="email",
            in_scope=any(rules.syncs_type(contact.contact_type) for contact in contacts),
            gone=NO_CONTACT if representative is None else NO_ACTIVE_CHILD,
            find_existing=partial(by_email, "parents", run.ports.managebac),
            unarchived=UNARCHIVED,
            archive_reason=parent_sync.PARENT_ARCHIVED,
        ),
    )
    if parent.created and parent.managebac_id is not None:
        run.holdings.new_parent(parent.managebac_id)
    await _reconcile_links(run, rules, person, seen, syncing, parent)


async def _reconcile_links(
    run: RunState,
    rules: ParentRules,
    person: str,
    seen: Iterable[Seen],
    syncing: set[str],
    parent: End,
) -> None:
    """Decide each of the person's links, then unlink what no contact of theirs explains."""
    links = (
        await run.holdings.links(parent.managebac_id) if parent.managebac_id is not None else None
    )
    by_student: dict[str, list[Seen]] = defaultdict(list)
    for one in seen:
        by_student[one.student].append(one)
    covered: set[int] = set()
    for student, records in by_student.items():
        # One link per parent and student: a syncing record decides it (lowest id first).
        records.sort(key=lambda one: (one.contact_id not in syncing, _id_order(one.contact_id)))
        chosen = records[0]
        end = run.student(student)
        if end.managebac_id is not None:
            covered.add(end.managebac_id)
        wanted = chosen.contact_id in syncing
        remembered = chosen.row.source.link if chosen.row is not None else None
        previous = observed_link(links, end.managebac_id, remembered)
        decision = decide_link(
            wanted=wanted,
            isams_relationship=chosen.contact.relationship
            if wanted and chosen.contact is not None
            else None,
            overrides=rules.relationships,
            previous=previous,
            ends=LinkEnds(parent.managebac_id, parent.active, end.managebac_id, end.active),
            not_wanted_reason=_why_not(chosen, rules),
        )
        before = previous.relationship if previous is not None and previous.linked else None
        written = await _write_link(
            run, person, student, decision.action, before, parent, end.managebac_id
        )
        if written:
            for one in records:
                await _record_contact(run, one, person, decision, parent.managebac_id)
    if links is None or parent.managebac_id is None:
        return
    students = {
        managebac_id: managed.isams_id for managebac_id, managed in run.managed["students"].items()
    }
    for child_id, relationship in sorted(links.items()):
        if child_id in covered or child_id not in students:
            continue  # explained by a contact, or a student this service does not manage
        await _write_link(
            run, person, students[child_id], Unlink(), relationship, parent, child_id, EXTRA_LINK
        )


async def _write_link(
    run: RunState,
    person: str,
    student: str,
    action: LinkAction,
    before: str | None,
    parent: End,
    student_id: int | None,
    reason: str | None = None,
) -> bool:
    """List and make one link's write; False when ManageBac+ refused it."""
    shown = f"{person} → {student}"
    item = link_item(shown, action, before, parent.managebac_id, reason)
    if item is None or parent.managebac_id is None or student_id is None:
        if item is None and isinstance(action, NoChange) and before is not None:
            run.plan.add(None, "link")  # linked as it should be
        return True
    try:
        await run.applier.link(action, parent.managebac_id, student_id)
    except ManagebacRejectedError as exc:
        run.plan.add(replace(item, error=refusal(exc)), "link")
        return False
    run.plan.add(item, "link")
    return True


async def _record_contact(
    run: RunState, one: Seen, person: str, decision: LinkDecision, parent_id: int | None
) -> None:
    """Bring the contact's row in line: its record (as iSAMS has it now) and its link."""
    if run.applier.dry_run:
        return
    base = await run.base_row("contact", one.contact_id)
    record = one.raw if one.fresh else base.source.record
    version = one.contact.last_updated if one.fresh and one.contact is not None else None
    after = replace(
        base,
        related_id=one.student or base.related_id,
        person_key=person,
        status=decision.status,
        managebac_id=parent_id if decision.linked else None,
        reason=decision.reason,
        warnings=decision.warnings,
        source=replace(base.source, record=record, link=decision.state),
        source_updated_at=applied_version(version, base),
    )
    if row_changed(base, after):
        await run.applier.record(replace(after, last_received_at=run.now))


def _why_not(one: Seen, rules: ParentRules) -> str:
    if one.contact is None:
        return parent_sync.REMOVED
    return contact_syncs(one.contact, rules) or parent_sync.REMOVED


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isascii() and value.isdigit() else (1 << 62, value)
