"""The iSAMS REST simulator: OAuth2 client credentials, the people endpoints, a control API.

iSAMS routes follow docs/reference/isams-fields.md: current pupils in `/api/students`, leavers
in `/api/alumni`, applicants under admissions, an unpaged per-pupil contact list, `{"message"}`
errors, a 403 per module the client lacks, a throttle and transient 500s on demand. Routes
under `/_sim/` are not iSAMS (`sim.isams.control`): tests and the demo use them to read
counters, change records and inject outages.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sim.isams.control import control_router
from sim.isams.gate import NOT_AUTHORISED, TRANSIENT_ERROR, Module, retry_after
from sim.isams.school import generate_school
from sim.isams.state import SimConfig, SimHTTPError, SimState, json_response
from sim.isams.store import Record, SchoolData, UnknownRecordError
from sim.isams.views import (
    ALUMNI_COLLECTION,
    APPLICANTS_COLLECTION,
    STUDENTS_COLLECTION,
    alumni_record,
    applicant_record,
    expand_record,
    expansions,
    student_contact_record,
)

__all__ = ["SCOPE", "SimConfig", "SimHTTPError", "SimState", "create_app", "sim_state"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCOPE = "restapi"
# Public client code (spkm/isams-api) matches this exact text to tell a missing pupil apart.
STUDENT_CONTACTS_MISSING = "Failed to read student contacts - Student does not exist."
_K = TypeVar("_K")
_R = TypeVar("_R")


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
    app.include_router(control_router(state))
    app.add_exception_handler(SimHTTPError, _sim_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_middleware(_OutageAndCountMiddleware, state=state)
    return app


async def _sim_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SimHTTPError)
    return json_response({"message": exc.message}, exc.status, exc.headers)


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    """Answer an unknown route or method with iSAMS's `{"message"}`, not FastAPI's `detail`."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return json_response({"message": str(exc.detail)}, exc.status_code, headers)


async def _validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )
    return json_response({"message": f"The request is invalid: {problems}"}, 400)


