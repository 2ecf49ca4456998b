"""Relationships: iSAMS spellings and school overrides as ManageBac+'s list; link plans."""

from __future__ import annotations

import pytest

from consumers.domain.plan import NoChange
from consumers.domain.records import LinkState
from consumers.domain.relationships import (
    EMPTY_WARNING,
    MANAGEBAC_RELATIONSHIPS,
    UNKNOWN_WARNING,
    Link,
    LinkAction,
    Relink,
    Unlink,
    link_state_after,
    plan_link,
    relationship_for,
)


def test_the_list_is_exactly_designs() -> None:
    assert MANAGEBAC_RELATIONSHIPS == (
        "Mother",
        "Father",
        "Stepmother",
        "Stepfather",
        "Legal Guardian",
        "Grandmother",
        "Grandfather",
        "Sister",
        "Brother",
        "Uncle",
        "Aunt",
        "Other Guardian",
    )


@pytest.mark.parametrize("name", MANAGEBAC_RELATIONSHIPS)
def test_managebac_names_map_to_themselves(name: str) -> None:
    assert relationship_for(name, {}) == (name, [])
    assert relationship_for(name.upper(), {}) == (name, [])


@pytest.mark.parametrize(
    ("isams", "managebac"),
    [
        ("Mum", "Mother"),
        ("mum", "Mother"),
        ("Mummy", "Mother"),
        ("Mom", "Mother"),
        ("Adoptive Mother", "Mother"),
        ("Dad", "Father"),
        ("DAD", "Father"),
        ("Birth Father", "Father"),
        ("Step-Mother", "Stepmother"),
        ("Step Mother", "Stepmother"),
        ("Stepmother", "Stepmother"),
        ("step-mother", "Stepmother"),
        ("Stepmum", "Stepmother"),
        ("Step-Father", "Stepfather"),
        ("Step Father", "Stepfather"),
        ("Step Dad", "Stepfather"),
        ("Grandma", "Grandmother"),
        ("Granny", "Grandmother"),
        ("Nan", "Grandmother"),
        ("Grand-Mother", "Grandmother"),
        ("Maternal Grandmother", "Grandmother"),
        ("Grandpa", "Grandfather"),
        ("Grandad", "Grandfather"),
        ("Granddad", "Grandfather"),
        ("Guardian", "Legal Guardian"),
        ("Legal Guardian", "Legal Guardian"),
        ("legal guardian", "Legal Guardian"),
        ("Aunty", "Aunt"),
        ("Auntie", "Aunt"),
        ("Great Aunt", "Aunt"),
        ("Great-Uncle", "Uncle"),
        ("Half-Sister", "Sister"),
        ("Step Brother", "Brother"),
        ("Carer", "Other Guardian"),
        ("Foster Carer", "Other Guardian"),
        ("Other", "Other Guardian"),
        ("  Mother  ", "Mother"),
        ("Mr. Mother", "Other Guardian"),
    ],
)
def test_usual_isams_spellings(isams: str, managebac: str) -> None:
    found, warnings = relationship_for(isams, {})
    assert found == managebac
    if isams != "Mr. Mother":
        assert warnings == []


@pytest.mark.parametrize(
    "isams", ["Neighbour", "Family Friend", "Parent", "Chauffeur", "?", "--", "Мать"]
)
def test_unknown_relationships_are_other_guardian_with_a_warning(isams: str) -> None:
    found, warnings = relationship_for(isams, {})
    assert found == "Other Guardian"
    assert warnings == [UNKNOWN_WARNING]
    assert isams not in UNKNOWN_WARNING


@pytest.mark.parametrize("isams", [None, "", "   "])
def test_empty_relationships_are_other_guardian_with_a_warning(isams: str | None) -> None:
    assert relationship_for(isams, {}) == ("Other Guardian", [EMPTY_WARNING])


@pytest.mark.parametrize(
    ("isams", "overrides", "managebac"),
    [
        ("Parent", {"Parent": "Legal Guardian"}, "Legal Guardian"),
        ("parent", {"PARENT": "Legal Guardian"}, "Legal Guardian"),
        ("Step-Parent", {"step parent": "Stepmother"}, "Stepmother"),
        # an override wins over the built-in table
        ("Guardian", {"Guardian": "Other Guardian"}, "Other Guardian"),
        ("Mum", {"mum": "Grandmother"}, "Grandmother"),
        # override values may be written in any case
        ("Parent", {"Parent": "legal guardian"}, "Legal Guardian"),
        # overrides for other values change nothing
        ("Mum", {"Dad": "Uncle"}, "Mother"),
        # letters beyond English count
        ("Мать", {"мать": "Mother"}, "Mother"),
    ],
)
def test_school_overrides_come_first(isams: str, overrides: dict[str, str], managebac: str) -> None:
    assert relationship_for(isams, overrides) == (managebac, [])


@pytest.mark.parametrize(
    ("isams", "target", "managebac", "warnings"),
    [
        ("Mum", "Mummy", "Mother", 1),
        ("Guardian", "Consultant Recruiter", "Legal Guardian", 1),
        ("Neighbour", "Friend", "Other Guardian", 2),
    ],
)
def test_overrides_outside_the_list_are_ignored_with_a_warning(
    isams: str, target: str, managebac: str, warnings: int
) -> None:
    found, said = relationship_for(isams, {isams: target})
    assert found == managebac
    assert len(said) == warnings
    assert said[0].startswith("mappings.relationships: ")
    assert said[0].endswith(
        "is not one of ManageBac+'s relationships, so that override was ignored"
    )


def test_odd_override_values_from_yaml_do_not_break() -> None:
    overrides: dict[str, object] = {"Parent": 7}
    found, warnings = relationship_for("Parent", overrides)  # type: ignore[arg-type]
    assert found == "Other Guardian"
    assert len(warnings) == 2


# --- Link plans ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "previous", "action"),
    [
        # a new synced contact links
        ("Mother", None, Link("Mother")),
        # unlinked before (contact removed, then back): link again
        ("Mother", LinkState("Mother", linked=False), Link("Mother")),
        ("Aunt", LinkState("Mother", linked=False), Link("Aunt")),
        # same relationship: nothing
        ("Mother", LinkState("Mother", linked=True), NoChange()),
        # changed relationship: PUT …/children/{child_id}
        ("Legal Guardian", LinkState("Mother", linked=True), Relink("Legal Guardian")),
        # removed contact: unlink when linked
        (None, LinkState("Mother", linked=True), Unlink()),
        (None, LinkState("Mother", linked=False), NoChange()),
        (None, None, NoChange()),
    ],
)
def test_plan_link(desired: str | None, previous: LinkState | None, action: LinkAction) -> None:
    assert plan_link(desired, previous) == action


@pytest.mark.parametrize(
    ("action", "previous", "after"),
    [
        (Link("Mother"), None, LinkState("Mother", linked=True)),
        (Relink("Aunt"), LinkState("Mother", True), LinkState("Aunt", linked=True)),
        (Unlink(), LinkState("Mother", True), LinkState("Mother", linked=False)),
        (NoChange(), LinkState("Mother", True), LinkState("Mother", linked=True)),
        (NoChange(), None, None),
    ],
)
def test_link_state_after(
    action: LinkAction, previous: LinkState | None, after: LinkState | None
) -> None:
    assert link_state_after(action, previous) == after
    # planning again from the state after the action is idle
    desired = None if isinstance(action, Unlink) else (after.relationship if after else None)
    assert plan_link(desired, after) == NoChange()
