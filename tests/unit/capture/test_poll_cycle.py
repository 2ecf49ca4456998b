"""The poll cycle's decisions (docs/design.md §6), on small fakes: what it publishes for new,
changed, leaving and vanished records, what the guard holds, and what a refused list, a
stop or a Kafka failure leave behind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from consumers.capture.poll import BATCH, poll_school
from consumers.capture.poll_report import PollReport
from consumers.domain.records import Status, SyncRecord
from consumers.events import QueuedChange
from consumers.ports import (
    IsamsForbiddenError,
    IsamsListNotFoundError,
    IsamsThrottledError,
)
from consumers.settings import Topics
from tests.unit.capture.poll_fakes import PollIsams, PollLedger, PollPublisher

SCHOOL = "poll-school"
TOPICS = Topics.with_prefix("unit.")
NOT_AUTHORISED = "The user is not authorised for this request"


class Poller:
    """One school's iSAMS, ledger and Kafka, and a way to run a cycle over them."""

    def __init__(self) -> None:
        self.isams = PollIsams()
        self.ledger = PollLedger()
        self.kafka = PollPublisher()

    async def cycle(
        self, force: bool = False, stop: Callable[[], bool] = lambda: False
    ) -> PollReport:
        return await poll_school(
            SCHOOL, self.isams, self.ledger, self.kafka, TOPICS, force=force, stop=stop
        )

    def synced(self, kind: str, *ids: str) -> None:
        """Say ManageBac+ has these records (as the consumer would have recorded)."""
        for number, isams_id in enumerate(ids, start=len(self.ledger.rows) + 1):
            self.ledger.rows[(SCHOOL, kind, isams_id)] = SyncRecord(
                school=SCHOOL,
                kind=kind,
                isams_id=isams_id,
                status=Status.SYNCED,
                managebac_id=10_000_000 + number,
            )


def published(changes: list[QueuedChange]) -> set[tuple[str, str]]:
    return {(c.type, c.event.record_id) for c in changes}


@pytest.fixture
def poller() -> Poller:
    school = Poller()
    for number in range(1, 11):
        school.isams.add_student(f"S{number}", yearGroup=7)
        school.isams.add_contact(100 + number, f"S{number}", forename="m")
    school.isams.add_contact(111, "S1", forename="f")  # S1 has two: 11 contacts
    school.isams.add_employee(7)
    school.isams.add_employee(8)
    school.isams.alumni["S0"] = {"schoolId": "S0", "systemStatus": "Leaver"}
    return school


async def settled(poller: Poller) -> None:
    """Run the first cycle and forget what it published."""
    report = await poller.cycle()
    assert report.ok, report.summary()
    poller.kafka.take()


# --- what changed ---------------------------------------------------------------------------


async def test_a_first_cycle_publishes_every_record_fat_and_a_second_nothing(
    poller: Poller,
) -> None:
    report = await poller.cycle()

    changes = poller.kafka.take()
    expected = {("student.updated", f"S{n}") for n in range(0, 11)}
    expected |= {("contact.updated", str(i)) for i in range(101, 112)}
    expected |= {("staff.updated", i) for i in ("7", "8")}
    assert published(changes) == expected
    assert all(c.data.record is not None for c in changes)
    assert report.published == {
        ("students", "new"): 10,
        ("alumni", "new"): 1,
        ("contacts", "new"): 11,
        ("employees", "new"): 2,
    }
    assert report.ok and not report.held

    again = await poller.cycle()
    assert poller.kafka.take() == []
    assert again.published == {}
    assert again.read == {"students": 10, "alumni": 1, "contacts": 11, "employees": 2}


async def test_a_contact_event_names_its_student_and_integer_ids_become_text(
    poller: Poller,
) -> None:
    await poller.cycle()
    (contact,) = [c for c in poller.kafka.take() if c.event.record_id == "102"]
    assert contact.type == "contact.updated"
    assert (contact.data.id, contact.data.schoolId) == ("102", "S2")
    assert contact.data.record == poller.isams.contacts[102]  # as iSAMS returned it
    assert contact.key == f"{SCHOOL}:contact:102"
    assert contact.webhook_id.startswith("poll-")


