"""The simulator's own control API under `/_sim` (not part of ManageBac+): look, steer, reset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sim.managebac.deps import SimDep, read_json, validated
from sim.managebac.errors import InvalidPayloadError
from sim.managebac.models import USER_KINDS
from sim.managebac.seed import apply_seed
from sim.managebac.store import UserQuery

router = APIRouter(prefix="/_sim", tags=["simulator control"])
_ALL = UserQuery()


class FaultsUpdate(BaseModel):
    """Body of `PUT /_sim/faults`; omitted fields keep their value, `null` rate limit = none."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    latency_ms: int | None = Field(default=None, ge=0, le=60_000)
    rate_limit_per_second: int | None = Field(default=None, ge=1)


@router.get("/state", operation_id="sim_state")
async def state(sim: SimDep) -> JSONResponse:
    """Return every user (archived too), every link, every year group and the academic year."""
    store = sim.store
    users = {f"{kind}s": [store.render(r) for r in store.query(kind, _ALL)] for kind in USER_KINDS}
    return JSONResponse(
        {
            **users,
            "links": store.links(),
            "year_groups": store.year_group_state(),
            "academic_year": store.cohorts.academic_year,
        }
    )


@router.get("/stats", operation_id="sim_stats")
async def stats(sim: SimDep) -> JSONResponse:
    """Return request counts (per route, status, token, client address) and write counts."""
    counts = sim.stats.as_dict()
    applied = sim.store.write_count - sim.store.noop_write_count
    return JSONResponse(
        {
            **counts,
            "writes": sim.store.write_count,
            "noop_writes": sim.store.noop_write_count,
            "applied_writes": applied,
            "requests_per_applied_write": counts["total"] / applied if applied else None,
        }
    )


@router.get("/writes", operation_id="sim_writes")
async def writes(
    sim: SimDep,
    since: float | None = None,
    kind: str | None = None,
    student_id: str | None = None,
    email: str | None = None,
    limit: int | None = Query(default=None, ge=1),
) -> JSONResponse:
    """Return the logged writes (oldest first), optionally filtered."""
    entries: list[dict[str, Any]] = [
        entry
        for entry in sim.store.writes
        if (since is None or entry["at"] > since)
        and (kind is None or entry["kind"] == kind)
        and (student_id is None or entry.get("student_id") == student_id)
        and (email is None or (entry.get("email") or "").lower() == email.lower())
    ]
    return JSONResponse(entries[-limit:] if limit else entries)


@router.post("/reset", operation_id="sim_reset")
async def reset(sim: SimDep) -> JSONResponse:
    """Forget all data, counts and writes; restore the configured year groups, faults, limits,
    tokens and serving mode."""
    sim.reset()
    return JSONResponse({"status": "ok"})


@router.get("/faults", operation_id="sim_faults")
async def get_faults(sim: SimDep) -> JSONResponse:
    """Return the current faults."""
    return JSONResponse(sim.faults.as_dict())


@router.put("/faults", operation_id="sim_set_faults")
async def set_faults(request: Request, sim: SimDep) -> JSONResponse:
    """Change some faults now; the answer is the faults in force."""
    update = validated(FaultsUpdate, await read_json(request))
    changes = {name: getattr(update, name) for name in update.model_fields_set}
    for name, value in changes.items():
        if value is None and name != "rate_limit_per_second":
            raise InvalidPayloadError(f"{name} cannot be null")
    for name, value in changes.items():
        setattr(sim.faults, name, value)
    return JSONResponse(sim.faults.as_dict())


@router.post("/seed", operation_id="sim_seed")
async def seed(request: Request, sim: SimDep) -> JSONResponse:
    """Preload users and links; answers the created records with their ids."""
    return JSONResponse(apply_seed(sim.store, await read_json(request)), status_code=201)
