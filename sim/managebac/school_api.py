"""The ManageBac+ v2 subset for the school: year groups, programs and grades, token rights."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sim.managebac.deps import SimDep, paginate, year_group_query
from sim.managebac.grades import Program
from sim.managebac.rights import PERMISSIONS_PATH

SCHOOL_NAME = "Simulated School"


def _program_grades(program: Program) -> dict[str, object]:
    """Render a program as `GET /v2/school/grades` does (spec example and Program schema)."""
    return {
        "name": program.name,
        "short_name": program.short_name,
        "uid": program.uid,
        "code": program.code,
        "grades": [
            {
                "name": grade.name,
                "label": grade.label or grade.name,
                "code": program.code_of(grade),
                "uid": program.uid_of(grade),
                "grade_number": grade.grade_number,
            }
            for grade in program.grades
        ],
    }


year_groups_router = APIRouter(prefix="/v2/year-groups", tags=["year groups"])


@year_groups_router.get("", operation_id="list_year_groups")
async def list_year_groups(request: Request, sim: SimDep) -> JSONResponse:
    """List the cohorts with their students; without `archived`, the configured default."""
    query = year_group_query(request.query_params)
    if query.archived is None and sim.config.year_groups_listing == "active":
        query = replace(query, archived=False)
    page, meta = paginate(sim.store.year_groups(query), request.query_params)
    return JSONResponse({"year_groups": [g.model_dump() for g in page], "meta": meta})


school_router = APIRouter(prefix="/v2/school", tags=["school"])


@school_router.get("", operation_id="get_school")
async def get_school(sim: SimDep) -> JSONResponse:
    """Return the school and its enabled programs (name and place are the simulator's)."""
    programs = sim.store.cohorts.programs.values()
    school = {
        "subdomain": "sim",
        "name": SCHOOL_NAME,
        "country": "GB",
        "language": "en",
        "programs": [program.name for program in programs],
        "enabled_programs": [{"name": p.name, "code": p.code} for p in programs],
    }
    return JSONResponse({"school": school})


@school_router.get("/grades", operation_id="list_grades")
async def list_grades(sim: SimDep) -> JSONResponse:
    """Return every program's grades with their codes (`myp;8`); not paged, as in the spec."""
    programs = [_program_grades(p) for p in sim.store.cohorts.programs.values()]
    return JSONResponse({"school": {"programs": programs}})


auth_router = APIRouter(tags=["authentication"])


@auth_router.get(PERMISSIONS_PATH, operation_id="list_token_resources")
async def list_permissions(request: Request, sim: SimDep) -> JSONResponse:
    """Return the rights of the token the request carries (the gate let only working ones in)."""
    token = sim.tokens.identify(request.scope).token
    state = sim.tokens.get(token) if token is not None else None
    rights = sorted(state.rights) if state is not None else []
    return JSONResponse({"permissions": rights})


def school_routers() -> list[APIRouter]:
    """Return the school-level routers."""
    return [year_groups_router, school_router, auth_router]
