"""The ManageBac+ v2 subset for people: students, parents, teachers, parent-child links.

Each handler only translates: parse the body, call one store method, render the answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from sim.managebac import payloads
from sim.managebac.deps import SimDep, paginate, read_json, user_query
from sim.managebac.models import ChildRelation, UserKind
from sim.managebac.school_api import school_routers

RecordId = Annotated[int, Path(alias="id")]
ParentId = Annotated[int, Path(alias="parent_id")]
OK = {"status": "ok"}


def user_router(kind: UserKind, plural: str) -> APIRouter:
    """Return list/create/get/patch/archive/unarchive for one user kind."""
    router = APIRouter(prefix=f"/v2/{plural}", tags=[plural])

    @router.get("", operation_id=f"list_{plural}")
    async def list_users(request: Request, sim: SimDep) -> JSONResponse:
        records = sim.store.query(kind, user_query(request.query_params))
        page, meta = paginate(records, request.query_params)
        return JSONResponse({plural: [sim.store.render(r) for r in page], "meta": meta})

    @router.post("", operation_id=f"create_{kind}")
    async def create_user(request: Request, sim: SimDep) -> JSONResponse:
        parsed = payloads.parse_user(kind, await read_json(request), creating=True)
        record = sim.store.create(kind, parsed)
        welcome = "enqueued" if parsed.send_welcome_email else "not_enqueued"
        body = {kind: sim.store.render(record), "options": {"welcome_email": welcome}}
        return JSONResponse(body, status_code=201)

    @router.get("/{id}", operation_id=f"get_{kind}")
    async def get_user(record_id: RecordId, sim: SimDep) -> JSONResponse:
        return JSONResponse({kind: sim.store.render(sim.store.get(kind, record_id))})

    @router.patch("/{id}", operation_id=f"update_{kind}")
    async def update_user(record_id: RecordId, request: Request, sim: SimDep) -> JSONResponse:
        parsed = payloads.parse_user(kind, await read_json(request), creating=False)
        return JSONResponse({kind: sim.store.render(sim.store.update(kind, record_id, parsed))})

    @router.put("/{id}/archive", operation_id=f"archive_{kind}")
    async def archive_user(record_id: RecordId, request: Request, sim: SimDep) -> JSONResponse:
        body = await read_json(request)
        if kind == "student":
            sim.store.get(kind, record_id)
            sim.store.archive(kind, record_id, payloads.parse_archive(body))
        else:
            sim.store.archive(kind, record_id)
        return JSONResponse(OK)

    @router.put("/{id}/unarchive", operation_id=f"unarchive_{kind}")
    async def unarchive_user(record_id: RecordId, sim: SimDep) -> JSONResponse:
        sim.store.unarchive(kind, record_id)
        return JSONResponse(OK)

    return router


children_router = APIRouter(prefix="/v2/parents/{parent_id}/children", tags=["relationships"])


@children_router.get("", operation_id="list_children")
async def list_children(parent_id: ParentId, request: Request, sim: SimDep) -> JSONResponse:
    """List a parent's children with their relationship."""
    page, meta = paginate(sim.store.children_of(parent_id), request.query_params)
    return JSONResponse({"children": [c.model_dump() for c in page], "meta": meta})


@children_router.post("", operation_id="create_child")
async def create_child(parent_id: ParentId, request: Request, sim: SimDep) -> JSONResponse:
    """Link a student to a parent; 422 when already linked."""
    child_id, relationship, errors = payloads.parse_child(await read_json(request))
    link = sim.store.link(parent_id, child_id, relationship, errors)
    return JSONResponse({"child": link.model_dump()}, status_code=201)


@children_router.put("", operation_id="replace_children")
async def replace_children(parent_id: ParentId, request: Request, sim: SimDep) -> JSONResponse:
    """Make the given children the parent's complete set."""
    links, errors = payloads.parse_children(await read_json(request))
    wanted = [ChildRelation(id=child_id, relationship=rel) for child_id, rel in links]
    result = sim.store.replace_links(parent_id, wanted, errors)
    return JSONResponse({"children": [c.model_dump() for c in result]})


@children_router.get("/{id}", operation_id="get_child")
async def get_child(parent_id: ParentId, child_id: RecordId, sim: SimDep) -> JSONResponse:
    """Return one link."""
    return JSONResponse({"child": sim.store.get_link(parent_id, child_id).model_dump()})


@children_router.put("/{id}", operation_id="update_child")
async def update_child(
    parent_id: ParentId, child_id: RecordId, request: Request, sim: SimDep
) -> JSONResponse:
    """Change the relationship of an existing link (404 when there is none)."""
    body = await read_json(request)
    sim.store.get_link(parent_id, child_id)
    _, relationship, errors = payloads.parse_child(body)
    errors.raise_if_any()
    return JSONResponse({"child": sim.store.relink(parent_id, child_id, relationship).model_dump()})


@children_router.delete("/{id}", operation_id="delete_child")
async def delete_child(parent_id: ParentId, child_id: RecordId, sim: SimDep) -> Response:
    """Remove a link."""
    sim.store.unlink(parent_id, child_id)
    return Response(status_code=204)


def api_routers() -> list[APIRouter]:
    """Return every ManageBac+ router, children before parents so their paths win."""
    return [
        children_router,
        user_router("student", "students"),
        user_router("parent", "parents"),
        user_router("teacher", "teachers"),
        *school_routers(),
    ]
