"""Possible duplicates: ManageBac+ users this service does not manage that look like one it
does (same e-mail, case ignored, or the same names and birthday; within one kind of user).

They are reported, never touched: only a person can tell a duplicate from a namesake, and
merging users is ManageBac+'s to do. Names and e-mails in the report are masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consumers.capture.holdings import RESOURCES
from consumers.capture.run_state import RunState
from consumers.domain.drift import identity, look_alikes
from consumers.domain.masking import mask

SHOWN = {"students": "student", "parents": "parent", "teachers": "teacher"}


@dataclass(frozen=True, slots=True)
class PossibleDuplicate:
    """An unmanaged ManageBac+ user, masked, and the managed user it looks like."""

    kind: str
    managebac_id: int
    archived: bool
    name: str
    email: str
    like_managebac_id: int | None
    like_isams_id: str
    rule: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "managebac_id": self.managebac_id,
            "archived": self.archived,
            "name": self.name,
            "email": self.email,
            "looks_like": {"managebac_id": self.like_managebac_id, "isams_id": self.like_isams_id},
            "rule": self.rule,
        }


def possible_duplicates(run: RunState) -> list[PossibleDuplicate]:
    """Compare every unmanaged user with the managed users of its kind, as the run left them."""
    if not run.holdings.live:
        return []
    found: list[PossibleDuplicate] = []
    for resource in RESOURCES:
        managed = run.managed[resource]
        ours = []
        for managebac_id, user in managed.items():
            held = run.holdings.user(resource, managebac_id)
            sources = [user.fields] + ([held.fields] if held is not None else [])
            ours.append(identity(managebac_id, *sources))
        others = {held.id: held for held in run.holdings.all(resource) if held.id not in managed}
        for match in look_alikes(ours, [held.identity for held in others.values()]):
            other = others[match.managebac_id]
            name = " ".join(
                str(other.fields[part])
                for part in ("first_name", "last_name")
                if part in other.fields
            )
            found.append(
                PossibleDuplicate(
                    kind=SHOWN[resource],
                    managebac_id=other.id,
                    archived=other.archived,
                    name=mask(name),
                    email=mask(other.fields.get("email")),
                    like_managebac_id=match.like if match.like > 0 else None,
                    like_isams_id=managed[match.like].isams_id,
                    rule=match.rule,
                )
            )
    return found
