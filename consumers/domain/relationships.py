"""Parent-child links: iSAMS relationships as ManageBac+'s list, and what to do with a link.

docs/design.md §3 "Parents": each synced contact links its parent to the student with
`POST /v2/parents/{id}/children`, the relationship mapped to ManageBac+'s list (unknown →
Other Guardian); a changed relationship is written with `PUT …/children/{child_id}`; a
removed contact unlinks (`DELETE …/children/{child_id}`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from consumers.domain.plan import NoChange
from consumers.domain.records import LinkState, Status

# docs/design.md §3's list. ManageBac+ also accepts "Consultant Recruiter", which is no family tie.
MANAGEBAC_RELATIONSHIPS: tuple[str, ...] = (
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
OTHER_GUARDIAN = "Other Guardian"
UNKNOWN_WARNING = (
    "relationship: the iSAMS value is not one ManageBac+ knows, so the link says "
    "Other Guardian; map it in mappings.relationships to choose another"
)
EMPTY_WARNING = "relationship: empty in iSAMS, so the link says Other Guardian"
_NOT_LETTERS = re.compile(r"[\W_]+")


def _key(name: str) -> str:
    """Fold a relationship for matching: case, spaces, hyphens and dots do not count."""
    return _NOT_LETTERS.sub("", name.casefold())


def _table(spellings: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    return {_key(spelling): target for target, words in spellings.items() for spelling in words}


# The usual spellings in iSAMS schools' relationship lists (folded by `_key`).
_BUILT_IN = _table(
    {
        "Mother": (
            "Mother",
            "Mum",
            "Mom",
            "Mummy",
            "Mommy",
            "Mam",
            "Birth Mother",
            "Natural Mother",
            "Biological Mother",
            "Adoptive Mother",
        ),
        "Father": (
            "Father",
            "Dad",
            "Daddy",
            "Papa",
            "Birth Father",
            "Natural Father",
            "Biological Father",
            "Adoptive Father",
        ),
        "Stepmother": ("Stepmother", "Step-Mother", "Step Mother", "Stepmum", "Step Mum"),
        "Stepfather": ("Stepfather", "Step-Father", "Step Father", "Stepdad", "Step Dad"),
        "Legal Guardian": ("Legal Guardian", "Guardian", "Court Appointed Guardian"),
        "Grandmother": (
            "Grandmother",
            "Grand Mother",
            "Grandma",
            "Granny",
            "Gran",
            "Nan",
            "Nana",
            "Nanna",
            "Maternal Grandmother",
            "Paternal Grandmother",
        ),
        "Grandfather": (
            "Grandfather",
            "Grand Father",
            "Grandpa",
            "Grandad",
            "Granddad",
            "Grampa",
            "Maternal Grandfather",
            "Paternal Grandfather",
        ),
        "Sister": ("Sister", "Half-Sister", "Stepsister", "Step-Sister"),
        "Brother": ("Brother", "Half-Brother", "Stepbrother", "Step-Brother"),
        "Uncle": ("Uncle", "Great Uncle"),
        "Aunt": ("Aunt", "Aunty", "Auntie", "Great Aunt"),
        "Other Guardian": (
            "Other Guardian",
            "Other",
            "Carer",
            "Foster Carer",
            "Foster Parent",
            "Foster Mother",
            "Foster Father",
        ),
    }
)
_CANONICAL = {_key(name): name for name in MANAGEBAC_RELATIONSHIPS}


def relationship_for(
    isams_relationship: str | None, overrides: Mapping[str, str]
) -> tuple[str, list[str]]:
    """Return the ManageBac+ relationship for an iSAMS one, and warnings.

    The school's `mappings.relationships` come first (keys match ignoring case, spaces,
    hyphens and dots); an override to a value outside ManageBac+'s list is ignored with a
    warning. Then the built-in table of usual spellings; anything else is Other Guardian,
    with a warning that names the field, not the value.
    """
    warnings: list[str] = []
    name = (isams_relationship or "").strip()
    if not name:
        return OTHER_GUARDIAN, [EMPTY_WARNING]
    wanted = _key(name)
    for key, target in overrides.items():
        if not wanted or not isinstance(key, str) or _key(key) != wanted:
            continue
        canonical = _CANONICAL.get(_key(target)) if isinstance(target, str) else None
        if canonical is not None:
            return canonical, warnings
        warnings.append(
            f"mappings.relationships: {str(target)[:40]!r} is not one of ManageBac+'s "
            "relationships, so that override was ignored"
        )
        break
    found = _BUILT_IN.get(wanted) if wanted else None
    if found is None:
        return OTHER_GUARDIAN, [*warnings, UNKNOWN_WARNING]
    return found, warnings


@dataclass(frozen=True, slots=True)
class Link:
    """POST /v2/parents/{parent_id}/children `{"child": {"id", "relationship"}}`.

    ManageBac+'s 422 for an existing link counts as success (then PUT the relationship).
    """

    relationship: str


@dataclass(frozen=True, slots=True)
class Relink:
    """PUT /v2/parents/{parent_id}/children/{child_id}: the relationship changed."""

    relationship: str


@dataclass(frozen=True, slots=True)
class Unlink:
    """DELETE /v2/parents/{parent_id}/children/{child_id}: the contact was removed."""


LinkAction = Link | Relink | Unlink | NoChange


def plan_link(desired: str | None, previous: LinkState | None) -> LinkAction:
    """Decide the write for one contact's link; `desired` None means the contact is removed.

    Removed: unlink when linked, else nothing. Wanted: link when not linked (new, or unlinked
    before), relink when the relationship changed, else nothing.
    """
    if desired is None:
        return Unlink() if previous is not None and previous.linked else NoChange()
    if previous is None or not previous.linked:
        return Link(desired)
    if previous.relationship != desired:
        return Relink(desired)
    return NoChange()


def link_state_after(action: LinkAction, previous: LinkState | None) -> LinkState | None:
    """Return the link's state once `action` succeeded, for the ledger."""
    if isinstance(action, Link | Relink):
        return LinkState(action.relationship, linked=True)
    if isinstance(action, Unlink) and previous is not None:
        return LinkState(previous.relationship, linked=False)
    return previous


