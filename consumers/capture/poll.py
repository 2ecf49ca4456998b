"""One poll cycle of one school: read iSAMS's lists, publish what changed, guard removals.

iSAMS pushes nothing, so the poller reads `/api/students` (with the ISO expansions),
`/api/alumni`, `/api/students/contacts` (paged, with `countryIsoMappings`, deceased ones
too) and `/api/humanresources/employees`, hashes every record as iSAMS returned it and
compares with the hash it last published (docs/design.md §6). A new or changed record goes
on `isams.changes` as a fat `*.updated` event; a pupil who moved to the alumni goes with
their alumni record (their `leavingDate`): a leaver, explained. What vanished is sorted and
guarded by `consumers.domain.removals`, and published as `*.deleted` when the guard allows.

A record's hash is stored only after Kafka acknowledged its event, one batch at a time, so
a poller stopped or killed mid-cycle republishes at worst, and never misses a change. A
stop request ends the cycle before another page is read: what was read and changed is
published and stored first. Held removals keep their hash, so they are judged again next
cycle. Each list's state (read, blocked with iSAMS's message, removals held) is written as
a `poll` row of the ledger, one per list, which `isams-sync explain` shows.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from consumers.capture.poll_report import Change, ListFailure, PollReport, Refusal
from consumers.domain.changes import PolledHash, record_hash
from consumers.domain.isams import is_current_status
from consumers.domain.records import Status, SyncRecord
from consumers.domain.removals import (
    POLL_LISTS,
    Held,
    Kind,
    Known,
    Listing,
    PollList,
    Removals,
    find_removals,
    judge_removals,
)
from consumers.events import ChangeEvent, to_message
from consumers.ports import (
    IsamsAuthError,
    IsamsError,
    IsamsForbiddenError,
    IsamsListNotFoundError,
    IsamsPort,
    IsamsThrottledError,
    IsamsUnavailableError,
    PublisherPort,
    PublishError,
    Record,
)
from consumers.settings import Topics

log = logging.getLogger(__name__)

RUN_KIND = "poll"
BATCH = 200
# Each removal the guard lets through is read once more on its own (a pupil from
# /api/students/{id}, then /api/alumni/{id}), so a record a shifting page skipped is not
# taken for gone; past this many per kind and cycle the listing's word is taken.
CONFIRM_LIMIT = 50
KINDS: tuple[Kind, ...] = ("student", "contact", "staff")

StopRequested = Callable[[], bool]


def _never() -> bool:
    return False


class _StopRequestedError(Exception):
    """A stop was asked for: the cycle ends after what it already read."""


@dataclass
class _Batch:
    """Changes of one kind waiting to be published, and the hashes to store once acked."""

    kind: Kind
    events: list[ChangeEvent] = field(default_factory=list)
    hashes: dict[str, PolledHash | None] = field(default_factory=dict)
    counts: Counter[tuple[PollList, Change]] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.hashes)


class PollLedger(Protocol):
    """What a poll cycle needs of the ledger (the `LedgerPort` has it all)."""

    async def poll_hashes(self, school: str, kind: str) -> dict[str, PolledHash]: ...

    async def store_poll_hashes(
        self, school: str, kind: str, hashes: Mapping[str, PolledHash | None]
    ) -> None: ...

    async def records(self, school: str, kind: str | None = None) -> list[SyncRecord]: ...

    async def put(self, record: SyncRecord) -> None: ...


async def poll_school(
    school: str,
    isams: IsamsPort,
    ledger: PollLedger,
    publisher: PublisherPort,
    topics: Topics,
    *,
    force: bool = False,
    stop: StopRequested = _never,
) -> PollReport:
    """Run one cycle for one school and say what it did. iSAMS's refusals and Kafka's
    failures end up in the report (they are the school's state); only the ledger's own
    failures are raised."""
    cycle = _Cycle(school, isams, ledger, publisher, topics, force, stop)
    return await cycle.run()


class _Cycle:
    """The state of one running cycle."""

    def __init__(
        self,
        school: str,
        isams: IsamsPort,
        ledger: PollLedger,
        publisher: PublisherPort,
        topics: Topics,
        force: bool,
        stop: StopRequested,
    ) -> None:
        self.school = school
        self.isams = isams
        self.ledger = ledger
        self.publisher = publisher
        self.topics = topics
        self.force = force
        self.stop = stop
        self.now = datetime.now(UTC)
        self.run_id = self.now.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.webhook_id = f"poll-{self.run_id}"
        self.known: dict[Kind, dict[str, PolledHash]] = {}
        self.listed: dict[PollList, set[str]] = {name: set() for name in POLL_LISTS}
        self.read: Counter[PollList] = Counter()
        self.failed: dict[PollList, ListFailure] = {}
        self.published: Counter[tuple[PollList, Change]] = Counter()
        self.held: list[Held] = []
        self.guard_reasons: list[str] = []
        self.guard_held = False
        self.skipped = 0
        self.retry_after: float | None = None
        self.lane = topics.changes

    async def run(self) -> PollReport:
        started = time.monotonic()
        requests_before = self.isams.requests_sent
        stopped, error = False, None
        try:
            for kind in KINDS:
                self.known[kind] = await self.ledger.poll_hashes(self.school, kind)
            # A school's first cycle is a first sync: its many changes go to the bulk lane,
            # so that live edits (webhooks, other schools) keep their latency meanwhile.
            self.lane = self.topics.changes if any(self.known.values()) else self.topics.bulk
            await self._read_lists()
            await self._remove()
            await self._record_states()
        except _StopRequestedError:
            stopped = True
        except _PublishFailedError as exc:
            error = str(exc)
        return PollReport(
            school=self.school,
            run_id=self.run_id,
            forced=self.force,
            read=dict(self.read),
            failed=dict(self.failed),
            published=dict(self.published),
            held=tuple(self.held),
            guard_held=self.guard_held,
            guard_reasons=tuple(self.guard_reasons),
            stopped=stopped,
            error=error,
            isams_requests=self.isams.requests_sent - requests_before,
            seconds=time.monotonic() - started,
            retry_after=self.retry_after,
            skipped=self.skipped,
        )

    # --- reading the lists ------------------------------------------------------------

    async def _read_lists(self) -> None:
        await self._read("students", "student", self.isams.all_students(), _pupil_id)
        await self._read("alumni", "student", self.isams.all_alumni(), _pupil_id)
        await self._read("contacts", "contact", self.isams.all_contacts(), _plain_id)
        await self._read("employees", "staff", self.isams.all_employees(), _plain_id)

    async def _read(
        self,
        name: PollList,
        kind: Kind,
        records: AsyncIterator[Record],
        key_of: Callable[[Record], str | None],
    ) -> None:
        """Read one list whole, publishing its new and changed records batch by batch."""
        if self.stop():
            await _close(records)
            raise _StopRequestedError
        if self.retry_after is not None:  # throttled: spend no more requests this cycle
            await _close(records)
            self.failed[name] = self.failed[_throttled_list(self.failed)]
            return
        batch = _Batch(kind)
        try:
            async for record in records:
                self.read[name] += 1
                self._consider(name, batch, record, key_of(record))
                if len(batch) >= BATCH:
                    await self._flush(batch)
                    batch = _Batch(kind)
                if self.stop():
                    await self._flush(batch)
                    raise _StopRequestedError
        except IsamsError as exc:
            self.failed[name] = _failure(exc)
            if isinstance(exc, IsamsThrottledError):
                self.retry_after = exc.retry_after
            log.warning(
                "iSAMS list not read",
                extra={"school": self.school, "list": name, "refusal": self.failed[name].refusal},
            )
        finally:
            await _close(records)
        await self._flush(batch)

    def _consider(
        self, name: PollList, batch: _Batch, record: Record, isams_id: str | None
    ) -> None:
        """Queue the record's event when it is new or changed since last published."""
        if isams_id is None:
            self.skipped += 1
            return
        if name == "alumni" and isams_id in self.listed["students"]:
            return  # on both lists while iSAMS moves them: the current record wins
        if isams_id in self.listed[name]:
            return  # seen on an earlier page already (the list shifted under the paging)
        self.listed[name].add(isams_id)
        related = _text(record.get("schoolId")) if batch.kind == "contact" else None
        polled = PolledHash(record_hash(record), related)
        before = self.known[batch.kind].get(isams_id)
        if before == polled:
            return
        event = _event(batch.kind, "updated", isams_id, record, related, self.now)
        if event is None:
            self.skipped += 1
            return
        batch.events.append(event)
        batch.hashes[isams_id] = polled
        batch.counts[(name, "new" if before is None else "changed")] += 1

    async def _flush(self, batch: _Batch) -> None:
        """Publish a batch; only once Kafka has it, store its hashes and count it."""
        if not batch.hashes:
            return
        if batch.events:
            messages = [to_message(e, self.school, self.webhook_id, self.now) for e in batch.events]
            try:
                await self.publisher.publish(self.lane, messages)
            except PublishError as exc:  # nothing of the batch is stored: published again
                raise _PublishFailedError(f"Kafka did not acknowledge a batch: {exc}") from exc
        await self.ledger.store_poll_hashes(self.school, batch.kind, batch.hashes)
        known = self.known[batch.kind]
        for isams_id, polled in batch.hashes.items():
            if polled is None:
                known.pop(isams_id, None)
            else:
                known[isams_id] = polled
        self.published.update(batch.counts)

    # --- removals -------------------------------------------------------------------

    async def _remove(self) -> None:
        known_contacts = self.known["contact"]
        removals = find_removals(
            Known(
                students=list(self.known["student"]),
                staff=list(self.known["staff"]),
                contacts={i: polled.related_id for i, polled in known_contacts.items()},
            ),
            Listing(
                students=self.listed["students"],
                alumni=self.listed["alumni"],
                contacts=self.listed["contacts"],
                employees=self.listed["employees"],
                failed={name: failure.message for name, failure in self.failed.items()},
            ),
        )
        self.held.extend(removals.unjudged)
        synced = await self._synced_people() if removals.students or removals.staff else set()
        verdicts = judge_removals(removals, synced, len(known_contacts), self.force)
        await self._forget("contact", removals.following_leavers)
        if removals.students or removals.staff:
            if verdicts.people.allowed:
                await self._remove_people(removals)
            else:
                self._hold("students", removals.students, verdicts.people.reason)
                self._hold("employees", removals.staff, verdicts.people.reason)
        if removals.contacts:
            if verdicts.contacts.allowed:
                await self._remove_contacts(removals.contacts)
            else:
                self._hold("contacts", [i for i, _ in removals.contacts], verdicts.contacts.reason)

    def _hold(self, name: PollList, ids: Sequence[str], reason: str) -> None:
        if ids:
            self.held.append(Held(name, tuple(ids), reason))
            self.guard_held = True
            if reason not in self.guard_reasons:
                self.guard_reasons.append(reason)

    async def _synced_people(self) -> set[tuple[Kind, str]]:
        """Return the school's students and staff in ManageBac+ (what a removal archives)."""
        synced: set[tuple[Kind, str]] = set()
        for kind in ("student", "staff"):
            for row in await self.ledger.records(self.school, kind):
                if row.active_in_managebac:
                    synced.add((kind, row.isams_id))
        return synced

    async def _remove_people(self, removals: Removals) -> None:
        gone, left = _Batch("student"), _Batch("student")
        for number, school_id in enumerate(removals.students):
            found = await self._confirm_pupil(school_id, number)
            if isinstance(found, dict):  # not current, so a leaver after all: their record
                self._queue(left, "alumni", "changed", school_id, found)
            elif found is _GONE:
                self._queue(gone, "students", "deleted", school_id, None)
        await self._flush(left)
        await self._flush(gone)
        followers = [c for pupil in gone.hashes for c in removals.following_removed.get(pupil, ())]
        await self._forget("contact", followers)
        staff = _Batch("staff")
        for number, employee_id in enumerate(removals.staff):
            if await self._confirm_employee(employee_id, number) is _GONE:
                self._queue(staff, "employees", "deleted", employee_id, None)
        await self._flush(staff)

    async def _confirm_pupil(self, school_id: str, number: int) -> Record | object:
        """Read a pupil on their own (`/api/students/{id}`, then `/api/alumni/{id}`): `_GONE`
        when iSAMS has neither, their record when they left, `_KEEP` when they are current
        (a shifting page skipped them) or iSAMS could not say (judged again next cycle)."""
        if number >= CONFIRM_LIMIT:
            return _GONE
        try:
            found = await self.isams.student(school_id)
        except IsamsError:
            return _KEEP
        if found is None:
            return _GONE
        return _KEEP if is_current_status(_text(found.get("systemStatus"))) else found

    async def _confirm_employee(self, employee_id: str, number: int) -> object:
        """Read a member of staff on their own: `_GONE` when iSAMS has no such record."""
        if number >= CONFIRM_LIMIT:
            return _GONE
        try:
            found = await self.isams.employee(employee_id)
        except IsamsError:
            return _KEEP
        return _GONE if found is None else _KEEP

    async def _remove_contacts(self, contacts: tuple[tuple[str, str | None], ...]) -> None:
        batch = _Batch("contact")
        listed_of: dict[str, set[str] | None] = {}
        for number, (contact_id, student) in enumerate(contacts):
            if student is not None and number < CONFIRM_LIMIT:
                if student not in listed_of:
                    listed_of[student] = await self._contacts_of(student)
                still = listed_of[student]
                if still is None or contact_id in still:
                    continue  # not confirmed gone (or not readable): judged again next cycle
            self._queue(batch, "contacts", "deleted", contact_id, None, related=student)
        await self._flush(batch)

    async def _contacts_of(self, student: str) -> set[str] | None:
        """Return the ids of one pupil's contacts as iSAMS lists them now (none when iSAMS
        no longer has the pupil); None when it could not be read."""
        try:
            contacts = await self.isams.student_contacts(student)
        except IsamsError:
            return None
        return {str(c.get("id")) for c in contacts or ()}

    def _queue(
        self,
        batch: _Batch,
        name: PollList,
        change: Change,
        isams_id: str,
        record: Record | None,
        related: str | None = None,
    ) -> None:
        action = "deleted" if record is None else "updated"
        event = _event(batch.kind, action, isams_id, record, related, self.now)
        if event is None:
            self.skipped += 1
            return
        batch.events.append(event)
        batch.hashes[isams_id] = None if record is None else PolledHash(record_hash(record))
        batch.counts[(name, change)] += 1

    async def _forget(self, kind: Kind, ids: Sequence[str]) -> None:
        if ids:
            batch = _Batch(kind)
            batch.hashes = dict.fromkeys(ids)
            await self._flush(batch)

    # --- the ledger's poll rows -------------------------------------------------------

    async def _record_states(self) -> None:
        """Write each list's state as a `poll` row: read, blocked (why), removals held."""
        for name in POLL_LISTS:
            failure = self.failed.get(name)
            held = [h for h in self.held if h.list == name]
            if failure is not None:
                status = Status.FAILED
                reason = f"blocked: iSAMS refused the list ({failure.refusal}): {failure.message}"
            elif held:
                status = Status.PENDING
                reason = "; ".join(f"{len(h.ids)} removal(s) held: {h.reason}" for h in held)
            else:
                status = Status.SYNCED
                reason = f"read {self.read[name]} record(s) in poll {self.run_id}"
            await self.ledger.put(
                SyncRecord(
                    school=self.school,
                    kind=RUN_KIND,
                    isams_id=name,
                    status=status,
                    reason=reason,
                    last_applied_at=datetime.now(UTC),
                )
            )


class _PublishFailedError(Exception):
    """Kafka did not acknowledge a batch: the cycle ends, nothing of the batch is stored."""


_GONE = object()  # iSAMS confirms the record is gone
_KEEP = object()  # iSAMS has it after all, or could not say: nothing changes this cycle


def _failure(exc: IsamsError) -> ListFailure:
    refusal: Refusal
    if isinstance(exc, IsamsForbiddenError):
        refusal = "forbidden"
    elif isinstance(exc, IsamsListNotFoundError):
        refusal = "not_found"
    elif isinstance(exc, IsamsThrottledError):
        refusal = "throttled"
    elif isinstance(exc, IsamsUnavailableError):
        refusal = "unavailable"
    elif isinstance(exc, IsamsAuthError):
        refusal = "auth"
    else:
        refusal = "error"
    return ListFailure(refusal, str(exc))


def _throttled_list(failed: Mapping[PollList, ListFailure]) -> PollList:
    return next(name for name, failure in failed.items() if failure.refusal == "throttled")


async def _close(records: AsyncIterator[Record]) -> None:
    """Close an abandoned list (an async generator), so it sends no further request."""
    close = getattr(records, "aclose", None)
    if close is not None:
        await close()


def _event(
    kind: Kind,
    action: str,
    isams_id: str,
    record: Record | None,
    related: str | None,
    now: datetime,
) -> ChangeEvent | None:
    """Build the record's event, or None when its ids cannot make one (logged, skipped)."""
    data: dict[str, Any]
    if kind == "student":
        data = {"schoolId": isams_id}
    elif kind == "contact":
        data = {"id": isams_id, "schoolId": related}
    else:
        data = {"id": isams_id}
    if record is not None:
        data["record"] = record
    try:
        return ChangeEvent.model_validate(
            {"type": f"{kind}.{action}", "timestamp": now, "data": data}
        )
    except ValidationError:
        log.warning(
            "record skipped: its ids make no event", extra={"kind": kind, "id": isams_id[:64]}
        )
        return None


def _pupil_id(record: Record) -> str | None:
    return _id(record.get("schoolId"))


def _plain_id(record: Record) -> str | None:
    return _id(record.get("id"))


def _id(value: object) -> str | None:
    """Return an id as text (iSAMS sends contact and employee ids as integers)."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip() if isinstance(value, str | int) else ""
    return text or None


def _text(value: object) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    return None
