"""Control routes for the school calendar: the academic-year transition, more year groups."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sim.managebac.cohorts import CohortSpec
from sim.managebac.deps import SimDep, read_json, validated
from sim.managebac.errors import ValidationFailedError
from sim.managebac.payloads import TAKEN

router = APIRouter(prefix="/_sim", tags=["simulator control"])


@router.post("/transition", operation_id="sim_transition")
async def transition(sim: SimDep) -> JSONResponse:
    """Run the academic-year transition: the graduating cohorts are archived, the others move
    up a grade, each program gets a new entry cohort; answers the ids of each."""
    return JSONResponse(sim.store.cohorts.transition().as_dict())


@router.post("/year-groups", operation_id="sim_add_year_group")
async def add_year_group(request: Request, sim: SimDep) -> JSONResponse:
    """Add a cohort now (e.g. a second one in a grade); body as `SimConfig.cohorts` items."""
    spec = validated(CohortSpec, await read_json(request))
    if sim.store.cohorts.get(spec.id) is not None:
        raise ValidationFailedError({"id": [TAKEN]})
    try:
        sim.store.cohorts.add(spec)
    except ValueError as exc:
        raise ValidationFailedError({"grade": [str(exc)]}) from exc
    created = next(g for g in sim.store.year_group_state() if g["id"] == spec.id)
    return JSONResponse(created, status_code=201)