async def test_a_created_and_an_updated_record_are_published_with_their_record(
    poller: Poller,
) -> None:
    await settled(poller)
    poller.isams.add_student("S11", yearGroup=8)
    poller.isams.students["S3"]["forename"] = "changed"
    poller.isams.employees[8]["schoolEmailAddress"] = "new@school.example"  # no lastUpdated

    report = await poller.cycle()

    changes = {c.event.record_id: c for c in poller.kafka.take()}
    assert set(changes) == {"S11", "S3", "8"}
    assert changes["S3"].data.record is not None
    assert changes["S3"].data.record["forename"] == "changed"
    assert report.published == {
        ("students", "new"): 1,
        ("students", "changed"): 1,
        ("employees", "changed"): 1,
    }


async def test_the_same_content_in_another_key_order_is_no_change(poller: Poller) -> None:
    await settled(poller)
    record = poller.isams.students["S4"]
    poller.isams.students["S4"] = dict(reversed(list(record.items())))

    await poller.cycle()

    assert poller.kafka.take() == []


async def test_a_leaver_is_published_with_the_alumni_record_and_their_contacts_follow(
    poller: Poller,
) -> None:
    await settled(poller)
    alumnus = poller.isams.leave("S1", on="2026-07-10T00:00:00")
    del poller.isams.contacts[101], poller.isams.contacts[111]  # listed under current pupils

    report = await poller.cycle()

    (change,) = poller.kafka.take()
    assert (change.type, change.event.record_id) == ("student.updated", "S1")
    assert change.data.record == alumnus
    assert change.data.record["leavingDate"] == "2026-07-10T00:00:00"
    assert report.published == {("alumni", "changed"): 1}
    assert not report.held  # explained: no guard, no --force
    contacts = set(await poller.ledger.poll_hashes(SCHOOL, "contact"))
    assert contacts == {str(i) for i in range(102, 111)}


async def test_a_pupil_in_neither_list_is_deleted_and_their_contacts_follow(
    poller: Poller,
) -> None:
    await settled(poller)
    del poller.isams.students["S2"], poller.isams.contacts[102]

    report = await poller.cycle()

    assert published(poller.kafka.take()) == {("student.deleted", "S2")}
    assert report.published == {("students", "deleted"): 1}
    assert "S2" not in await poller.ledger.poll_hashes(SCHOOL, "student")
    assert "102" not in await poller.ledger.poll_hashes(SCHOOL, "contact")

    await poller.cycle()
    assert poller.kafka.take() == []  # published once


async def test_a_pupil_a_page_skipped_is_read_on_their_own_and_kept(poller: Poller) -> None:
    await settled(poller)
    hidden = poller.isams.students.pop("S5")
    original = poller.isams.student

    async def still_there(school_id: str) -> dict[str, object] | None:
        return hidden if school_id == "S5" else await original(school_id)

    poller.isams.student = still_there  # type: ignore[method-assign]  # iSAMS's own read

    await poller.cycle()

    assert poller.kafka.take() == []
    assert "S5" in await poller.ledger.poll_hashes(SCHOOL, "student")


async def test_a_removed_contact_and_a_removed_employee_are_deleted(poller: Poller) -> None:
    await settled(poller)
    del poller.isams.contacts[111], poller.isams.employees[8]

    report = await poller.cycle()

    changes = {c.event.record_id: c for c in poller.kafka.take()}
    assert {(c.type, i) for i, c in changes.items()} == {
        ("contact.deleted", "111"),
        ("staff.deleted", "8"),
    }
    assert changes["111"].data.schoolId == "S1"  # the consumer unlinks from this pupil
    assert report.published == {("contacts", "deleted"): 1, ("employees", "deleted"): 1}


