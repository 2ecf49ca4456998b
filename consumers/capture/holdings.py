"""What ManageBac+ holds: every user (archived too) with the fields this service sends, and
parents' links. Read from ManageBac+ itself (reconcile), or taken from the ledger's memory of
what was pushed (the plan of a backfill, which reads nothing from ManageBac+).

Faria asks integrations to keep traffic low, so ManageBac+ is read with the paged lists only
(pages of 50): a parent's links come with the parent list (`children`); a parent's own
`GET …/children` is made only when the list did not carry them, and only for a parent a plan
needs the links of.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from consumers.capture.isams_read import Progress
from consumers.domain.drift import Identity, identity, observed_fields
from consumers.domain.parents import email_key
from consumers.domain.plan import Fields
from consumers.domain.records import SyncRecord
from consumers.ports import ManagebacPort, RemoteUser, Resource

RESOURCES: tuple[Resource, ...] = ("students", "parents", "teachers")
LEDGER_KINDS: Mapping[str, Resource] = {
    "student": "students",
    "parent": "parents",
    "staff": "teachers",
}
Links = dict[int, str | None]


@dataclass(frozen=True, slots=True)
class Held:
    """One ManageBac+ user: id, archive flag, the sent fields it has, and who it is."""

    id: int
    archived: bool
    fields: Fields
    identity: Identity


@dataclass
class Holdings:
    """The users of one school's ManageBac+ by resource and id, and the parents' links.

    `live`: read from ManageBac+ now. Otherwise this is the ledger's memory, which knows only
    the users this service manages: no match for a creation, no look-alikes.
    """

    users: dict[Resource, dict[int, Held]]
    live: bool
    _links: dict[int, Links] = field(default_factory=dict)
    _read_links: Callable[[int], Awaitable[Links]] | None = None
    _keys: dict[Resource, dict[str, list[Held]]] = field(default_factory=dict)

    def user(self, resource: Resource, managebac_id: int | None) -> Held | None:
        """Return the user with this id, or None when ManageBac+ has none."""
        if managebac_id is None:
            return None
        return self.users[resource].get(managebac_id)

    def all(self, resource: Resource) -> list[Held]:
        """Return every user of a resource, by id."""
        return [self.users[resource][key] for key in sorted(self.users[resource])]

    def match(
        self, resource: Resource, key: str | None, taken: Container[int] = frozenset()
    ) -> Held | None:
        """Find the user a creation would clash with: the student with this `student_id`
        (exact), else the parent or teacher with this e-mail (case ignored); not one of `taken`.
        """
        if key is None or not self.live:
            return None
        if resource not in self._keys:
            self._keys[resource] = {}
            for user in self.all(resource):
                found = _match_key(resource, user.fields)
                if found is not None:
                    self._keys[resource].setdefault(found, []).append(user)
        wanted = key if resource == "students" else email_key(key)
        return next((u for u in self._keys[resource].get(wanted, []) if u.id not in taken), None)

    async def links(self, parent_id: int) -> Links | None:
        """Return a parent's links (child id → relationship); None when unknown (a parent
        ManageBac+ does not have yet)."""
        if parent_id in self._links:
            return self._links[parent_id]
        if parent_id <= 0 or self._read_links is None or self.user("parents", parent_id) is None:
            return None
        self._links[parent_id] = await self._read_links(parent_id)
        return self._links[parent_id]

    def new_parent(self, parent_id: int) -> None:
        """Note a parent created by this run: it has no links yet, whatever the ledger says."""
        self._links[parent_id] = {}


def _match_key(resource: Resource, fields: Mapping[str, Any]) -> str | None:
    """Return what a creation of `resource` is matched by: student_id, else the e-mail."""
    value = fields.get("student_id" if resource == "students" else "email")
    if not isinstance(value, str) or not value.strip():
        return None
    return value if resource == "students" else email_key(value)


def held_of(resource: Resource, user: RemoteUser) -> Held:
    """Describe one listed ManageBac+ user."""
    fields = observed_fields(resource, user.fields)
    return Held(user.id, user.archived, fields, identity(user.id, user.fields))


async def read_managebac(
    client: ManagebacPort, resources: Iterable[Resource], progress: Progress | None = None
) -> Holdings:
    """List every user of each resource (archived too) and the links the parent list carries."""
    users: dict[Resource, dict[int, Held]] = {resource: {} for resource in RESOURCES}
    links: dict[int, Links] = {}
    for resource in resources:
        name = f"managebac {resource}"
        async for user in client.users(resource):
            users[resource][user.id] = held_of(resource, user)
            if resource == "parents":
                listed = listed_links(user.fields)
                if listed is not None:
                    links[user.id] = listed
            if progress is not None and len(users[resource]) % 100 == 0:
                progress(name, len(users[resource]), 0)
        if progress is not None:
            progress(name, len(users[resource]), len(users[resource]))
    return Holdings(users, live=True, _links=links, _read_links=client.children)


def listed_links(fields: Mapping[str, Any]) -> Links | None:
    """Return the links a listed parent carries (`children`: id and relationship), or None
    when the list did not say (then they are read from the parent's own list when needed)."""
    children = fields.get("children")
    if not isinstance(children, list):
        return None
    found: Links = {}
    for child in children:
        if isinstance(child, Mapping) and isinstance(child.get("id"), int):
            relationship = child.get("relationship")
            found[int(child["id"])] = relationship if isinstance(relationship, str) else None
    return found


def from_ledger(rows: Iterable[SyncRecord]) -> Holdings:
    """Return what the ledger remembers pushing: managed users, and links of linked contacts."""
    users: dict[Resource, dict[int, Held]] = {resource: {} for resource in RESOURCES}
    listed = list(rows)
    students: dict[str, int] = {}
    for row in listed:
        resource = LEDGER_KINDS.get(row.kind)
        if resource is None or row.managebac_id is None:
            continue
        fields = observed_fields(resource, row.pushed)
        users[resource][row.managebac_id] = Held(
            row.managebac_id, row.archived, fields, identity(row.managebac_id, fields)
        )
        if row.kind == "student":
            students[row.isams_id] = row.managebac_id
    links: dict[int, Links] = {parent_id: {} for parent_id in users["parents"]}
    for row in listed:
        link = row.source.link
        student = students.get(row.related_id or "")
        if row.kind != "contact" or link is None or not link.linked or student is None:
            continue
        if row.managebac_id is not None:
            links.setdefault(row.managebac_id, {})[student] = link.relationship or None
    return Holdings(users, live=False, _links=links)
