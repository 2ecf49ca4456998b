"""The iSAMS simulator: OAuth2, paging, expansions, the generated school, and the emitter."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook

from consumers.events import ChangeEvent
from sim.isams.app import SimConfig, create_app, sim_state
from sim.isams.emitter import WebhookEmitter
from sim.isams.school import SchoolData, generate_school, roll_of
from tests.sim.isams_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_FORM,
    FakeClock,
    bearer,
    serve,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkh"


@pytest.fixture
def school() -> SchoolData:
    return generate_school(60, seed=7)


@pytest.fixture
async def sim(school: SchoolData) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SimConfig(), school=school)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://isams.test") as client:
        yield client


# OAuth2 ----------------------------------------------------------------------------------


async def test_token_flow_grants_a_bearer_token_that_opens_the_api(
    sim: httpx.AsyncClient,
) -> None:
    response = await sim.post("/auth/connect/token", data=TOKEN_FORM)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) >= 32
    listed = await sim.get(
        "/api/students", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert listed.status_code == 200


async def test_token_flow_accepts_http_basic_client_authentication(
    sim: httpx.AsyncClient,
) -> None:
    response = await sim.post(
        "/auth/connect/token",
        data={"grant_type": "client_credentials", "scope": "restapi"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({**TOKEN_FORM, "client_secret": "wrong"}, 401, "invalid_client"),
        ({**TOKEN_FORM, "client_id": "someone-else"}, 401, "invalid_client"),
        ({**TOKEN_FORM, "grant_type": "password"}, 400, "unsupported_grant_type"),
        ({k: v for k, v in TOKEN_FORM.items() if k != "grant_type"}, 400, "invalid_request"),
        ({k: v for k, v in TOKEN_FORM.items() if k != "client_secret"}, 400, "invalid_request"),
        ({**TOKEN_FORM, "scope": "admin"}, 400, "invalid_scope"),
    ],
)
async def test_token_flow_refuses_bad_requests_with_a_json_error(
    sim: httpx.AsyncClient, form: dict[str, str], status: int, error: str
) -> None:
    response = await sim.post("/auth/connect/token", data=form)

    assert response.status_code == status
    assert response.json()["error"] == error


async def test_token_endpoint_wants_a_form_body(sim: httpx.AsyncClient) -> None:
    response = await sim.post("/auth/connect/token", json=TOKEN_FORM)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic c3luYzpzeW5j"}],
)
async def test_api_refuses_requests_without_a_valid_token(
    sim: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await sim.get("/api/students", headers=headers)

    assert response.status_code == 401
    assert "message" in response.json()
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_api_refuses_an_expired_token() -> None:
    clock = FakeClock()
    app = create_app(SimConfig(students=5, token_ttl_seconds=60, monotonic=clock))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://isams.test") as client:
        granted = await client.post("/auth/connect/token", data=TOKEN_FORM)
        assert granted.json()["expires_in"] == 60
        headers = {"Authorization": f"Bearer {granted.json()['access_token']}"}
        clock.now += 59
        assert (await client.get("/api/students", headers=headers)).status_code == 200

        clock.now += 2
        response = await client.get("/api/students", headers=headers)

    assert response.status_code == 401
    assert "expired" in response.json()["message"]


# REST resources --------------------------------------------------------------------------


def current_ids(school: SchoolData) -> list[str]:
    """The schoolIds `/api/students` lists: current pupils only."""
    return [k for k, r in school.students.items() if roll_of(r) == "current"]


async def test_paging_splits_the_collection_without_gaps_or_repeats(
    sim: httpx.AsyncClient, school: SchoolData
) -> None:
    headers = await bearer(sim)
    current = current_ids(school)
    assert len(current) == 52  # of 60 pupils; the others are leavers and applicants
    seen: list[str] = []
    bodies = []
    for page in (1, 2, 3, 4, 5, 6, 7):
        response = await sim.get(
            "/api/students", params={"page": page, "pageSize": 10}, headers=headers
        )
        assert response.status_code == 200
        bodies.append(response.json())
        seen += [s["schoolId"] for s in response.json()["students"]]

    assert seen == current
    assert [b["count"] for b in bodies] == [10, 10, 10, 10, 10, 2, 0]
    assert {(b["totalCount"], b["totalPages"], b["pageSize"]) for b in bodies} == {(52, 6, 10)}
    assert [b["page"] for b in bodies] == [1, 2, 3, 4, 5, 6, 7]


async def test_paging_rounds_the_last_page_up_and_defaults_to_page_one(
    sim: httpx.AsyncClient,
) -> None:
    headers = await bearer(sim)

    body = (await sim.get("/api/students", params={"pageSize": 25}, headers=headers)).json()
    last = (
        await sim.get("/api/students", params={"pageSize": 25, "page": 3}, headers=headers)
    ).json()

    assert (body["page"], body["count"], body["totalPages"]) == (1, 25, 3)
    assert (last["count"], last["totalCount"]) == (2, 52)


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"pageSize": 0}, {"pageSize": 1001}, {"page": "two"}]
)
async def test_paging_refuses_bad_parameters(
    sim: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await sim.get("/api/students", params=params, headers=await bearer(sim))

    assert response.status_code == 400
    assert "message" in response.json()


async def test_each_list_endpoint_uses_the_isams_list_shape(sim: httpx.AsyncClient) -> None:
    headers = await bearer(sim)
    endpoints = {
        "/api/students": "students",
        "/api/students/contacts": "contacts",
        "/api/alumni": "alumni",
        "/api/admissions/applicants/students": "students",
        "/api/humanresources/employees": "employees",
    }
    for path, collection in endpoints.items():
        body = (await sim.get(path, headers=headers)).json()
        assert set(body) == {"count", "page", "pageSize", "totalCount", "totalPages", collection}
        assert body["count"] == len(body[collection]) > 0


async def test_year_groups_are_one_unpaged_list(sim: httpx.AsyncClient, school: SchoolData) -> None:
    response = await sim.get(
        "/api/school/yeargroups", params={"page": 2, "pageSize": 1}, headers=await bearer(sim)
    )

    assert response.json() == {"yearGroups": school.year_groups}
    assert len(school.year_groups) > 1


async def test_single_records_and_404s(sim: httpx.AsyncClient, school: SchoolData) -> None:
    headers = await bearer(sim)
    school_id = next(iter(school.students))

    student = await sim.get(f"/api/students/{school_id}", headers=headers)
    contacts = await sim.get(f"/api/students/{school_id}/contacts", headers=headers)
    employee = await sim.get("/api/humanresources/employees/1", headers=headers)
    missing = [
        await sim.get(path, headers=headers)
        for path in (
            "/api/students/999999999999",
            "/api/students/999999999999/contacts",
            "/api/humanresources/employees/9999",
            "/api/humanresources/employees/x",
        )
    ]

    assert student.json()["schoolId"] == school_id
    assert contacts.json()["contacts"]
    assert all(c["schoolId"] == school_id for c in contacts.json()["contacts"])
    assert employee.json()["id"] == 1
    assert [r.status_code for r in missing] == [404, 404, 404, 404]
    assert all("message" in r.json() for r in missing)


async def test_iso_mappings_come_only_when_expand_asks(
    sim: httpx.AsyncClient, school: SchoolData
) -> None:
    headers = await bearer(sim)
    school_id = next(s for s, r in school.students.items() if r["nationalities"])

    plain = (await sim.get(f"/api/students/{school_id}", headers=headers)).json()
    one = (
        await sim.get(
            f"/api/students/{school_id}",
            params={"expand": "nationalityIsoMappings"},
            headers=headers,
        )
    ).json()
    both = (
        await sim.get(
            f"/api/students/{school_id}",
            params={"expand": "nationalityIsoMappings,languageIsoMappings"},
            headers=headers,
        )
    ).json()
    repeated = (
        await sim.get(
            f"/api/students/{school_id}",
            params=[("expand", "nationalityIsoMappings"), ("expand", "languageIsoMappings")],
            headers=headers,
        )
    ).json()

    assert "nationalityIsoMappings" not in plain and "languageIsoMappings" not in plain
    assert "nationalityIsoMappings" in one and "languageIsoMappings" not in one
    assert both == repeated
    for item in both["nationalityIsoMappings"] + both["languageIsoMappings"]:
        assert set(item) == {"iSAMSName", "isoCode2Char", "isoCode3Char", "isoName"}
    assert {m["iSAMSName"] for m in both["languageIsoMappings"]} <= set(both["languages"])


async def test_iso_mappings_leave_out_names_the_school_has_not_mapped() -> None:
    school = generate_school(400, seed=11)
    school_id = next(s for s, r in school.students.items() if "Ruritanian" in r["nationalities"])
    app = create_app(SimConfig(), school=school)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://isams.test") as client:
        record = (
            await client.get(
                f"/api/students/{school_id}",
                params={"expand": "nationalityIsoMappings"},
                headers=await bearer(client),
            )
        ).json()

    mapped = {m["iSAMSName"] for m in record["nationalityIsoMappings"]}
    assert "Ruritanian" not in mapped
    assert mapped == set(record["nationalities"]) - {"Ruritanian", "German"}


async def test_contacts_expand_country_mappings_only_when_asked(sim: httpx.AsyncClient) -> None:
    headers = await bearer(sim)

    plain = (await sim.get("/api/students/contacts", headers=headers)).json()["contacts"]
    expanded = (
        await sim.get(
            "/api/students/contacts", params={"expand": "countryIsoMappings"}, headers=headers
        )
    ).json()["contacts"]

    assert all("countryIsoMappings" not in c for c in plain)
    uk = next(c for c in expanded if c["country"] == "United Kingdom")
    assert uk["countryIsoMappings"] == [
        {
            "iSAMSName": "United Kingdom",
            "isoCode2Char": "GB",
            "isoCode3Char": "GBR",
            "isoName": "United Kingdom",
        }
    ]


async def test_siblings_contacts_name_the_same_persons(
    sim: httpx.AsyncClient, school: SchoolData
) -> None:
    headers = await bearer(sim)
    groups = school.sibling_groups()
    assert groups, "a school of 60 should have siblings"
    first, second = groups[0][:2]

    a = (await sim.get(f"/api/students/{first}/contacts", headers=headers)).json()["contacts"]
    b = (await sim.get(f"/api/students/{second}/contacts", headers=headers)).json()["contacts"]

    persons_a = {c["personGuid"]: c["personId"] for c in a}
    persons_b = {c["personGuid"]: c["personId"] for c in b}
    shared = persons_a.keys() & persons_b.keys()
    assert shared
    assert all(persons_a[g] == persons_b[g] for g in shared)
    assert not {c["id"] for c in a} & {c["id"] for c in b}  # one contact record per child
    assert school.students[first]["surname"] == school.students[second]["surname"]


# Control API -----------------------------------------------------------------------------


async def test_edit_changes_the_record_and_bumps_last_updated(
    sim: httpx.AsyncClient, school: SchoolData
) -> None:
    headers = await bearer(sim)
    school_id = next(iter(school.students))
    before = school.student(school_id)

    edited = await sim.post(
        f"/_sim/edit/student/{school_id}", json={"surname": "Fernández-Smith", "yearGroup": 9}
    )
    served = (await sim.get(f"/api/students/{school_id}", headers=headers)).json()

    assert edited.status_code == 200
    assert served == edited.json()
    assert served["surname"] == "Fernández-Smith"
    assert served["fullName"] == f"{before['forename']} Fernández-Smith"
    assert served["lastUpdated"] > before["lastUpdated"]


async def test_edit_refuses_unknown_fields_and_records(
    sim: httpx.AsyncClient, school: SchoolData
) -> None:
    school_id = next(iter(school.students))

    unknown_field = await sim.post(f"/_sim/edit/student/{school_id}", json={"shoeSize": 5})
    fixed_field = await sim.post(f"/_sim/edit/student/{school_id}", json={"schoolId": "1"})
    unknown_record = await sim.post("/_sim/edit/student/000", json={"surname": "X"})

    assert (unknown_field.status_code, fixed_field.status_code) == (400, 400)
    assert unknown_record.status_code == 404


async def test_editing_a_contact_person_changes_every_childs_record(
    sim: httpx.AsyncClient, school: SchoolData
) -> None:
    first, second = school.sibling_groups()[0][:2]
    shared = next(
        c for c in school.contacts_of(first)
        if c["personGuid"] in {o["personGuid"] for o in school.contacts_of(second)}
    )  # fmt: skip

    response = await sim.post(
        f"/_sim/edit/contact/{shared['id']}",
        json={"emailAddress": "new.address@mail.example", "relationship": "Step-Mother"},
    )

    assert response.status_code == 200
    records = [school.contact(i) for i in school.contact_ids_of_person(shared["personGuid"])]
    assert len(records) >= 2
    assert {r["emailAddress"] for r in records} == {"new.address@mail.example"}
    assert [r["relationship"] for r in records].count("Step-Mother") == 1  # link field


async def test_staff_edit_sets_managebac_access_and_delete_removes_a_contact(
    sim: httpx.AsyncClient, school: SchoolData
) -> None:
    contact_id = next(iter(school.contacts))
    school_id = school.contacts[contact_id]["schoolId"]
    headers = await bearer(sim)

    staff = await sim.post("/_sim/edit/staff/1", json={"managebacAccess": False})
    deleted = await sim.post(f"/_sim/delete/contact/{contact_id}")
    listed = (await sim.get(f"/api/students/{school_id}/contacts", headers=headers)).json()

    assert staff.status_code == 200
    assert school.managebac_access[1] is False
    assert deleted.json()["id"] == contact_id
    assert contact_id not in {c["id"] for c in listed["contacts"]}


async def test_down_answers_503_with_retry_after_then_recovers() -> None:
    clock = FakeClock()
    app = create_app(SimConfig(students=5, monotonic=clock))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://isams.test") as client:
        headers = await bearer(client)
        assert (await client.post("/_sim/down", json={"seconds": 10})).status_code == 200

        during = await client.get("/api/students", headers=headers)
        token_during = await client.post("/auth/connect/token", data=TOKEN_FORM)
        clock.now += 10.5
        after = await client.get("/api/students", headers=headers)
        stats = (await client.get("/_sim/stats")).json()

    assert during.status_code == 503
    assert during.headers["retry-after"] == "10"
    assert token_during.status_code == 503
    assert after.status_code == 200
    assert stats["unavailable"] == 2


async def test_stats_count_requests_by_route_and_token_grants(
    sim: httpx.AsyncClient, school: SchoolData
) -> None:
    headers = await bearer(sim)
    school_id = next(iter(school.students))
    await sim.get("/api/students", headers=headers)
    await sim.get(f"/api/students/{school_id}", headers=headers)
    await sim.get(f"/api/students/{school_id}", headers=headers)
    await sim.get("/api/students")

    stats = (await sim.get("/_sim/stats")).json()

    assert stats["tokenGrants"] == 1
    assert stats["unauthorized"] == 1
    assert stats["requests"]["GET /api/students/{schoolId}"] == 2
    assert stats["requests"]["GET /api/students"] == 2
    assert stats["requests"]["POST /auth/connect/token"] == 1


async def test_school_summary_lists_ids(sim: httpx.AsyncClient, school: SchoolData) -> None:
    summary = (await sim.get("/_sim/school")).json()

    assert summary["studentIds"] == list(school.students)
    assert summary["students"] == 60
    assert summary["employees"] == 6
    assert summary["siblingGroups"] == school.sibling_groups()


async def test_real_server_serves_the_api_over_http() -> None:
    app = create_app(SimConfig(students=30, seed=3))
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        headers = await bearer(client)
        body = (await client.get("/api/students", headers=headers)).json()

    assert body["totalCount"] == 30
    assert sim_state(app).counters["tokenGrants"] == 1


# Generator -------------------------------------------------------------------------------


def test_generator_is_deterministic_for_a_seed() -> None:
    assert generate_school(80, seed=5) == generate_school(80, seed=5)
    assert generate_school(80, seed=5).students != generate_school(80, seed=6).students


def test_generator_makes_a_plausible_school() -> None:
    school = generate_school(1000, seed=1)
    students = list(school.students.values())

    assert len(students) == 1000
    assert len(school.employees) == 100
    assert 1.6 <= len(school.contacts) / len(students) <= 2.5
    assert all(len(s["schoolId"]) == 12 and s["schoolId"].startswith("145629") for s in students)
    assert all(s["schoolCode"].startswith("S") and len(s["schoolCode"]) == 7 for s in students)
    assert len({s["schoolCode"] for s in students}) == 1000
    missing_email = sum(s["schoolEmailAddress"] is None for s in students)
    assert 50 <= missing_email <= 150
    years = {s["yearGroup"] for s in students}
    assert set(range(7, 14)) <= years and years - set(range(7, 14))
    assert {s["gender"] for s in students} > {"M", "F"}
    statuses = {s["systemStatus"] for s in students}
    assert "Current" in statuses and "Leaver" in statuses
    assert all(s["leavingDate"] for s in students if s["systemStatus"] == "Leaver")
    assert all(s["dob"].endswith("T00:00:00") for s in students)
    relationships = {c["relationship"] for c in school.contacts.values()}
    assert {"Mother", "Father", "Grandmother"} <= relationships
    contact_types = {c["contactType"] for c in school.contacts.values()}
    assert {"Parents", "Guardian", "Emergency"} <= contact_types


def test_generator_keeps_a_seeds_older_values() -> None:
    """Facts added later come from a second random stream: these are the values from before."""
    school = generate_school(300, seed=5)

    first = [
        (k, r["forename"], r["surname"], r["personId"])
        for k, r in list(school.students.items())[:3]
    ]

    assert first == [
        ("145629077412", "William", "Thompson", 50003),
        ("145629077422", "Zoë", "Rossi", 50006),
        ("145629077423", "Thomas", "Wright", 50009),
    ]
    assert (school.employees[1]["forename"], school.employees[1]["surname"]) == ("María", "Murphy")
    assert school.managebac_access[1] is False


def test_generator_makes_joint_deceased_and_worded_contacts_and_plain_staff() -> None:
    school = generate_school(1000, seed=1)
    contacts = list(school.contacts.values())
    joint = [c for c in contacts if c["secondaryPersonId"] is not None]
    deceased = [c for c in contacts if c["deceased"]]
    employees = list(school.employees.values())
    leavers = [s for s in school.students.values() if s["systemStatus"] == "Leaver"]

    assert 0.005 <= len(joint) / len(contacts) <= 0.05
    assert {(c["contactType"], c["relationshipOfJointContact"]) for c in joint} == {
        ("Parents", "Mother")
    }
    assert 0.005 <= len(deceased) / len(contacts) <= 0.05
    assert {c["parentalResponsibility"] for c in contacts} == {"Yes", "No", "Default"}
    assert all(s["leavingReason"] for s in leavers)
    assert any(e["nationalities"] == [""] for e in employees)
    assert not any(e["nationalities"] == [] for e in employees)
    assert not any("lastUpdated" in e for e in employees)
    assert any(e["divisions"] is None for e in employees)


# Emitter ---------------------------------------------------------------------------------


@dataclass
class Receiver:
    """Records what the webhook endpoint received; answers from `script` first."""

    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def receiver_app(receiver: Receiver) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/webhooks/isams/{school_id}")
    async def webhook(school_id: str, request: Request) -> Response:
        body = await request.body()
        receiver.received.append((school_id, dict(request.headers), body))
        if receiver.script:
            status, headers = receiver.script.pop(0)
            return Response(status_code=status, headers=headers)
        decoded = orjson.loads(body)
        count = len(decoded) if isinstance(decoded, list) else 1
        return Response(orjson.dumps({"accepted": count}), 202, media_type="application/json")

    return app


@pytest.fixture(scope="module")
async def receiver_url() -> AsyncIterator[tuple[str, Receiver]]:
    receiver = Receiver()
    async with serve(receiver_app(receiver)) as url:
        yield url, receiver


@pytest.fixture
async def hook(
    receiver_url: tuple[str, Receiver],
) -> AsyncIterator[tuple[str, Receiver, httpx.AsyncClient]]:
    url, receiver = receiver_url
    receiver.received.clear()
    receiver.script.clear()
    async with httpx.AsyncClient() as client:
        yield url, receiver, client


class SleepRecorder:
    """Stands in for asyncio.sleep so retry tests do not wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def test_emitter_signs_each_request_so_standard_webhooks_verifies_it(
    hook: tuple[str, Receiver, httpx.AsyncClient], school: SchoolData
) -> None:
    url, receiver, client = hook
    emitter = WebhookEmitter(school, client, base_url=url, school_id="demo-school", secret=SECRET)
    events = emitter.events_for_all_students()[:3]

    responses = await emitter.send_all(events)

    assert [r.status_code for r in responses] == [202, 202, 202]
    assert len(receiver.received) == 3
    for (school_id, headers, body), event in zip(receiver.received, events, strict=True):
        assert school_id == "demo-school"
        assert headers["content-type"] == "application/json"
        assert Webhook(SECRET).verify(body, headers) == event  # one event: a JSON object
        assert headers["webhook-id"].startswith("msg_")
    assert emitter.stats.accepted == 3