# --- the removals guard ---------------------------------------------------------------------


async def test_an_emptied_export_is_held_until_forced_and_released_once(poller: Poller) -> None:
    await settled(poller)
    poller.synced("student", *(f"S{n}" for n in range(1, 11)))
    poller.synced("staff", "7", "8")
    for number in range(1, 6):  # half the pupils gone, with their contacts
        del poller.isams.students[f"S{number}"], poller.isams.contacts[100 + number]
    del poller.isams.contacts[111]

    held = await poller.cycle()

    assert poller.kafka.take() == []
    assert held.guard_held
    assert held.held_on("students") == 5
    assert "5 of 12 synced users" in held.guard_reasons[0]
    assert "--force" in held.guard_reasons[0]
    row = poller.ledger.row(SCHOOL, "poll", "students")
    assert row.status is Status.PENDING and row.reason is not None and "--force" in row.reason
    hashes = await poller.ledger.poll_hashes(SCHOOL, "student")
    assert {f"S{n}" for n in range(1, 6)} <= set(hashes)  # the old hashes are kept

    still = await poller.cycle()  # judged again: still held
    assert poller.kafka.take() == [] and still.guard_held

    forced = await poller.cycle(force=True)
    assert published(poller.kafka.take()) == {("student.deleted", f"S{n}") for n in range(1, 6)}
    assert not forced.guard_held
    assert poller.ledger.row(SCHOOL, "poll", "students").status is Status.SYNCED
    contacts = set(await poller.ledger.poll_hashes(SCHOOL, "contact"))
    assert contacts == {str(i) for i in range(106, 111)}  # the removed pupils' ones followed

    after = await poller.cycle()  # released once: nothing more to hold or publish
    assert poller.kafka.take() == [] and not after.held


async def test_a_held_removal_that_comes_back_publishes_nothing(poller: Poller) -> None:
    await settled(poller)
    poller.synced("student", *(f"S{n}" for n in range(1, 11)))
    removed = {n: poller.isams.students.pop(f"S{n}") for n in range(1, 4)}
    assert (await poller.cycle()).guard_held

    poller.isams.students.update({f"S{n}": r for n, r in removed.items()})
    report = await poller.cycle()

    assert poller.kafka.take() == []
    assert not report.held


async def test_removals_within_ten_percent_flow_without_force(poller: Poller) -> None:
    await settled(poller)
    poller.synced("student", *(f"S{n}" for n in range(1, 11)))
    del poller.isams.students["S10"]

    report = await poller.cycle()

    assert published(poller.kafka.take()) == {("student.deleted", "S10")}
    assert not report.guard_held


async def test_an_emptied_contact_list_is_held_while_pupils_stay(poller: Poller) -> None:
    await settled(poller)
    poller.isams.contacts.clear()

    report = await poller.cycle()

    assert poller.kafka.take() == []
    assert report.guard_held and report.held_on("contacts") == 11
    assert "contacts known to the poller" in report.guard_reasons[0]


# --- refused lists --------------------------------------------------------------------------


async def test_a_403_on_contacts_holds_their_removals_while_pupils_flow(poller: Poller) -> None:
    await settled(poller)
    poller.isams.refusals["contacts"] = IsamsForbiddenError(
        "/api/students/contacts", NOT_AUTHORISED
    )
    poller.isams.students["S6"]["forename"] = "changed"
    poller.isams.add_employee(9)

    report = await poller.cycle()

    assert published(poller.kafka.take()) == {("student.updated", "S6"), ("staff.updated", "9")}
    assert report.failed["contacts"].refusal == "forbidden"
    assert report.held_on("contacts") == 11  # every known contact: none judged
    assert not report.guard_held and not report.ok
    row = poller.ledger.row(SCHOOL, "poll", "contacts")
    assert row.status is Status.FAILED
    assert row.reason is not None and NOT_AUTHORISED in row.reason
    assert poller.ledger.row(SCHOOL, "poll", "students").status is Status.SYNCED
    assert len(await poller.ledger.poll_hashes(SCHOOL, "contact")) == 11