WAITING_FOR_STUDENT = "waiting for the student to be in ManageBac+"
WAITING_FOR_PARENT = "the parent is not in ManageBac+ (see the parent's reason)"


@dataclass(frozen=True, slots=True)
class LinkEnds:
    """The two ends of a link as ManageBac+ holds them now: ids (None: not there yet) and
    whether each is active (a parent or student that is archived takes no new link)."""

    parent_id: int | None
    parent_active: bool
    student_id: int | None
    student_active: bool


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """What to do with one contact's link, and where it then stands (for the ledger).

    `action` is the write to make now (`NoChange` while an end is not ready); `state` is
    the link once it succeeded; `status` and `reason` are the contact row's.
    """

    action: LinkAction
    state: LinkState | None
    status: Status
    reason: str | None
    warnings: tuple[str, ...]

    @property
    def linked(self) -> bool:
        return self.state is not None and self.state.linked


def decide_link(
    wanted: bool,
    isams_relationship: str | None,
    overrides: Mapping[str, str],
    previous: LinkState | None,
    ends: LinkEnds,
    not_wanted_reason: str,
) -> LinkDecision:
    """Decide one contact's link: link, relink, unlink or wait, and the contact's status.

    - `wanted` (the contact syncs as a parent): link with the mapped relationship, or relink
      when it changed; but wait (no write, status pending) while the parent is not active in
      ManageBac+, or the student is not.
    - Not wanted (removed, not mapped, deceased): unlink when linked, even while the parent
      is archived; the contact is skipped with `not_wanted_reason`.
    - Nothing is written while either end has no ManageBac+ id.
    """
    desired: str | None = None
    warnings: list[str] = []
    if wanted:
        desired, warnings = relationship_for(isams_relationship, overrides)
    action = plan_link(desired, previous)
    reason: str | None = None
    if not wanted:
        reason = not_wanted_reason
    elif ends.parent_id is None or not ends.parent_active:
        reason, action = WAITING_FOR_PARENT, _hold(action)
    elif ends.student_id is None or not ends.student_active:
        reason, action = WAITING_FOR_STUDENT, _hold(action)
    if ends.parent_id is None or ends.student_id is None:
        action = _hold(action)
    state = link_state_after(action, previous)
    linked = state is not None and state.linked
    status = Status.SYNCED if linked else (Status.PENDING if wanted else Status.SKIPPED)
    return LinkDecision(action, state, status, reason, tuple(warnings))


def _hold(action: LinkAction) -> LinkAction:
    """Keep an unlink (it needs no active parent); anything else waits for now."""
    return action if isinstance(action, Unlink) else NoChange()