async def test_emitter_batches_events_as_json_arrays(
    hook: tuple[str, Receiver, httpx.AsyncClient], school: SchoolData
) -> None:
    url, receiver, client = hook
    emitter = WebhookEmitter(
        school, client, base_url=url, school_id="demo-school", secret=SECRET, batch_size=25
    )
    events = emitter.events_for_all_students()

    responses = await emitter.send_all(events)

    assert [r.json()["accepted"] for r in responses] == [25, 25, 10]
    bodies = [Webhook(SECRET).verify(body, headers) for _, headers, body in receiver.received]
    assert all(isinstance(b, list) for b in bodies)
    assert [e for b in bodies for e in b] == events
    assert len({headers["webhook-id"] for _, headers, _ in receiver.received}) == 3


async def test_emitter_events_follow_the_event_contract(school: SchoolData) -> None:
    async with httpx.AsyncClient() as client:
        emitter = WebhookEmitter(
            school, client, base_url="http://unused", school_id="s", secret=SECRET
        )
        fat = emitter.events_for_all_students()
        thin = emitter.events_for_all_students(fat=False)
        contacts = emitter.events_for_all_contacts()
        staff = emitter.events_for_all_staff(fat=False)
        removed = emitter.contact_event(next(iter(school.contacts)), "deleted")

    for event in fat + thin + contacts + staff + [removed]:
        ChangeEvent.model_validate(event)
    school_id = fat[0]["data"]["schoolId"]
    assert fat[0]["data"]["record"]["schoolId"] == school_id
    assert "nationalityIsoMappings" in fat[0]["data"]["record"]
    assert fat[0]["data"]["schoolCode"] == school.students[school_id]["schoolCode"]
    assert all("record" not in e["data"] for e in thin + staff + [removed])
    assert contacts[0]["data"]["schoolId"] == contacts[0]["data"]["record"]["schoolId"]
    assert "countryIsoMappings" in contacts[0]["data"]["record"]
    assert {e["data"]["managebacAccess"] for e in staff} <= {True, False}


