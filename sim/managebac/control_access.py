"""Control routes for what stands in front of the API: tokens, rate limits, serving mode."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sim.managebac.deps import SimDep, read_json, validated
from sim.managebac.errors import ValidationFailedError
from sim.managebac.modes import LOGIN_PAGE, LOGIN_PATH, ModeName, ServingMode
from sim.managebac.ratelimit import PERIOD_SECONDS, ResetFormat
from sim.managebac.rights import ALL_RIGHTS, unknown_rights
from sim.managebac.state import SimState

router = APIRouter(prefix="/_sim", tags=["simulator control"])


class TokenUpdate(BaseModel):
    """Body of `PUT /_sim/tokens/{token}`; omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    rights: list[str] | None = None
    """The token's complete set of rights."""
    grant: list[str] = Field(default_factory=list)
    revoke: list[str] = Field(default_factory=list)


class LimitsUpdate(BaseModel):
    """Body of `PUT /_sim/limits`; omitted fields keep their value, `null` limit = none."""

    model_config = ConfigDict(extra="forbid")

    per_client_per_second: int | None = Field(default=None, ge=1)
    per_token_per_second: int | None = Field(default=None, ge=1)
    reset_format: ResetFormat | None = None
    retry_after: bool | None = None


class ModeUpdate(BaseModel):
    """Body of `PUT /_sim/mode`: the whole mode (omitted fields take their defaults)."""

    model_config = ConfigDict(extra="forbid")

    mode: ModeName
    status: int = Field(default=200, ge=200, le=599)
    location: str = Field(default=LOGIN_PATH, min_length=1)
    requests: int | None = Field(default=None, ge=1)
    """Answer this many API requests so, then go back to normal; None = until changed."""


@router.get("/tokens", operation_id="sim_tokens")
async def get_tokens(sim: SimDep) -> JSONResponse:
    """Return every token with its switch and rights."""
    return JSONResponse(sim.tokens.as_dict())


@router.put("/tokens/{token}", operation_id="sim_set_token")
async def set_token(token: str, request: Request, sim: SimDep) -> JSONResponse:
    """Enable or disable a token, or change its rights; an unknown token is added."""
    update = validated(TokenUpdate, await read_json(request))
    named = [*(update.rights or []), *update.grant, *update.revoke]
    unknown = unknown_rights(frozenset(named))
    if unknown:
        raise ValidationFailedError({"rights": [f"unknown: {', '.join(unknown)}"]})
    current = sim.tokens.get(token)
    base = current.rights if current is not None else ALL_RIGHTS  # a new token: every right
    if update.rights is not None:
        base = frozenset(update.rights)
    rights = (base | set(update.grant)) - set(update.revoke)
    return JSONResponse(sim.tokens.put(token, update.enabled, rights).as_dict())


def _limits(sim: SimState) -> dict[str, object]:
    return {
        "per_client_per_second": sim.faults.rate_limit_per_second,
        "per_token_per_second": sim.limits.per_token,
        "period_seconds": PERIOD_SECONDS,
        "reset_format": sim.limits.reset_format,
        "retry_after": sim.limits.retry_after,
    }


@router.get("/limits", operation_id="sim_limits")
async def get_limits(sim: SimDep) -> JSONResponse:
    """Return the rate limits in force (the per-client one is `/_sim/faults`' too)."""
    return JSONResponse(_limits(sim))


@router.put("/limits", operation_id="sim_set_limits")
async def set_limits(request: Request, sim: SimDep) -> JSONResponse:
    """Change some rate-limit settings now; the answer is the settings in force."""
    update = validated(LimitsUpdate, await read_json(request))
    given = update.model_fields_set
    for name in given & {"reset_format", "retry_after"}:
        if getattr(update, name) is None:
            raise ValidationFailedError({name: ["cannot be null"]})
    if "per_client_per_second" in given:
        sim.faults.rate_limit_per_second = update.per_client_per_second
    if "per_token_per_second" in given:
        sim.limits.per_token = update.per_token_per_second
    if update.reset_format is not None:
        sim.limits.reset_format = update.reset_format
    if update.retry_after is not None:
        sim.limits.retry_after = update.retry_after
    return JSONResponse(_limits(sim))


@router.get("/mode", operation_id="sim_mode")
async def get_mode(sim: SimDep) -> JSONResponse:
    """Return how API routes answer now."""
    return JSONResponse(sim.mode.as_dict())


@router.put("/mode", operation_id="sim_set_mode")
async def set_mode(request: Request, sim: SimDep) -> JSONResponse:
    """Make API routes answer normally, with an HTML maintenance page, or with a redirect."""
    update = validated(ModeUpdate, await read_json(request))
    sim.mode = ServingMode(update.mode, update.status, update.location, update.requests)
    return JSONResponse(sim.mode.as_dict())


login_router = APIRouter(tags=["simulator control"])


@login_router.get(LOGIN_PATH, operation_id="sim_login_page", response_class=HTMLResponse)
async def login_page() -> HTMLResponse:
    """Serve the login page the redirect mode points to (a client following it gets HTML)."""
    return HTMLResponse(LOGIN_PAGE)
