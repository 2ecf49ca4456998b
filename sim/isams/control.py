"""The simulator's control API under `/_sim` (not iSAMS): look, change records, inject faults.

Look: `GET /stats` (requests per route template, answers per status, refusals),
`POST /stats/reset`, `GET /school` (ids per list, joint and deceased contacts).
Change: `POST /edit/student/{schoolId}` (a `systemStatus` edit moves the pupil between
lists), `POST /leave/student/{schoolId}` (`{"leavingDate", "leavingReason"}`, both
optional), `POST /delete/student/{schoolId}`, `POST /edit/contact/{id}`,
`POST /delete/contact/{id}`, `POST /edit/staff/{id}`.
Fail: `POST /down`, `POST /tokens/expire`, `GET`/`PUT /permissions` (`{"contacts": false}`),
`GET`/`PUT /throttle` (`{"limit": 100, "windowSeconds": 3600}`), `GET`/`PUT /faults`
(`{"errorRate": 0.1, "failNext": 2}`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from sim.isams.gate import Module
from sim.isams.state import SimHTTPError, SimState, json_response
from sim.isams.store import Record, UnknownFieldError, UnknownRecordError

PatchBody = Annotated[dict[str, Any], Body()]
PermissionsBody = Annotated[dict[Module, bool], Body()]


class DownRequest(BaseModel):
    """Body of `POST /_sim/down`: answer 503 for this long (0 ends an outage)."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=24 * 3600)


class LeaveRequest(BaseModel):
    """Body of `POST /_sim/leave/student/{schoolId}`; both optional (today, no reason)."""

    model_config = ConfigDict(extra="forbid")

    leavingDate: date | None = None  # noqa: N815  (iSAMS name)
    leavingReason: str | None = Field(default=None, max_length=200)  # noqa: N815  (iSAMS name)


class ThrottleRequest(BaseModel):
    """Body of `PUT /_sim/throttle`: `limit` requests per `windowSeconds` (null: none)."""

    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(ge=1)
    windowSeconds: float = Field(default=3600.0, gt=0, le=7 * 24 * 3600)  # noqa: N815


class FaultsRequest(BaseModel):
    """Body of `PUT /_sim/faults`: fail the next `failNext` requests, then `errorRate` of them."""

    model_config = ConfigDict(extra="forbid")

    errorRate: float = Field(default=0.0, ge=0.0, le=1.0)  # noqa: N815
    failNext: int = Field(default=0, ge=0, le=100_000)  # noqa: N815


def control_router(state: SimState) -> APIRouter:
    """Build the `/_sim` routes over one simulator's state."""
    router = APIRouter(prefix="/_sim", tags=["simulator"])
    _add_record_routes(router, state)
    _add_gate_routes(router, state)
    return router


def _edited(state: SimState, apply: Callable[[], Record]) -> Response:
    """Run one change, count it, and answer the changed (or removed) record."""
    try:
        record = apply()
    except UnknownRecordError as exc:
        raise SimHTTPError(404, str(exc.args[0])) from None
    except UnknownFieldError as exc:
        raise SimHTTPError(400, str(exc)) from None
    state.counters["edits"] += 1
    return json_response(record)


def _int_id(value: str, kind: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SimHTTPError(404, f"No {kind} was found with the id {value}.") from None


def _add_record_routes(router: APIRouter, state: SimState) -> None:
    school = state.school

    @router.get("/stats", operation_id="simStats")
    async def stats() -> Response:
        return json_response(state.stats())

    @router.post("/stats/reset", operation_id="simResetStats")
    async def reset_stats() -> Response:
        state.reset_counts()
        return json_response(state.stats())

    @router.get("/school", operation_id="simSchool")
    async def summary() -> Response:
        return json_response(school.summary())

    @router.post("/edit/student/{schoolId}", operation_id="simEditStudent")
    async def edit_student(schoolId: str, patch: PatchBody) -> Response:  # noqa: N803  (iSAMS name)
        return _edited(state, lambda: school.edit_student(schoolId, patch))

    @router.post("/leave/student/{schoolId}", operation_id="simLeaveStudent")
    async def leave_student(schoolId: str, body: LeaveRequest | None = None) -> Response:  # noqa: N803
        """Make a current pupil a leaver: out of /api/students, into /api/alumni."""
        request = body or LeaveRequest()
        return _edited(
            state, lambda: school.leave(schoolId, request.leavingDate, request.leavingReason)
        )

    @router.post("/delete/student/{schoolId}", operation_id="simDeleteStudent")
    async def delete_student(schoolId: str) -> Response:  # noqa: N803  (iSAMS name)
        """Remove a pupil and their contacts from every list, as after a data error."""
        return _edited(state, lambda: school.remove_student(schoolId))

    @router.post("/edit/contact/{contact_id}", operation_id="simEditContact")
    async def edit_contact(contact_id: str, patch: PatchBody) -> Response:
        return _edited(state, lambda: school.edit_contact(_int_id(contact_id, "contact"), patch))

    @router.post("/edit/staff/{employee_id}", operation_id="simEditStaff")
    async def edit_staff(employee_id: str, patch: PatchBody) -> Response:
        employee = _int_id(employee_id, "employee")
        return _edited(state, lambda: school.edit_employee(employee, patch))

    @router.post("/delete/contact/{contact_id}", operation_id="simDeleteContact")
    async def delete_contact(contact_id: str) -> Response:
        return _edited(state, lambda: school.remove_contact(_int_id(contact_id, "contact")))


def _add_gate_routes(router: APIRouter, state: SimState) -> None:
    @router.post("/down", operation_id="simDown")
    async def down(body: DownRequest) -> Response:
        state.down_until = state.config.monotonic() + body.seconds
        return json_response({"downForSeconds": body.seconds})

    @router.post("/tokens/expire", operation_id="simExpireTokens")
    async def expire_tokens() -> Response:
        expired = len(state.tokens)
        state.tokens.clear()
        return json_response({"expired": expired})

    @router.get("/permissions", operation_id="simPermissions")
    async def permissions() -> Response:
        return json_response(state.permissions.as_dict())

    @router.put("/permissions", operation_id="simSetPermissions")
    async def set_permissions(body: PermissionsBody) -> Response:
        """Grant (true) or revoke (false) modules, e.g. `{"contacts": false}`; others stay."""
        state.permissions.update(body)
        return json_response(state.permissions.as_dict())

    @router.get("/throttle", operation_id="simThrottle")
    async def throttle() -> Response:
        return json_response(state.throttle.as_dict())

    @router.put("/throttle", operation_id="simSetThrottle")
    async def set_throttle(body: ThrottleRequest) -> Response:
        state.throttle.configure(body.limit, body.windowSeconds)
        return json_response(state.throttle.as_dict())

    @router.get("/faults", operation_id="simFaults")
    async def faults() -> Response:
        return json_response(state.faults.as_dict())

    @router.put("/faults", operation_id="simSetFaults")
    async def set_faults(body: FaultsRequest) -> Response:
        state.faults.configure(body.errorRate, body.failNext)
        return json_response(state.faults.as_dict())
