"""The iSAMS REST simulator: OAuth2 client credentials, the people endpoints, a control API.

iSAMS routes follow docs/reference/isams-fields.md. Routes under `/_sim/` are not iSAMS: tests
and the demo use them to read counters, change records and inject outages.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from sim.isams.school import (
    Collection,
    Record,
    SchoolData,
    UnknownFieldError,
    UnknownRecordError,
    expand_record,
    generate_school,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCOPE = "restapi"
_K = TypeVar("_K")
_R = TypeVar("_R")


@dataclass(frozen=True)
class SimConfig:
    """How the simulator behaves; `monotonic` is injectable so tests can expire tokens."""

    client_id: str = "sync-client"
    client_secret: str = "sync-secret"
    token_ttl_seconds: int = 3600
    students: int = 500
    seed: int = 1
    default_page_size: int = 100
    max_page_size: int = 1000
    monotonic: Callable[[], float] = time.monotonic


@dataclass
class SimState:
    """What the running simulator holds: the school, issued tokens, counters, outage."""

    config: SimConfig
    school: SchoolData
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    requests: Counter[str] = field(default_factory=Counter)  # "GET /api/students" -> n
    counters: Counter[str] = field(default_factory=Counter)
    down_until: float = 0.0

    def down_for(self) -> float:
        """Return the seconds the simulated outage still lasts (0 when up)."""
        return max(0.0, self.down_until - self.config.monotonic())

    def stats(self) -> Record:
        now = self.config.monotonic()
        return {
            "requests": dict(sorted(self.requests.items())),
            "totalRequests": sum(self.requests.values()),
            "tokenGrants": self.counters["tokenGrants"],
            "tokenRejections": self.counters["tokenRejections"],
            "unauthorized": self.counters["unauthorized"],
            "unavailable": self.counters["unavailable"],
            "edits": self.counters["edits"],
            "activeTokens": sum(1 for expiry in self.tokens.values() if expiry > now),
            "downForSeconds": round(self.down_for(), 3),
        }


class SimHTTPError(Exception):
    """An iSAMS-style error answer: a status and a JSON `message`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class DownRequest(BaseModel):
    """Body of `POST /_sim/down`: answer 503 for this long (0 ends an outage)."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=24 * 3600)


def sim_state(app: FastAPI) -> SimState:
    """Return the state of an app built by `create_app` (for in-process demos and tests)."""
    state = app.state.sim
    assert isinstance(state, SimState)
    return state


def create_app(config: SimConfig | None = None, school: SchoolData | None = None) -> FastAPI:
    """Build the simulator; pass `school` to share one SchoolData with a WebhookEmitter."""
    config = config or SimConfig()
    state = SimState(config=config, school=school or generate_school(config.students, config.seed))
    app = FastAPI(title="iSAMS simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sim = state
    app.include_router(_auth_router(state))
    app.include_router(_api_router(state))
    app.include_router(_control_router(state))
    app.add_exception_handler(SimHTTPError, _sim_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_middleware(_OutageAndCountMiddleware, state=state)
    return app


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


async def _sim_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SimHTTPError)
    return _json({"message": exc.message}, exc.status, exc.headers)


async def _validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )
    return _json({"message": f"The request is invalid: {problems}"}, 400)


class _OutageAndCountMiddleware:
    """Answer 503 to iSAMS routes during a simulated outage; count requests by route."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_sim/"):
            await self.app(scope, receive, send)
            return
        remaining = self.state.down_for()
        if remaining > 0:
            self.state.counters["unavailable"] += 1
            response = JSONResponse(
                {"message": "iSAMS is unavailable (simulated outage)"},
                status_code=503,
                headers={"Retry-After": str(max(1, math.ceil(remaining)))},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
        route = scope.get("route")
        template = getattr(route, "path", None) or "(no route)"
        self.state.requests[f"{scope.get('method', '?')} {template}"] += 1


# OAuth2 ----------------------------------------------------------------------------------


def _auth_router(state: SimState) -> APIRouter:
    router = APIRouter(tags=["auth"])

    @router.post("/auth/connect/token", operation_id="token")
    async def token(request: Request) -> Response:
        """Grant a bearer token for client credentials (form body, or HTTP Basic client auth)."""
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return _token_error(state, 400, "invalid_request", "expected a form body")
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = _basic_credentials(request.headers.get("authorization"))
        if basic is not None:
            client_id, client_secret = basic
        if form.get("grant_type") != "client_credentials":
            error = "invalid_request" if "grant_type" not in form else "unsupported_grant_type"
            return _token_error(state, 400, error, "grant_type must be client_credentials")
        if not client_id or not client_secret:
            return _token_error(state, 400, "invalid_request", "client_id and client_secret")
        if "scope" in form and set(form["scope"].split()) != {SCOPE}:
            return _token_error(state, 400, "invalid_scope", f"the only scope is {SCOPE}")
        config = state.config
        if not (
            secrets.compare_digest(client_id, config.client_id)
            and secrets.compare_digest(client_secret, config.client_secret)
        ):
            return _token_error(state, 401, "invalid_client", "unknown client or wrong secret")
        now = config.monotonic()
        for old in [t for t, expiry in state.tokens.items() if expiry <= now]:
            del state.tokens[old]
        value = secrets.token_urlsafe(32)
        state.tokens[value] = now + config.token_ttl_seconds
        state.counters["tokenGrants"] += 1
        return _json(
            {
                "access_token": value,
                "expires_in": config.token_ttl_seconds,
                "token_type": "Bearer",
                "scope": SCOPE,
            },
            headers={"Cache-Control": "no-store"},
        )

    return router


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, client_secret = decoded.partition(":")
    return (client_id, client_secret) if sep else None


def _token_error(state: SimState, status: int, error: str, description: str) -> Response:
    state.counters["tokenRejections"] += 1
    return _json({"error": error, "error_description": description}, status)


# iSAMS REST API --------------------------------------------------------------------------

PageParam = Annotated[int | None, Query()]
PageSizeParam = Annotated[int | None, Query(alias="pageSize")]
ExpandParam = Annotated[list[str] | None, Query()]


def _api_router(state: SimState) -> APIRouter:
    def require_token(request: Request) -> None:
        """Refuse a request without a valid, unexpired bearer token, as iSAMS does."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        expiry = state.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or expiry <= state.config.monotonic():
            state.counters["unauthorized"] += 1
            reason = "missing bearer token" if expiry is None else "token expired"
            raise SimHTTPError(
                401,
                f"Authorization has been denied for this request ({reason}).",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )

    router = APIRouter(prefix="/api", dependencies=[Depends(require_token)], tags=["isams"])
    school = state.school

    def listing(
        collection: Collection, page: int | None, page_size: int | None, expand: set[str]
    ) -> Response:
        page, size = _paging(state.config, page, page_size)
        start = (page - 1) * size
        total, records = school.page(collection, start, start + size)
        kind = {"students": "student", "contacts": "contact", "employees": "employee"}
        items = [expand_record(kind[collection], r, expand) for r in records]
        return _json(_page_body(collection, items, page, size, total))

    @router.get("/students", operation_id="listStudents")
    async def list_students(
        page: PageParam = None, page_size: PageSizeParam = None, expand: ExpandParam = None
    ) -> Response:
        return listing("students", page, page_size, _expansions(expand))

    # Declared before /students/{schoolId}, which would otherwise take "contacts" as an id.
    @router.get("/students/contacts", operation_id="listContacts")
    async def list_contacts(
        page: PageParam = None, page_size: PageSizeParam = None, expand: ExpandParam = None
    ) -> Response:
        return listing("contacts", page, page_size, _expansions(expand))

    @router.get("/students/{schoolId}", operation_id="getStudent")
    async def get_student(schoolId: str, expand: ExpandParam = None) -> Response:  # noqa: N803  (iSAMS name)
        record = _found(school.student, schoolId)
        return _json(expand_record("student", record, _expansions(expand)))

    @router.get("/students/{schoolId}/contacts", operation_id="getStudentContacts")
    async def get_student_contacts(
        schoolId: str,  # noqa: N803  (iSAMS name)
        page: PageParam = None,
        page_size: PageSizeParam = None,
        expand: ExpandParam = None,
    ) -> Response:
        contacts = _found(school.contacts_of, schoolId)
        page, size = _paging(state.config, page, page_size)
        wanted = _expansions(expand)
        start = (page - 1) * size
        items = [expand_record("contact", c, wanted) for c in contacts[start : start + size]]
        return _json(_page_body("contacts", items, page, size, len(contacts)))

    @router.get("/humanresources/employees", operation_id="listEmployees")
    async def list_employees(
        page: PageParam = None, page_size: PageSizeParam = None, expand: ExpandParam = None
    ) -> Response:
        return listing("employees", page, page_size, _expansions(expand))

    @router.get("/humanresources/employees/{id}", operation_id="getEmployee")
    async def get_employee(id: str, expand: ExpandParam = None) -> Response:
        record = _found(school.employee, _int_id(id, "employee"))
        return _json(expand_record("employee", record, _expansions(expand)))

    @router.get("/school/yeargroups", operation_id="listYearGroups")
    async def list_year_groups(page: PageParam = None, page_size: PageSizeParam = None) -> Response:
        page, size = _paging(state.config, page, page_size)
        groups = school.year_groups
        start = (page - 1) * size
        return _json(
            _page_body("yearGroups", groups[start : start + size], page, size, len(groups))
        )

    return router


def _paging(config: SimConfig, page: int | None, page_size: int | None) -> tuple[int, int]:
    page = 1 if page is None else page
    size = config.default_page_size if page_size is None else page_size
    if page < 1:
        raise SimHTTPError(400, "page must be 1 or more")
    if not 1 <= size <= config.max_page_size:
        raise SimHTTPError(400, f"pageSize must be between 1 and {config.max_page_size}")
    return page, size


def _page_body(name: str, items: list[Record], page: int, size: int, total: int) -> Record:
    return {
        "count": len(items),
        "page": page,
        "pageSize": size,
        "totalCount": total,
        "totalPages": math.ceil(total / size),
        name: items,
    }


def _expansions(expand: list[str] | None) -> set[str]:
    """Accept `expand=a,b` and repeated `expand=a&expand=b` alike."""
    return {part.strip() for value in expand or () for part in value.split(",") if part.strip()}


def _int_id(value: str, kind: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SimHTTPError(404, f"No {kind} was found with the id {value}.") from None


def _found(read: Callable[[_K], _R], key: _K) -> _R:
    """Call a SchoolData reader, turning an unknown id into iSAMS's 404."""
    try:
        return read(key)
    except UnknownRecordError as exc:
        raise SimHTTPError(404, str(exc.args[0])) from None


# Control API (not iSAMS) -----------------------------------------------------------------

PatchBody = Annotated[dict[str, Any], Body()]


def _control_router(state: SimState) -> APIRouter:
    router = APIRouter(prefix="/_sim", tags=["simulator"])
    school = state.school

    def edited(apply: Callable[[], Record]) -> Response:
        try:
            record = apply()
        except UnknownRecordError as exc:
            raise SimHTTPError(404, str(exc.args[0])) from None
        except UnknownFieldError as exc:
            raise SimHTTPError(400, str(exc)) from None
        state.counters["edits"] += 1
        return _json(record)

    @router.get("/stats", operation_id="simStats")
    async def stats() -> Response:
        return _json(state.stats())

    @router.post("/stats/reset", operation_id="simResetStats")
    async def reset_stats() -> Response:
        state.requests.clear()
        state.counters.clear()
        return _json(state.stats())

    @router.get("/school", operation_id="simSchool")
    async def summary() -> Response:
        return _json(school.summary())

    @router.post("/edit/student/{schoolId}", operation_id="simEditStudent")
    async def edit_student(schoolId: str, patch: PatchBody) -> Response:  # noqa: N803  (iSAMS name)
        return edited(lambda: school.edit_student(schoolId, patch))

    @router.post("/edit/contact/{contact_id}", operation_id="simEditContact")
    async def edit_contact(contact_id: str, patch: PatchBody) -> Response:
        return edited(lambda: school.edit_contact(_int_id(contact_id, "contact"), patch))

    @router.post("/edit/staff/{employee_id}", operation_id="simEditStaff")
    async def edit_staff(employee_id: str, patch: PatchBody) -> Response:
        return edited(lambda: school.edit_employee(_int_id(employee_id, "employee"), patch))

    @router.post("/delete/contact/{contact_id}", operation_id="simDeleteContact")
    async def delete_contact(contact_id: str) -> Response:
        return edited(lambda: school.remove_contact(_int_id(contact_id, "contact")))

    @router.post("/down", operation_id="simDown")
    async def down(body: DownRequest) -> Response:
        state.down_until = state.config.monotonic() + body.seconds
        return _json({"downForSeconds": body.seconds})

    @router.post("/tokens/expire", operation_id="simExpireTokens")
    async def expire_tokens() -> Response:
        expired = len(state.tokens)
        state.tokens.clear()
        return _json({"expired": expired})

    return router
