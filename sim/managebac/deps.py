"""Request helpers shared by the routers: the state dependency, JSON bodies, list queries."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import QueryParams

from sim.managebac.cohorts import YearGroupQuery
from sim.managebac.errors import InvalidPayloadError, MalformedJSONError, ValidationFailedError
from sim.managebac.models import Meta
from sim.managebac.state import SimState
from sim.managebac.store import UserQuery

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 200


def get_sim(request: Request) -> SimState:
    """Return the simulator state `create_app` attached to the app."""
    return cast(SimState, request.app.state.sim)


SimDep = Annotated[SimState, Depends(get_sim)]


async def read_json(request: Request) -> Any:
    """Return the parsed body, None when empty; 400 when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise MalformedJSONError from exc


def validated(model: type[M], body: Any) -> M:
    """Validate a control-API body (None = `{}`), answering 422 with the errors by field."""
    try:
        return model.model_validate(body or {})
    except ValidationError as exc:
        raise ValidationFailedError(
            {str(e["loc"][0]) if e["loc"] else "base": [e["msg"]] for e in exc.errors()}
        ) from exc


def paginate(items: Sequence[T], params: QueryParams) -> tuple[Sequence[T], dict[str, int]]:
    """Slice one page (`page`, `per_page` up to 200) and return it with its `meta`."""
    page = _positive_int(params.get("page"), 1)
    per_page = min(_positive_int(params.get("per_page"), DEFAULT_PER_PAGE), MAX_PER_PAGE)
    start = (page - 1) * per_page
    meta = Meta(
        current_page=page,
        total_pages=math.ceil(len(items) / per_page),
        total_count=len(items),
        per_page=per_page,
    )
    return items[start : start + per_page], meta.model_dump()


def user_query(params: QueryParams) -> UserQuery:
    """Read the list filters of the user endpoints."""
    return UserQuery(
        archived=_boolean(params.get("archived")),
        q=params.get("q") or None,
        ids=_int_set(params, "ids"),
        modified_since=_timestamp(params.get("modified_since")),
        year_group_ids=_int_set(params, "year_group_ids"),
        status=params.get("status") or None,
    )


def year_group_query(params: QueryParams) -> YearGroupQuery:
    """Read the list filters of `GET /v2/year-groups`."""
    return YearGroupQuery(
        archived=_boolean(params.get("archived")),
        modified_since=_timestamp(params.get("modified_since")),
        student_ids=_int_set(params, "student_ids"),
    )


def _positive_int(value: str | None, default: int) -> int:
    if value is not None and value.isdigit() and int(value) > 0:
        return int(value)
    return default


def _boolean(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    return None


def _int_set(params: QueryParams, name: str) -> frozenset[int] | None:
    """Accept `name=1,2`, repeated `name=1&name=2`, and `name[]=1&name[]=2`."""
    raw = [*params.getlist(name), *params.getlist(f"{name}[]")]
    if not raw:
        return None
    parts = (part.strip() for value in raw for part in value.split(","))
    return frozenset(int(part) for part in parts if part.lstrip("-").isdigit())


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidPayloadError("modified_since must be an ISO 8601 timestamp") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
