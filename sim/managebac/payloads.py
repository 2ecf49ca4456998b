"""Turn request bodies into typed changes, checking what needs no state.

Rules from the reference spec and ManageBac+'s observed behaviour: the body is wrapped
(`{"student": {...}}`), unknown fields are refused, nulls are ignored, `""` clears a field,
and `email`/`last_name` are required on create and may not be blanked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.managebac.errors import ErrorCollector, InvalidPayloadError
from sim.managebac.models import (
    CREATE_ONLY_FIELDS,
    INT_FIELDS,
    LIST_FIELDS,
    RELATIONSHIPS,
    SALUTATIONS,
    WRITE_MODELS,
    UserKind,
)

BLANK = "can't be blank"
INVALID = "is invalid"
TAKEN = "has already been taken"
MUST_EXIST = "must exist"
ARCHIVED = "is archived"  # wording assumed: ManageBac+ does not document this refusal
NOT_IN_LIST = "is not included in the list"
RELATIONSHIP_MESSAGE = "must be one of: " + ", ".join(RELATIONSHIPS)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_ISO2 = re.compile(r"^[A-Z]{2}$")
_ISO3 = re.compile(r"^[A-Z]{3}$")
_REQUIRED = ("email", "last_name")
_DATE_FIELDS = ("birthday", "attendance_start_date")


@dataclass
class ParsedUser:
    """Changes to apply to one user, the field errors found so far, and the create options."""

    changes: dict[str, Any]
    errors: ErrorCollector = field(default_factory=ErrorCollector)
    send_welcome_email: bool = False


def unwrap(body: object, key: str, extra_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Return `body[key]`, refusing any other shape with ManageBac+'s InvalidPayloadError."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise InvalidPayloadError(f"Invalid payload data structure. Expected a '{key}' object.")
    unknown = set(body) - {key} - extra_keys
    if unknown:
        raise InvalidPayloadError(
            f"Unpermitted parameters: {', '.join(sorted(unknown))}", {key, *extra_keys}
        )
    inner: dict[str, Any] = body[key]
    return inner


def allowed_fields(kind: UserKind, *, creating: bool) -> frozenset[str]:
    """Return the field names a client may send for `kind`."""
    names = frozenset(WRITE_MODELS[kind].model_fields)
    return names if creating else names - CREATE_ONLY_FIELDS


def parse_user(kind: UserKind, body: object, *, creating: bool) -> ParsedUser:
    """Parse a create or update body for one user kind."""
    fields = unwrap(body, kind, frozenset({"options"}) if creating else frozenset())
    send_welcome = _welcome_option(body) if creating else False
    parsed = parse_user_fields(kind, fields, creating=creating)
    parsed.send_welcome_email = send_welcome
    return parsed


def parse_user_fields(kind: UserKind, fields: dict[str, Any], *, creating: bool) -> ParsedUser:
    """Parse the inner object of a user body (also used by the seed endpoint)."""
    allowed = allowed_fields(kind, creating=creating)
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidPayloadError(f"Unpermitted parameters: {', '.join(sorted(unknown))}", allowed)
    present = {name: _cleared(name, value) for name, value in fields.items() if value is not None}
    parsed = ParsedUser(changes={})
    typed = _typed(WRITE_MODELS[kind], present, parsed.errors)
    parsed.changes = {
        name: getattr(typed, name) for name in present if name not in parsed.errors.errors
    }
    _check(parsed, creating=creating)
    return parsed


def parse_relationship(value: object, errors: ErrorCollector) -> str | None:
    """Return a valid relationship (None allowed), recording an error for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value in RELATIONSHIPS:
        return value
    errors.add("relationship", RELATIONSHIP_MESSAGE)
    return None


