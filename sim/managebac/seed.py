"""Preload ManageBac+ with users that exist before the sync (to test adoption)."""

from __future__ import annotations

from typing import Any

from sim.managebac.errors import ErrorCollector, InvalidPayloadError, SeedRejectedError, SimError
from sim.managebac.models import UserKind
from sim.managebac.payloads import is_valid_date, parse_relationship, parse_user_fields
from sim.managebac.store import Store

SEED_SECTIONS: dict[str, UserKind] = {
    "students": "student",
    "parents": "parent",
    "teachers": "teacher",
}
OWNED_FIELDS = frozenset({"id", "archived", "withdrawn_on", "graduated_on"})


def apply_seed(store: Store, body: object) -> dict[str, list[dict[str, Any]]]:
    """Insert every user and link of `body`, all or nothing; the write log is left alone."""
    if not isinstance(body, dict) or set(body) - {*SEED_SECTIONS, "links"}:
        raise InvalidPayloadError(
            "Invalid seed: expected an object with students, parents, teachers, links",
            [*SEED_SECTIONS, "links"],
        )
    result: dict[str, list[dict[str, Any]]] = {name: [] for name in [*SEED_SECTIONS, "links"]}
    with store.transaction():
        for section, kind in SEED_SECTIONS.items():
            for index, item in enumerate(_items(body, section)):
                try:
                    record = _seed_user(store, kind, item)
                except SimError as exc:
                    raise SeedRejectedError(section, index, exc) from exc
                result[section].append(store.render(record))
        for index, item in enumerate(_items(body, "links")):
            try:
                result["links"].append(_seed_link(store, item))
            except SimError as exc:
                raise SeedRejectedError("links", index, exc) from exc
    return result


def _items(body: dict[str, Any], section: str) -> list[Any]:
    items = body.get(section) or []
    if not isinstance(items, list):
        raise InvalidPayloadError(f"Invalid seed: {section} must be an array")
    return items


def _seed_user(store: Store, kind: UserKind, item: object) -> Any:
    if not isinstance(item, dict):
        raise InvalidPayloadError("Invalid seed item: expected an object")
    owned = {name: item[name] for name in OWNED_FIELDS & set(item)}
    fields = {name: value for name, value in item.items() if name not in OWNED_FIELDS}
    parsed = parse_user_fields(kind, fields, creating=True)
    record_id = owned.get("id")
    if record_id is not None and (not isinstance(record_id, int) or isinstance(record_id, bool)):
        parsed.errors.add("id", "is invalid")
        record_id = None
    extra: dict[str, Any] = {"archived": owned.get("archived") is True}
    if kind == "student":
        for name in ("withdrawn_on", "graduated_on"):
            value = owned.get(name)
            if value:
                if isinstance(value, str) and is_valid_date(value):
                    extra[name] = value
                else:
                    parsed.errors.add(name, "is invalid")
        if extra["archived"]:
            parsed.changes.pop("year_group_id", None)
    elif set(owned) - {"id", "archived"}:
        raise InvalidPayloadError("withdrawn_on and graduated_on exist on students only")
    return store.create(kind, parsed, record_id=record_id, extra=extra, log=False)


def _seed_link(store: Store, item: object) -> dict[str, Any]:
    if not isinstance(item, dict) or set(item) - {"parent_id", "child_id", "relationship"}:
        raise InvalidPayloadError("Invalid seed link", ["parent_id", "child_id", "relationship"])
    errors = ErrorCollector()
    relationship = parse_relationship(item.get("relationship"), errors)
    parent_id, child_id = item.get("parent_id"), item.get("child_id")
    if not isinstance(parent_id, int):
        raise InvalidPayloadError("Invalid seed link: parent_id must be an integer")
    child = child_id if isinstance(child_id, int) else None
    link = store.link(parent_id, child, relationship, errors, log=False)
    return {"parent_id": parent_id, "child_id": link.id, "relationship": link.relationship}
