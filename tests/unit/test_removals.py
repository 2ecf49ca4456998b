"""What a poll cycle makes of records it no longer finds (docs/design.md §6), as a table:
removals, contacts following their child, and what a refused list leaves unjudged."""

from __future__ import annotations

from collections.abc import Mapping

from consumers.domain.removals import (
    Held,
    Kind,
    Known,
    Listing,
    PollList,
    Removals,
    find_removals,
    judge_removals,
)

KNOWN = Known(
    students=["S1", "S2", "S3", "S4"],
    staff=["7", "8"],
    contacts={"c1": "S1", "c2": "S2", "c3": "S3", "c4": "S4", "c5": None},
)


def listing(failed: Mapping[PollList, str] | None = None, **lists: set[str]) -> Listing:
    """S1 current, S2 left, S3 and S4 gone; staff 8 gone; only c1's contact listed."""
    base: dict[str, set[str]] = {
        "students": {"S1"},
        "alumni": {"S2"},
        "contacts": {"c1"},
        "employees": {"7"},
    }
    base.update(lists)
    return Listing(**base, failed=failed or {})


def test_every_list_read_sorts_removals_and_followers() -> None:
    found = find_removals(KNOWN, listing(contacts=set()))

    assert found == Removals(
        students=("S3", "S4"),
        staff=("8",),
        contacts=(("c1", "S1"), ("c5", None)),  # gone from a current pupil; pupil unknown
        following_leavers=("c2",),
        following_removed={"S3": ("c3",), "S4": ("c4",)},
    )


def test_nothing_missing_is_nothing_to_do() -> None:
    everyone = listing(
        students={"S1", "S3", "S4"}, contacts={"c1", "c2", "c3", "c4", "c5"}, employees={"7", "8"}
    )
    assert find_removals(KNOWN, everyone) == Removals()


def test_a_refused_alumni_list_leaves_missing_pupils_and_their_contacts_unjudged() -> None:
    found = find_removals(KNOWN, listing({"alumni": "403 not authorised"}, alumni=set()))

    assert (found.students, found.following_leavers, found.following_removed) == ((), (), {})
    assert found.contacts == ()
    pupils, contacts = found.unjudged
    assert (pupils.list, pupils.ids) == ("students", ("S2", "S3", "S4"))
    assert "/api/alumni could not be read (403 not authorised)" in pupils.reason
    assert (contacts.list, contacts.ids) == ("contacts", ("c2", "c3", "c4", "c5"))


def test_a_contact_gone_from_a_current_pupil_is_a_removal_even_when_alumni_are_refused() -> None:
    found = find_removals(KNOWN, listing({"alumni": "403"}, alumni=set(), contacts=set()))
    assert found.contacts == (("c1", "S1"),)


def test_a_refused_list_holds_only_its_own_removals() -> None:
    found = find_removals(KNOWN, listing({"contacts": "404", "employees": "unavailable"}))

    assert found.students == ("S3", "S4")
    assert found.contacts == () and found.staff == ()
    assert [(h.list, h.ids) for h in found.unjudged] == [
        ("employees", ("8",)),
        ("contacts", ("c2", "c3", "c4", "c5")),
    ]
    assert all(isinstance(h, Held) and "could not be read" in h.reason for h in found.unjudged)


def test_pupils_and_staff_are_judged_against_the_synced_ones_contacts_on_their_own() -> None:
    removals = Removals(students=("S3", "S4"), staff=("8",), contacts=(("c1", "S1"),))
    synced: set[tuple[Kind, str]] = {("staff", "8")}
    synced |= {("student", f"S{n}") for n in range(1, 22) if n != 4}

    verdicts = judge_removals(removals, synced, known_contacts=5, force=False)

    # S4 was never in ManageBac+ (skipped): removing it archives nothing.
    assert verdicts.people.allowed
    assert "2 of 21 synced users" in verdicts.people.reason
    assert not verdicts.contacts.allowed
    assert "1 of 5 contacts known to the poller (20%)" in verdicts.contacts.reason
    forced = judge_removals(removals, synced, known_contacts=5, force=True)
    assert forced.contacts.allowed and "forced" in forced.contacts.reason
