"""Odd answers: an HTML maintenance page or a login redirect instead of the API's JSON."""

from __future__ import annotations

import pytest

from tests.sim.managebac_support import client_for

STUDENT = {"student": {"email": "ada@s.test", "last_name": "Lovelace"}}


@pytest.mark.parametrize("status", [200, 503])
async def test_maintenance_answers_an_html_page_with_the_chosen_status(status: int) -> None:
    async with client_for() as client:
        mode = await client.put("/_sim/mode", json={"mode": "maintenance", "status": status})
        assert mode.json() == {
            "mode": "maintenance",
            "status": status,
            "location": "/login",
            "requests": None,
        }
        for response in (
            await client.get("/v2/students"),
            await client.post("/v2/students", json=STUDENT),
            await client.get("/v2/students", headers={"auth-token": "wrong"}),  # an edge page
        ):
            assert response.status_code == status
            assert response.headers["content-type"].startswith("text/html")
            assert "maintenance" in response.text
        assert (await client.get("/_sim/state")).json()["students"] == []  # nothing written
        assert (await client.get("/_sim/stats")).json()["statuses"] == {str(status): 3}
        await client.put("/_sim/mode", json={"mode": "normal"})
        normal = await client.get("/v2/students")
        assert normal.status_code == 200
        assert normal.headers["content-type"] == "application/json"


async def test_redirect_mode_sends_api_calls_to_a_login_page() -> None:
    async with client_for() as client:
        await client.put("/_sim/mode", json={"mode": "redirect"})
        response = await client.get("/v2/students")
        assert response.status_code == 302
        assert response.headers["location"] == "/login"
        assert response.headers["content-type"].startswith("text/html")
        followed = await client.get("/v2/students", follow_redirects=True)
        assert followed.status_code == 200  # a 2xx that is not the API
        assert followed.headers["content-type"].startswith("text/html")
        assert "Sign in" in followed.text
        elsewhere = "https://login.example/sso?return=/v2"
        await client.put("/_sim/mode", json={"mode": "redirect", "location": elsewhere})
        assert (await client.get("/v2/parents")).headers["location"] == elsewhere


async def test_an_odd_mode_can_last_a_given_number_of_requests() -> None:
    async with client_for() as client:
        await client.put("/_sim/mode", json={"mode": "maintenance", "requests": 2})
        answers = [await client.get("/v2/students") for _ in range(3)]
        kinds = [(r.status_code, r.headers["content-type"].split(";")[0]) for r in answers]
        assert kinds == [(200, "text/html"), (200, "text/html"), (200, "application/json")]
        assert (await client.get("/_sim/mode")).json()["mode"] == "normal"


async def test_a_bad_mode_is_refused_and_reset_ends_a_mode() -> None:
    async with client_for() as client:
        bad = await client.put("/_sim/mode", json={"mode": "broken"})
        assert bad.status_code == 422
        assert "mode" in bad.json()["errors"]
        assert (
            await client.put("/_sim/mode", json={"mode": "maintenance", "status": 99})
        ).status_code == 422
        await client.put("/_sim/mode", json={"mode": "redirect"})
        await client.post("/_sim/reset")
        assert (await client.get("/v2/students")).status_code == 200