def is_valid_date(value: str) -> bool:
    """Tell whether `value` is a `yyyy-mm-dd` calendar date."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _welcome_option(body: object) -> bool:
    options = body.get("options") if isinstance(body, dict) else None
    if options is None:
        return False
    if not isinstance(options, dict) or set(options) - {"send_welcome_email"}:
        raise InvalidPayloadError("Unpermitted parameters in options", {"send_welcome_email"})
    return options.get("send_welcome_email") is True


def _cleared(name: str, value: object) -> object:
    """Map `""` to the cleared value of non-string fields."""
    if value != "":
        return value
    if name in INT_FIELDS:
        return None
    if name in LIST_FIELDS:
        return []
    return value


def _typed(model: type[BaseModel], present: dict[str, Any], errors: ErrorCollector) -> BaseModel:
    """Validate types field by field so one bad field does not hide the others."""
    try:
        return model.model_validate(present)
    except ValidationError as exc:
        for error in exc.errors():
            errors.add(str(error["loc"][0]), INVALID)
    good = {name: value for name, value in present.items() if name not in errors.errors}
    return model.model_validate(good)


def _check(parsed: ParsedUser, *, creating: bool) -> None:
    changes, errors = parsed.changes, parsed.errors
    for name in _REQUIRED:
        if name in changes:
            if not str(changes[name]).strip():
                errors.add(name, BLANK)
        elif creating and name not in errors.errors:
            errors.add(name, BLANK)
    email = changes.get("email")
    if email and not _EMAIL.match(email):
        errors.add("email", INVALID)
    for name in _DATE_FIELDS:
        value = changes.get(name)
        if value and not is_valid_date(value):
            errors.add(name, INVALID)
    if any(not _ISO2.match(code) for code in changes.get("nationalities") or []):
        errors.add("nationalities", INVALID)
    if any(not _ISO3.match(code) for code in changes.get("languages") or []):
        errors.add("languages", INVALID)
    salutation = changes.get("salutation")
    if salutation and salutation not in SALUTATIONS:
        errors.add("salutation", NOT_IN_LIST)
    password = changes.get("password")
    if password is not None and len(password) < 6:
        errors.add("password", "is too short (minimum is 6 characters)")


def parse_archive(body: object) -> dict[str, str]:
    """Return the one date of a student archive body: `withdrawn_on` or `graduated_on`."""
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise InvalidPayloadError("Invalid payload data structure.")
    allowed = {"withdrawn_on", "graduated_on"}
    unknown = set(body) - allowed
    if unknown:
        raise InvalidPayloadError(f"Unpermitted parameters: {', '.join(sorted(unknown))}", allowed)
    dates = {name: value for name, value in body.items() if value not in (None, "")}
    errors = ErrorCollector()
    if not dates:
        errors.add("base", "either withdrawn_on or graduated_on must be given")
    elif len(dates) > 1:
        errors.add("base", "withdrawn_on and graduated_on cannot both be given")
    for name, value in dates.items():
        if not isinstance(value, str) or not is_valid_date(value):
            errors.add(name, INVALID)
    errors.raise_if_any()
    return dates


def parse_child(body: object) -> tuple[int | None, str | None, ErrorCollector]:
    """Return child id, relationship and errors of a `{"child": {...}}` body."""
    inner = unwrap(body, "child")
    return _child_fields(inner, ErrorCollector())


def parse_children(body: object) -> tuple[list[tuple[int, str | None]], ErrorCollector]:
    """Return the links of a bulk `{"children": [...]}` body."""
    if not isinstance(body, dict) or not isinstance(body.get("children"), list):
        raise InvalidPayloadError("Invalid payload data structure. Expected a 'children' array.")
    if set(body) - {"children"}:
        raise InvalidPayloadError("Unpermitted parameters", {"children"})
    errors = ErrorCollector()
    links: list[tuple[int, str | None]] = []
    for item in body["children"]:
        if not isinstance(item, dict):
            raise InvalidPayloadError("Invalid payload data structure. Expected child objects.")
        child_id, relationship, _ = _child_fields(item, errors)
        if child_id is None:
            errors.add("child", MUST_EXIST)
        else:
            links.append((child_id, relationship))
    return links, errors


def _child_fields(
    fields: dict[str, Any], errors: ErrorCollector
) -> tuple[int | None, str | None, ErrorCollector]:
    allowed = {"id", "relationship"}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidPayloadError(f"Unpermitted parameters: {', '.join(sorted(unknown))}", allowed)
    raw_id = fields.get("id")
    child_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
    if isinstance(raw_id, str) and raw_id.isdigit():
        child_id = int(raw_id)
    relationship = parse_relationship(fields.get("relationship"), errors)
    return child_id, relationship, errors