async def test_emitter_records_are_the_stored_shapes(school: SchoolData) -> None:
    leaver = next(k for k, r in school.students.items() if r["systemStatus"] == "Leaver")
    async with httpx.AsyncClient() as client:
        emitter = WebhookEmitter(
            school, client, base_url="http://unused", school_id="s", secret=SECRET
        )
        staff = emitter.staff_event(1)
        left = emitter.student_event(leaver)

    for event in (staff, left):
        ChangeEvent.model_validate(event)
    assert "lastUpdated" not in staff["data"]["record"]
    assert left["data"]["record"]["leavingReason"] == school.students[leaver]["leavingReason"]


async def test_emitter_retries_503_and_429_as_retry_after_says(
    hook: tuple[str, Receiver, httpx.AsyncClient], school: SchoolData
) -> None:
    url, receiver, client = hook
    receiver.script = [(503, {"Retry-After": "2"}), (429, {"Retry-After": "1"})]
    sleep = SleepRecorder()
    emitter = WebhookEmitter(
        school, client, base_url=url, school_id="demo-school", secret=SECRET, sleep=sleep
    )

    response = await emitter.send(emitter.events_for_all_students()[:2])

    assert response.status_code == 202
    assert sleep.calls == [2.0, 1.0]
    assert len(receiver.received) == 3
    assert len({headers["webhook-id"] for _, headers, _ in receiver.received}) == 1
    for _, headers, body in receiver.received:
        Webhook(SECRET).verify(body, headers)
    assert emitter.stats.retries == 2


