"""Build the ManageBac+ simulator: the v2 subset, the `/_sim` control API and the gate."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from sim.managebac import control, control_access, control_school
from sim.managebac.api import api_routers
from sim.managebac.config import SimConfig
from sim.managebac.errors import SimError
from sim.managebac.gate import ApiGate
from sim.managebac.state import SimState
from sim.managebac.store import Clock


def create_app(config: SimConfig, *, clock: Clock = time.time) -> FastAPI:
    """Return a simulator app with its own in-memory state; `clock` is for tests."""
    app = FastAPI(
        title="ManageBac+ simulator",
        version="v2-subset",
        docs_url="/_sim/docs",
        redoc_url=None,
        openapi_url="/_sim/openapi.json",
    )
    sim = SimState.build(config, clock)
    app.state.sim = sim
    routers = api_routers()
    for router in routers:
        app.include_router(router)
    templates = [
        route.path for router in routers for route in router.routes if isinstance(route, APIRoute)
    ]
    app.include_router(control.router)
    app.include_router(control_school.router)
    app.include_router(control_access.router)
    app.include_router(control_access.login_router)
    app.add_exception_handler(SimError, _sim_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(ApiGate, sim=sim, templates=templates)
    return app


async def _sim_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SimError)  # registered for SimError only
    return JSONResponse(exc.body(), status_code=exc.status_code)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # registered for HTTPException only
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """Answer a non-numeric id with 404, as ManageBac+'s record lookup does."""
    assert isinstance(exc, RequestValidationError)  # registered for it only
    if any(error["loc"][0] == "path" for error in exc.errors()):
        return JSONResponse({"error": "Not Found"}, status_code=404)
    return JSONResponse({"error": "Invalid payload data structure."}, status_code=422)