class _OutageAndCountMiddleware:
    """Answer 503 to iSAMS routes during a simulated outage; count requests and statuses."""

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
        status = 0

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, counting_send)
        route = scope.get("route")
        template = getattr(route, "path", None) or "(no route)"
        self.state.requests[f"{scope.get('method', '?')} {template}"] += 1
        self.state.statuses[str(status)] += 1


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
        return json_response(
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
    return json_response({"error": error, "error_description": description}, status)


# Gates: token, throttle, module permission, transient fault ------------------------------


def _token_check(state: SimState) -> Callable[[Request], None]:
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

    return require_token


def _module_gate(state: SimState, module: Module) -> DependsParam:
    """Guard one module's routes: throttle, then permission, then an injected fault."""

    def check() -> None:
        _refuse_when_throttled(state)
        _refuse_without_permission(state, module)
        _fail_when_injected(state)

    gate: DependsParam = Depends(check)
    return gate


def _refuse_when_throttled(state: SimState) -> None:
    """Answer 429 once the API key's budget is used up.

    iSAMS throttles per API key (a REST client); the simulator has one client, so all its
    tokens share one budget. The 429 status and the message are ASSUMED: iSAMS does not
    publish what a throttled key is answered.
    """
    wait = state.throttle.acquire(state.config.client_id)
    if wait > 0:
        state.counters["throttled"] += 1
        message = (
            f"The request limit for this API key has been reached ({state.throttle.limit}"
            f" requests per {state.throttle.window:g} seconds)."
        )
        raise SimHTTPError(429, message, {"Retry-After": retry_after(wait)})


def _refuse_without_permission(state: SimState, module: Module) -> None:
    """Answer iSAMS's 403 when the REST client lacks the module's permission."""
    if not state.permissions.allows(module):
        state.counters["forbidden"] += 1
        raise SimHTTPError(403, NOT_AUTHORISED)


def _fail_when_injected(state: SimState) -> None:
    """Answer a transient 500 (an SQL deadlock in iSAMS) when the fault injector says so."""
    if state.faults.should_fail():
        state.counters["serverErrors"] += 1
        raise SimHTTPError(500, TRANSIENT_ERROR)


# iSAMS REST API --------------------------------------------------------------------------

PageParam = Annotated[int | None, Query()]
PageSizeParam = Annotated[int | None, Query(alias="pageSize")]
ExpandParam = Annotated[list[str] | None, Query()]
DeceasedParam = Annotated[bool, Query(alias="includeDeceased")]
Reader = Callable[[int, int], tuple[int, list[Record]]]


def _api_router(state: SimState) -> APIRouter:
    router = APIRouter(prefix="/api", dependencies=[Depends(_token_check(state))], tags=["isams"])
    # Routes are added to this one router, not to sub-routers: FastAPI keeps an included
    # router's routes as they are, so their templates (counted in stats) would lose "/api".
    _add_pupil_routes(router, state)
    _add_staff_and_school_routes(router, state)
    return router


def _add_pupil_routes(router: APIRouter, state: SimState) -> None:
    school = state.school

    def gate(module: Module) -> list[DependsParam]:
        return [_module_gate(state, module)]

    @router.get("/students", operation_id="listStudents", dependencies=gate("students"))
    async def list_students(
        page: PageParam = None, page_size: PageSizeParam = None, expand: ExpandParam = None
    ) -> Response:
        """Page through current pupils only: leavers and applicants are on other lists."""
        wanted = expansions(expand)
        return _listing(
            state,
            functools.partial(school.pupils, "current"),
            STUDENTS_COLLECTION,
            (page, page_size),
            lambda r: expand_record("student", r, wanted),
        )

    # Declared before /students/{schoolId}, which would otherwise take "contacts" as an id.
    @router.get("/students/contacts", operation_id="listContacts", dependencies=gate("contacts"))
    async def list_contacts(
        page: PageParam = None,
        page_size: PageSizeParam = None,
        expand: ExpandParam = None,
        include_deceased: DeceasedParam = False,
    ) -> Response:
        """Page through current pupils' contacts; `countryIsoMappings` is the one expansion."""
        wanted = expansions(expand)
        return _listing(
            state,
            lambda start, stop: school.listed_contacts(start, stop, include_deceased),
            "contacts",
            (page, page_size),
            lambda r: expand_record("contact", r, wanted),
        )

    @router.get("/students/{schoolId}", operation_id="getStudent", dependencies=gate("students"))
    async def get_student(schoolId: str, expand: ExpandParam = None) -> Response:  # noqa: N803  (iSAMS name)
        record = _found(functools.partial(school.pupil, "current"), schoolId)
        return json_response(expand_record("student", record, expansions(expand)))

    @router.get(
        "/students/{schoolId}/contacts",
        operation_id="getStudentContacts",
        dependencies=gate("contacts"),
    )
    async def get_student_contacts(
        schoolId: str,  # noqa: N803  (iSAMS name)
        expand: ExpandParam = None,
        include_deceased: DeceasedParam = False,
    ) -> Response:
        """List one current pupil's contacts, unpaged; only `expand=customFields` applies."""
        try:
            contacts = school.current_contacts_of(schoolId, include_deceased)
        except UnknownRecordError:
            raise SimHTTPError(404, STUDENT_CONTACTS_MISSING) from None
        wanted = expansions(expand)
        return json_response({"contacts": [student_contact_record(c, wanted) for c in contacts]})

    @router.get("/alumni", operation_id="listAlumni", dependencies=gate("alumni"))
    async def list_alumni(page: PageParam = None, page_size: PageSizeParam = None) -> Response:
        """Page through former pupils, with when and why they left."""
        reader = functools.partial(school.pupils, "alumni")
        return _listing(state, reader, ALUMNI_COLLECTION, (page, page_size), alumni_record)

    @router.get("/alumni/{schoolId}", operation_id="getAlumnus", dependencies=gate("alumni"))
    async def get_alumnus(schoolId: str) -> Response:  # noqa: N803  (iSAMS name)
        record = _found(functools.partial(school.pupil, "alumni"), schoolId)
        return json_response(alumni_record(record))

    @router.get(
        "/admissions/applicants/students",
        operation_id="listApplicants",
        dependencies=gate("applicants"),
    )
    async def list_applicants(page: PageParam = None, page_size: PageSizeParam = None) -> Response:
        """Page through future pupils, in the admissions module's shape."""
        reader = functools.partial(school.pupils, "applicants")
        return _listing(state, reader, APPLICANTS_COLLECTION, (page, page_size), applicant_record)


def _add_staff_and_school_routes(router: APIRouter, state: SimState) -> None:
    school = state.school
    staff = [_module_gate(state, "employees")]

    @router.get("/humanresources/employees", operation_id="listEmployees", dependencies=staff)
    async def list_employees(
        page: PageParam = None, page_size: PageSizeParam = None, expand: ExpandParam = None
    ) -> Response:
        wanted = expansions(expand)
        return _listing(
            state,
            functools.partial(school.page, "employees"),
            "employees",
            (page, page_size),
            lambda r: expand_record("employee", r, wanted),
        )

    @router.get("/humanresources/employees/{id}", operation_id="getEmployee", dependencies=staff)
    async def get_employee(id: str, expand: ExpandParam = None) -> Response:
        record = _found(school.employee, _int_id(id, "employee"))
        return json_response(expand_record("employee", record, expansions(expand)))

    @router.get(
        "/school/yeargroups",
        operation_id="listYearGroups",
        dependencies=[_module_gate(state, "yeargroups")],
    )
    async def list_year_groups() -> Response:
        """List every year group, unpaged, as iSAMS does (page parameters are ignored)."""
        return json_response({"yearGroups": school.year_groups})


def _listing(
    state: SimState,
    read: Reader,
    collection: str,
    paging: tuple[int | None, int | None],
    shape: Callable[[Record], Record],
) -> Response:
    """Answer one page of a list in iSAMS's list body shape."""
    page, size = _paging(state.config, *paging)
    start = (page - 1) * size
    total, records = read(start, start + size)
    return json_response(_page_body(collection, [shape(r) for r in records], page, size, total))


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
