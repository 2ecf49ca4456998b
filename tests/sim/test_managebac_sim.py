"""The ManageBac+ simulator validates, limits and fails like the real API (docs/design.md §5)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sim.managebac import SimConfig
from sim.managebac.__main__ import build_parser, config_from
from sim.managebac.cohorts import CohortSpec
from sim.managebac.rights import ALL_RIGHTS
from tests.sim.managebac_support import TOKEN, YEAR_7, YEAR_8, FakeClock, client_for


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_for() as c:
        yield c


def student(**fields: Any) -> dict[str, Any]:
    body = {"email": "ada@school.test", "last_name": "Lovelace", "student_id": "S1"} | fields
    return {"student": body}


async def create(client: httpx.AsyncClient, kind: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"/v2/{kind}s", json={kind: fields})
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()[kind]
    return record


async def test_student_lifecycle(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v2/students",
        json=student(
            first_name="Ada",
            middle_name="King",
            year_group_id=YEAR_7,
            attendance_start_date="2024-09-01",
            nationalities=["GB"],
            languages=["ENG"],
        ),
    )
    assert created.status_code == 201
    body = created.json()
    assert body["options"] == {"welcome_email": "not_enqueued"}
    record = body["student"]
    sid = record["id"]
    assert record["student_id"] == "S1"
    assert record["year_group_id"] == YEAR_7
    assert record["attendance_start_date"] == "2024-09-01"
    assert record["archived"] is False
    assert record["parent_ids"] == []
    assert record["created_at"].endswith("Z")
    assert (await client.get(f"/v2/students/{sid}")).json()["student"] == record

    patched = await client.patch(
        f"/v2/students/{sid}",
        json={"student": {"first_name": "Augusta", "middle_name": "", "last_name": None}},
    )
    assert patched.status_code == 200
    after = patched.json()["student"]
    assert after["first_name"] == "Augusta"
    assert after["middle_name"] == ""  # "" clears
    assert after["last_name"] == "Lovelace"  # null is ignored

    archived = await client.put(f"/v2/students/{sid}/archive", json={"withdrawn_on": "2026-07-01"})
    assert archived.json() == {"status": "ok"}
    after = (await client.get(f"/v2/students/{sid}")).json()["student"]
    assert after["archived"] is True
    assert after["withdrawn_on"] == "2026-07-01"
    assert "year_group_id" not in after  # archiving leaves the year group

    assert (await client.put(f"/v2/students/{sid}/unarchive")).json() == {"status": "ok"}
    after = (await client.get(f"/v2/students/{sid}")).json()["student"]
    assert after["archived"] is False
    assert "withdrawn_on" not in after
    assert "year_group_id" not in after  # must be written again after unarchive

    missing = await client.get("/v2/students/999")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Couldn't find Student with 'id'=999"}


async def test_archive_needs_exactly_one_date(client: httpx.AsyncClient) -> None:
    sid = (await create(client, "student", email="a@s.test", last_name="A"))["id"]
    for body in ({}, {"withdrawn_on": "2026-01-01", "graduated_on": "2026-01-01"}):
        response = await client.put(f"/v2/students/{sid}/archive", json=body)
        assert response.status_code == 422
        assert "base" in response.json()["errors"]
    bad_date = await client.put(f"/v2/students/{sid}/archive", json={"graduated_on": "01/02/2026"})
    assert bad_date.json() == {"errors": {"graduated_on": ["is invalid"]}}


async def test_create_without_email_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/students", json={"student": {"last_name": "Lovelace"}})
    assert response.status_code == 422
    assert response.json() == {"errors": {"email": ["can't be blank"]}}
    blanked = await client.post("/v2/parents", json={"parent": {"email": "", "last_name": "P"}})
    assert blanked.json() == {"errors": {"email": ["can't be blank"]}}


async def test_email_unique_across_users_ignoring_case(client: httpx.AsyncClient) -> None:
    await create(client, "student", email="ada@school.test", last_name="L", student_id="S1")
    for kind in ("student", "parent", "teacher"):
        response = await client.post(
            f"/v2/{kind}s", json={kind: {"email": "ADA@School.test", "last_name": "X"}}
        )
        assert response.status_code == 422
        assert response.json() == {"errors": {"email": ["has already been taken"]}}


async def test_student_id_unique_among_students(client: httpx.AsyncClient) -> None:
    first = await create(client, "student", email="a@s.test", last_name="A", student_id="S1")
    second = await create(client, "student", email="b@s.test", last_name="B", student_id="S2")
    response = await client.post("/v2/students", json=student(email="c@s.test"))
    assert response.status_code == 422
    assert response.json() == {"errors": {"student_id": ["has already been taken"]}}
    patch = await client.patch(
        f"/v2/students/{second['id']}", json={"student": {"student_id": "S1"}}
    )
    assert patch.json() == {"errors": {"student_id": ["has already been taken"]}}
    same = await client.patch(f"/v2/students/{first['id']}", json={"student": {"student_id": "S1"}})
    assert same.status_code == 200  # a record never collides with itself


async def test_unknown_field_is_invalid_payload(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/students", json=student(favourite_colour="blue"))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "Unpermitted parameters: favourite_colour"
    assert "student_id" in body["allowed_params"]
    unwrapped = await client.post("/v2/students", json={"email": "a@s.test"})
    assert unwrapped.status_code == 422
    assert "error" in unwrapped.json()


async def test_unknown_year_group_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/students", json=student(year_group_id=42))
    assert response.status_code == 422
    assert response.json() == {"errors": {"year_group_id": ["must exist"]}}
    sid = (await create(client, "student", email="a@s.test", last_name="A"))["id"]
    patch = await client.patch(f"/v2/students/{sid}", json={"student": {"year_group_id": 42}})
    assert patch.json() == {"errors": {"year_group_id": ["must exist"]}}
    groups = (await client.get("/v2/year-groups")).json()
    assert [g["id"] for g in groups["year_groups"]] == [YEAR_7, YEAR_8]
    assert groups["meta"]["total_count"] == 2


async def test_auth_token_is_required() -> None:
    async with client_for() as c:
        for headers in ({"auth-token": "wrong"}, {"auth-token": ""}):
            response = await c.get("/v2/students", headers=headers)
            assert response.status_code == 401
            assert response.json() == {"error": "Access Denied"}
        bearer = {"auth-token": "", "Authorization": f"Bearer {TOKEN}"}
        assert (await c.get("/v2/students", headers=bearer)).status_code == 200
        assert (await c.get("/_sim/stats", headers={"auth-token": ""})).status_code == 200


async def test_rate_limit_answers_429_with_headers() -> None:
    clock = FakeClock(1_000.25)
    config = SimConfig(token=TOKEN, rate_limit_per_second=2)
    async with client_for(config, clock) as c:
        first = await c.get("/v2/students")
        assert first.headers["X-RateLimit-Limit"] == "2"
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert (await c.get("/v2/students")).status_code == 200
        refused = await c.get("/v2/students")
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        assert refused.headers["X-RateLimit-Limit"] == "2"
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert refused.headers["X-RateLimit-Reset"] == "1001"
        clock.now = 1_001.0
        assert (await c.get("/v2/students")).status_code == 200
        stats = (await c.get("/_sim/stats")).json()
        assert stats["statuses"] == {"200": 3, "429": 1}


async def test_faults_inject_503_and_change_at_runtime(client: httpx.AsyncClient) -> None:
    faults = await client.put("/_sim/faults", json={"error_rate": 1.0})
    assert faults.json() == {"error_rate": 1.0, "latency_ms": 0, "rate_limit_per_second": None}
    response = await client.post("/v2/students", json=student())
    assert response.status_code == 503
    assert (await client.get("/_sim/state")).json()["students"] == []  # nothing was written
    await client.put("/_sim/faults", json={"error_rate": 0})
    assert (await client.post("/v2/students", json=student())).status_code == 201
    bad = await client.put("/_sim/faults", json={"error_rate": 2})
    assert bad.status_code == 422


async def test_configured_error_rate_one_fails_every_api_request() -> None:
    async with client_for(SimConfig(token=TOKEN, error_rate=1.0)) as c:
        statuses = {(await c.get("/v2/teachers")).status_code for _ in range(5)}
        assert statuses == {503}


async def test_latency_is_added() -> None:
    async with client_for(SimConfig(token=TOKEN, latency_ms=50)) as c:
        started = time.monotonic()
        await c.get("/v2/parents")
        assert time.monotonic() - started >= 0.05


async def test_parent_child_links(client: httpx.AsyncClient) -> None:
    kid = await create(client, "student", email="kid@s.test", last_name="K", student_id="S9")
    parent = await create(client, "parent", email="mum@home.test", last_name="K", salutation="Mrs.")
    url = f"/v2/parents/{parent['id']}/children"

    linked = await client.post(url, json={"child": {"id": kid["id"], "relationship": "Mother"}})
    assert linked.status_code == 201
    assert linked.json() == {"child": {"id": kid["id"], "relationship": "Mother"}}
    again = await client.post(url, json={"child": {"id": kid["id"], "relationship": "Mother"}})
    assert again.status_code == 422
    assert again.json() == {"errors": {"child": ["has already been taken"]}}
    nobody = await client.post(url, json={"child": {"id": 1, "relationship": "Mother"}})
    assert nobody.json() == {"errors": {"child": ["must exist"]}}

    student_view = (await client.get(f"/v2/students/{kid['id']}")).json()["student"]
    assert student_view["parent_ids"] == [parent["id"]]
    parent_view = (await client.get(f"/v2/parents/{parent['id']}")).json()["parent"]
    assert parent_view["child_ids"] == [kid["id"]]

    changed = await client.put(f"{url}/{kid['id']}", json={"child": {"relationship": "Aunt"}})
    assert changed.json() == {"child": {"id": kid["id"], "relationship": "Aunt"}}
    wrong = await client.put(f"{url}/{kid['id']}", json={"child": {"relationship": "Mum"}})
    assert wrong.status_code == 422
    assert wrong.json()["errors"]["relationship"][0].startswith("must be one of: Mother, Father")
    listed = (await client.get(url)).json()
    assert listed["children"] == [{"id": kid["id"], "relationship": "Aunt"}]
    assert listed["meta"]["total_count"] == 1

    assert (await client.delete(f"{url}/{kid['id']}")).status_code == 204
    gone = await client.get(f"{url}/{kid['id']}")
    assert gone.status_code == 404
    assert set(gone.json()) == {"error", "reason"}
    assert (await client.post(url, json={"child": {"id": kid["id"]}})).status_code == 201


async def test_a_deleted_link_is_restored_by_posting_it_again(client: httpx.AsyncClient) -> None:
    kid = await create(client, "student", email="kid@s.test", last_name="K", student_id="S9")
    other = await create(client, "student", email="sis@s.test", last_name="K", student_id="S8")
    parent = await create(client, "parent", email="dad@home.test", last_name="K")
    url = f"/v2/parents/{parent['id']}/children"

    never = await client.put(f"{url}/{kid['id']}", json={"child": {"relationship": "Father"}})
    assert never.status_code == 404  # PUT changes a link, it never makes one
    assert never.json() == {
        "error": "Not Found",
        "reason": f"Student {kid['id']} is not a child of Parent {parent['id']}",
    }
    await client.post(url, json={"child": {"id": kid["id"], "relationship": "Father"}})
    assert (await client.delete(f"{url}/{kid['id']}")).status_code == 204
    deleted = await client.put(f"{url}/{kid['id']}", json={"child": {"relationship": "Uncle"}})
    assert deleted.status_code == 404
    restored = await client.post(url, json={"child": {"id": kid["id"]}})
    assert restored.status_code == 201
    assert restored.json() == {"child": {"id": kid["id"], "relationship": "Father"}}
    assert (await client.get(f"{url}/{kid['id']}")).json()["child"]["relationship"] == "Father"
    again = await client.post(url, json={"child": {"id": kid["id"]}})
    assert again.json() == {"errors": {"child": ["has already been taken"]}}

    # A link dropped by the bulk PUT is restored the same way, with a new relationship if given.
    await client.put(url, json={"children": [{"id": other["id"], "relationship": "Father"}]})
    assert [c["id"] for c in (await client.get(url)).json()["children"]] == [other["id"]]
    back = await client.post(url, json={"child": {"id": kid["id"], "relationship": "Stepfather"}})
    assert back.json() == {"child": {"id": kid["id"], "relationship": "Stepfather"}}
    links = [w for w in (await client.get("/_sim/writes")).json() if w["action"] == "link"]
    assert [w["restored"] for w in links] == [False, True, True]


async def test_concurrent_creates_keep_email_unique(client: httpx.AsyncClient) -> None:
    bodies = [student(student_id=f"S{n}", email="same@s.test") for n in range(20)]
    responses = await asyncio.gather(*(client.post("/v2/students", json=b) for b in bodies))
    assert sorted(r.status_code for r in responses) == [201] + [422] * 19
    assert len((await client.get("/_sim/state")).json()["students"]) == 1


async def test_parent_and_teacher_archive(client: httpx.AsyncClient) -> None:
    for kind in ("parent", "teacher"):
        record = await create(client, kind, email=f"{kind}@s.test", last_name="X")
        url = f"/v2/{kind}s/{record['id']}"
        assert (await client.put(f"{url}/archive")).json() == {"status": "ok"}
        assert (await client.get(url)).json()[kind]["archived"] is True
        await client.put(f"{url}/unarchive")
        assert (await client.get(url)).json()[kind]["archived"] is False


async def test_seed_then_list_with_filters(client: httpx.AsyncClient) -> None:
    seeded = await client.post(
        "/_sim/seed",
        json={
            "students": [
                {"id": 501, "email": "s1@s.test", "last_name": "One", "student_id": "A001"},
                {"email": "s2@s.test", "last_name": "Two", "student_id": "A002"},
                {"email": "s3@s.test", "last_name": "Old", "student_id": "A003", "archived": True},
            ],
            "parents": [{"id": 900, "email": "p@home.test", "last_name": "Parent"}],
            "teachers": [{"email": "t@s.test", "last_name": "Teacher"}],
            "links": [{"parent_id": 900, "child_id": 501, "relationship": "Father"}],
        },
    )
    assert seeded.status_code == 201
    assert [s["student_id"] for s in seeded.json()["students"]] == ["A001", "A002", "A003"]
    assert seeded.json()["students"][0]["id"] == 501

    active = (await client.get("/v2/students", params={"archived": "0"})).json()
    assert [s["student_id"] for s in active["students"]] == ["A001", "A002"]
    found = (await client.get("/v2/students", params={"q": "a002"})).json()
    assert [s["email"] for s in found["students"]] == ["s2@s.test"]
    paged = (await client.get("/v2/students", params={"per_page": "2", "page": "2"})).json()
    assert paged["meta"] == {"current_page": 2, "total_pages": 2, "total_count": 3, "per_page": 2}
    assert len(paged["students"]) == 1
    by_email = (await client.get("/v2/parents", params={"q": "P@HOME.test"})).json()
    assert by_email["parents"][0]["child_ids"] == [501]

    # A seeded user is "already there": creating it again is a 422, the adoption trigger.
    response = await client.post(
        "/v2/parents", json={"parent": {"email": "p@home.test", "last_name": "P"}}
    )
    assert response.json() == {"errors": {"email": ["has already been taken"]}}
    # Seeding is all or nothing and is not logged as a write.
    clash = await client.post(
        "/_sim/seed",
        json={
            "teachers": [
                {"email": "new@s.test", "last_name": "N"},
                {"email": "t@s.test", "last_name": "T"},
            ]
        },
    )
    assert clash.status_code == 422
    assert clash.json() == {
        "errors": {"email": ["has already been taken"]},
        "kind": "teachers",
        "index": 1,
    }
    assert len((await client.get("/_sim/state")).json()["teachers"]) == 1
    assert (await client.get("/_sim/writes")).json() == []


async def test_stats_writes_and_reset() -> None:
    clock = FakeClock(2_000.5)
    async with client_for(clock=clock) as client:
        sid = (await create(client, "student", email="a@s.test", last_name="A", student_id="S1"))[
            "id"
        ]
        clock.now = 2_001.0
        await client.patch(f"/v2/students/{sid}", json={"student": {"first_name": "A"}})
        await client.patch(f"/v2/students/{sid}", json={"student": {"first_name": "A"}})
        await client.get(f"/v2/students/{sid}")

        stats = (await client.get("/_sim/stats")).json()
        assert stats["requests"] == {
            "GET /v2/students/{id}": 1,
            "PATCH /v2/students/{id}": 2,
            "POST /v2/students": 1,
        }
        assert stats["by_route"]["PATCH /v2/students/{id}"] == {"200": 2}
        assert stats["total"] == 4
        assert stats["writes"] == 3
        assert stats["noop_writes"] == 1
        assert stats["applied_writes"] == 2
        assert stats["requests_per_applied_write"] == 2.0

        writes = (await client.get("/_sim/writes")).json()
        assert [(w["at"], w["method"], w["changed"]) for w in writes] == [
            (2_000.5, "POST", True),
            (2_001.0, "PATCH", True),
            (2_001.0, "PATCH", False),
        ]
        assert {w["student_id"] for w in writes} == {"S1"}
        assert {w["kind"] for w in writes} == {"student"}
        since = (await client.get("/_sim/writes", params={"since": 2_000.5})).json()
        assert len(since) == 2

        assert (await client.post("/_sim/reset")).json() == {"status": "ok"}
        state = (await client.get("/_sim/state")).json()
        assert state["students"] == state["parents"] == state["teachers"] == state["links"] == []
        assert (await client.get("/_sim/stats")).json()["total"] == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_runs_as_a_real_http_server() -> None:
    port = _free_port()
    argv = [sys.executable, "-m", "sim.managebac", "--port", str(port), "--token", TOKEN]
    argv += ["--rate-limit", "1000", "--year-groups", "7:10209272"]
    argv += ["--extra-token", "reader=students/index", "--rate-limit-reset-format", "http-date"]
    server = subprocess.Popen(argv)  # noqa: S603  (our own interpreter and module, fixed argv)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"auth-token": TOKEN}, timeout=5) as http:
            deadline = time.monotonic() + 15
            while True:
                try:
                    http.get("/_sim/faults")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, "simulator exited"
                    assert time.monotonic() < deadline, "simulator did not start"
                    time.sleep(0.1)
            created = http.post("/v2/students", json=student(year_group_id=10209272))
            assert created.status_code == 201
            assert created.headers["X-RateLimit-Limit"] == "1000"
            assert created.headers["X-RateLimit-Reset"].endswith(" GMT")
            reader = {"auth-token": "reader"}
            assert http.get("/v2/students", headers=reader).status_code == 200
            assert http.post("/v2/students", json=student(), headers=reader).status_code == 403
            assert http.get("/v2/students", headers={"auth-token": "no"}).status_code == 401
            groups = http.get("/v2/year-groups").json()["year_groups"]
            assert groups[0]["student_ids"] == [created.json()["student"]["id"]]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_command_line_flags_reach_the_config() -> None:
    args = build_parser().parse_args(
        [
            "--extra-token",
            "reader=students/index,students/show",
            "--extra-token",
            "admin",
            "--rate-limit",
            "50",
            "--rate-limit-per-token",
            "10",
            "--rate-limit-reset-format",
            "iso8601-no-offset",
            "--no-retry-after",
            "--program",
            "myp",
            "--cohort",
            "myp;8=11076103",
            "--academic-year",
            "2027",
            "--year-groups-listing",
            "all",
        ]
    )
    config = config_from(args)
    assert config.tokens == {
        "reader": frozenset({"students/index", "students/show"}),
        "admin": ALL_RIGHTS,
    }
    assert (config.rate_limit_per_second, config.rate_limit_per_token_per_second) == (50, 10)
    assert config.rate_limit_reset_format == "iso8601-no-offset"
    assert config.rate_limit_retry_after is False
    assert [p.code for p in config.school_programs()] == ["secondary", "myp"]
    assert config.cohorts == (CohortSpec(id=11076103, grade="myp;8"),)
    assert (config.academic_year, config.year_groups_listing) == (2027, "all")
    assert config_from(build_parser().parse_args([])) == SimConfig()  # defaults unchanged
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--cohort", "myp;8"])