async def test_a_404_on_the_alumni_list_holds_missing_pupils_rather_than_delete(
    poller: Poller,
) -> None:
    await settled(poller)
    poller.isams.refusals["alumni"] = IsamsListNotFoundError("/api/alumni", "not found")
    poller.isams.leave("S3")

    report = await poller.cycle()

    assert poller.kafka.take() == []
    (held,) = report.held  # S3 left, S0 left long ago: neither can be told from removed
    assert (held.list, held.ids) == ("students", ("S0", "S3"))
    assert "/api/alumni could not be read" in held.reason
    assert poller.ledger.row(SCHOOL, "poll", "alumni").status is Status.FAILED


async def test_a_throttled_key_reads_no_further_list_this_cycle(poller: Poller) -> None:
    await settled(poller)
    poller.isams.refusals["students"] = IsamsThrottledError("throttled (429)", retry_after=900)
    poller.isams.pages_read.clear()

    report = await poller.cycle()

    assert poller.isams.pages_read == ["students"]
    assert report.retry_after == 900
    assert set(report.failed) == {"students", "alumni", "contacts", "employees"}
    assert poller.kafka.take() == []


# --- stops and failures ---------------------------------------------------------------------


async def test_a_stop_publishes_what_was_read_then_a_restart_misses_nothing(
    poller: Poller,
) -> None:
    # A stop asked for once the second page of pupils is read (in the middle of it).
    stopped = await poller.cycle(stop=lambda: poller.isams.pages_read.count("students") >= 2)

    assert stopped.stopped and not stopped.ok
    first = published(poller.kafka.take())
    assert first == {("student.updated", f"S{n}") for n in range(1, 4)}
    assert set(await poller.ledger.poll_hashes(SCHOOL, "student")) == {"S1", "S2", "S3"}
    assert (SCHOOL, "poll", "students") not in poller.ledger.rows  # no state from half a cycle

    resumed = await poller.cycle()

    second = published(poller.kafka.take())
    assert not first & second  # nothing republished
    assert len(first | second) == 24  # nothing missed
    assert resumed.ok


async def test_a_stop_asked_for_between_lists_reads_no_further_page(poller: Poller) -> None:
    report = await poller.cycle(stop=lambda: "alumni" in poller.isams.pages_read)

    assert report.stopped
    assert poller.isams.pages_read.count("contacts") == 0
    assert poller.isams.pages_read.count("employees") == 0


async def test_hashes_are_stored_only_once_kafka_acknowledged(poller: Poller) -> None:
    poller.kafka.failing = True

    report = await poller.cycle()

    assert report.error is not None and "Kafka" in report.error
    assert await poller.ledger.poll_hashes(SCHOOL, "student") == {}
    poller.kafka.failing = False
    await poller.cycle()
    assert len(poller.kafka.take()) == 24


async def test_a_large_list_is_published_in_batches(poller: Poller) -> None:
    for number in range(100, 100 + BATCH + 5):
        poller.isams.add_student(f"S{number}")

    report = await poller.cycle()

    assert report.published[("students", "new")] == 10 + BATCH + 5
    student_writes = poller.ledger.hash_writes
    assert student_writes >= 5  # at least two for students, one for each other list


async def test_a_record_without_an_id_is_skipped_and_counted(poller: Poller) -> None:
    poller.isams.students["?"] = {"forename": "no id", "systemStatus": "Current"}

    report = await poller.cycle()

    assert report.skipped == 1
    assert "without usable ids" in report.summary()


async def test_the_summary_names_lists_and_counts_only(poller: Poller) -> None:
    poller.isams.students["S1"]["surname"] = "Private-Surname"
    report = await poller.cycle()
    text = report.summary()
    assert "10 students" in text and "Private-Surname" not in text
    assert report.school == SCHOOL
    assert datetime.now(UTC).strftime("%Y%m%d") in report.run_id
