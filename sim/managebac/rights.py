"""The per-endpoint rights a token can carry, named as `GET /v2/auth/permissions` lists them.

The spec's one example is `students/excusals/index`: the resource path, then the Rails action.
The names below follow that pattern; the exact list of a real token is not published (assumed).
`GET /v2/auth/permissions` needs no right: any working token may ask what it can do.
"""

from __future__ import annotations

PERMISSIONS_PATH = "/v2/auth/permissions"


def _user_rights(plural: str) -> dict[tuple[str, str], str]:
    base = f"/v2/{plural}"
    return {
        ("GET", base): f"{plural}/index",
        ("POST", base): f"{plural}/create",
        ("GET", f"{base}/{{id}}"): f"{plural}/show",
        ("PATCH", f"{base}/{{id}}"): f"{plural}/update",
        ("PUT", f"{base}/{{id}}/archive"): f"{plural}/archive",
        ("PUT", f"{base}/{{id}}/unarchive"): f"{plural}/unarchive",
    }


_CHILDREN = "/v2/parents/{parent_id}/children"

ROUTE_RIGHTS: dict[tuple[str, str], str] = {
    **_user_rights("students"),
    **_user_rights("parents"),
    **_user_rights("teachers"),
    ("GET", _CHILDREN): "parents/children/index",
    ("POST", _CHILDREN): "parents/children/create",
    ("PUT", _CHILDREN): "parents/children/bulk_update",
    ("GET", f"{_CHILDREN}/{{id}}"): "parents/children/show",
    ("PUT", f"{_CHILDREN}/{{id}}"): "parents/children/update",
    ("DELETE", f"{_CHILDREN}/{{id}}"): "parents/children/destroy",
    ("GET", "/v2/year-groups"): "year_groups/index",
    ("GET", "/v2/school"): "school/show",
    ("GET", "/v2/school/grades"): "school/grades/index",
}
"""(method, route template) -> the right it needs."""

ALL_RIGHTS: frozenset[str] = frozenset(ROUTE_RIGHTS.values())


def required_right(method: str, template: str) -> str | None:
    """Return the right a request needs; None when it needs none (or the route is unknown)."""
    return ROUTE_RIGHTS.get((method, template))


def unknown_rights(rights: frozenset[str]) -> list[str]:
    """Return the names in `rights` that no endpoint uses (typos), sorted."""
    return sorted(rights - ALL_RIGHTS)
