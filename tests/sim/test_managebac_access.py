"""Tokens carry per-endpoint rights: 403 on an endpoint without the right, 401 when disabled."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from pydantic import ValidationError

from sim.managebac import SimConfig
from sim.managebac.api import api_routers
from sim.managebac.rights import ALL_RIGHTS, PERMISSIONS_PATH, ROUTE_RIGHTS
from tests.sim.managebac_support import TOKEN, client_on, sim_app

READER = "reader-token"
READS = frozenset({"students/index", "students/show"})
STUDENT = {"student": {"email": "ada@s.test", "last_name": "Lovelace"}}


def school() -> SimConfig:
    return SimConfig(token=TOKEN, tokens={READER: READS})


async def test_permissions_list_the_rights_of_the_token_asking() -> None:
    app = sim_app(school())
    async with client_on(app) as admin, client_on(app, READER) as reader:
        everything = await admin.get(PERMISSIONS_PATH)
        some = await reader.get(PERMISSIONS_PATH)
    assert everything.status_code == 200
    assert everything.json() == {"permissions": sorted(ALL_RIGHTS)}
    assert "parents/children/create" in everything.json()["permissions"]
    assert some.json() == {"permissions": ["students/index", "students/show"]}


async def test_a_missing_right_is_refused_on_that_endpoint_only() -> None:
    app = sim_app(school())
    async with client_on(app, READER) as reader, client_on(app) as admin:
        assert (await reader.get("/v2/students")).status_code == 200
        refused = await reader.post("/v2/students", json=STUDENT)
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "Forbidden",
            "reason": "This token has no permission for students/create",
        }
        for path in ("/v2/teachers", "/v2/year-groups", "/v2/school/grades"):
            assert (await reader.get(path)).status_code == 403
        assert (await admin.get("/_sim/state")).json()["students"] == []  # nothing written
        created = await admin.post("/v2/students", json=STUDENT)
        assert created.status_code == 201
        sid = created.json()["student"]["id"]
        assert (await reader.get(f"/v2/students/{sid}")).status_code == 200
        bad_query = await reader.get("/v2/teachers", params={"auth_token": READER})
        assert bad_query.status_code == 403  # the same token, however it is sent


async def test_a_disabled_token_is_401_everywhere_until_enabled_again() -> None:
    app = sim_app(school())
    async with client_on(app) as admin, client_on(app, READER) as reader:
        switched = await admin.put(f"/_sim/tokens/{TOKEN}", json={"enabled": False})
        assert switched.json() == {"enabled": False, "rights": sorted(ALL_RIGHTS)}
        for path in ("/v2/students", PERMISSIONS_PATH):
            response = await admin.get(path)
            assert response.status_code == 401
            assert response.json() == {"error": "Access Denied"}
        assert (await reader.get("/v2/students")).status_code == 200  # other tokens work
        await admin.put(f"/_sim/tokens/{TOKEN}", json={"enabled": True})
        assert (await admin.get("/v2/students")).status_code == 200


async def test_rights_change_at_run_time() -> None:
    app = sim_app(school())
    async with client_on(app) as admin:
        sid = (await admin.post("/v2/students", json=STUDENT)).json()["student"]["id"]
        patch = {"student": {"first_name": "Ada"}}
        revoked = await admin.put(f"/_sim/tokens/{TOKEN}", json={"revoke": ["students/update"]})
        assert "students/update" not in revoked.json()["rights"]
        assert (await admin.patch(f"/v2/students/{sid}", json=patch)).status_code == 403
        assert (await admin.get(f"/v2/students/{sid}")).status_code == 200
        await admin.put(f"/_sim/tokens/{TOKEN}", json={"grant": ["students/update"]})
        assert (await admin.patch(f"/v2/students/{sid}", json=patch)).status_code == 200

        only = await admin.put(f"/_sim/tokens/{READER}", json={"rights": ["teachers/index"]})
        assert only.json() == {"enabled": True, "rights": ["teachers/index"]}
        typo = await admin.put(f"/_sim/tokens/{READER}", json={"grant": ["student/index"]})
        assert typo.status_code == 422
        assert typo.json() == {"errors": {"rights": ["unknown: student/index"]}}
        fresh = await admin.put("/_sim/tokens/new-token", json={"revoke": ["school/show"]})
        assert fresh.json()["rights"] == sorted(ALL_RIGHTS - {"school/show"})
        tokens = (await admin.get("/_sim/tokens")).json()
        assert set(tokens) == {TOKEN, READER, "new-token"}
        async with client_on(app, "new-token") as newcomer:
            assert (await newcomer.get("/v2/students")).status_code == 200
            assert (await newcomer.get("/v2/school")).status_code == 403

        await admin.post("/_sim/reset")
        assert set((await admin.get("/_sim/tokens")).json()) == {TOKEN, READER}
        assert (await admin.get("/_sim/tokens")).json()[TOKEN]["rights"] == sorted(ALL_RIGHTS)


async def test_the_main_token_named_in_tokens_takes_those_rights() -> None:
    app = sim_app(SimConfig(token=TOKEN, tokens={TOKEN: frozenset({"teachers/index"})}))
    async with client_on(app) as client:
        assert (await client.get(PERMISSIONS_PATH)).json() == {"permissions": ["teachers/index"]}
        assert (await client.get("/v2/students")).status_code == 403


def test_every_api_route_needs_a_named_right() -> None:
    routes = {
        (method, route.path)
        for router in api_routers()
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert routes - set(ROUTE_RIGHTS) == {("GET", PERMISSIONS_PATH)}
    assert set(ROUTE_RIGHTS) - routes == set()  # no right names a route that is gone


def test_unknown_rights_are_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="unknown rights for a token: students/idx"):
        SimConfig(tokens={"t": frozenset({"students/idx"})})


async def test_requests_are_counted_per_token() -> None:
    app = sim_app(school())
    async with client_on(app) as admin, client_on(app, READER) as reader:
        await admin.get("/v2/students")
        await reader.get("/v2/students")
        await reader.get("/v2/teachers")
        await admin.get("/v2/students", headers={"auth-token": "forged"})
        await admin.get("/v2/students", headers={"auth-token": ""})
        by_token = (await admin.get("/_sim/stats")).json()["by_token"]
    assert {token: counts["statuses"] for token, counts in by_token.items()} == {
        TOKEN: {"200": 1},
        READER: {"200": 1, "403": 1},
        "<unknown>": {"401": 1},
        "<none>": {"401": 1},
    }
    assert by_token[READER]["total"] == 2