async def test_emitter_gives_up_after_bounded_attempts(
    hook: tuple[str, Receiver, httpx.AsyncClient], school: SchoolData
) -> None:
    url, receiver, client = hook
    receiver.script = [(503, {}), (503, {}), (503, {}), (503, {})]
    sleep = SleepRecorder()
    emitter = WebhookEmitter(
        school,
        client,
        base_url=url,
        school_id="demo-school",
        secret=SECRET,
        max_attempts=3,
        backoff_seconds=0.5,
        sleep=sleep,
    )

    response = await emitter.send(emitter.student_event(next(iter(school.students))))

    assert response.status_code == 503
    assert len(receiver.received) == 3
    assert sleep.calls == [0.5, 1.0]


async def test_emitter_signs_with_every_secret_during_rotation(
    hook: tuple[str, Receiver, httpx.AsyncClient], school: SchoolData
) -> None:
    url, receiver, client = hook
    emitter = WebhookEmitter(
        school, client, base_url=url, school_id="demo-school", secret=[SECRET, OTHER_SECRET]
    )

    await emitter.send(emitter.student_event(next(iter(school.students))))

    _, headers, body = receiver.received[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(SECRET).verify(body, headers)
    Webhook(OTHER_SECRET).verify(body, headers)


@pytest.mark.parametrize("size", [0, 501])
async def test_emitter_refuses_batch_sizes_outside_the_contract(
    school: SchoolData, size: int
) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="batch_size"):
            WebhookEmitter(
                school, client, base_url="http://x", school_id="s", secret=SECRET, batch_size=size
            )


async def test_random_edits_change_the_shared_school_the_simulator_serves(
    sim: httpx.AsyncClient, school: SchoolData
) -> None:
    headers = await bearer(sim)
    async with httpx.AsyncClient() as client:
        emitter = WebhookEmitter(
            school, client, base_url="http://unused", school_id="s", secret=SECRET, expand=False
        )
        before = {k: v["lastUpdated"] for k, v in school.students.items()}

        rng = random.Random(4)  # noqa: S311  (seeded for a reproducible test, not security)
        events = list(emitter.random_edits(15, rng))

    assert len(events) == 15
    for event in events:
        ChangeEvent.model_validate(event)
    school_id = events[-1]["data"]["schoolId"]
    served = (await sim.get(f"/api/students/{school_id}", headers=headers)).json()
    assert served == events[-1]["data"]["record"]
    assert served["lastUpdated"] > before[school_id]
