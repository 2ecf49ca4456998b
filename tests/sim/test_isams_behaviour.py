"""What the iSAMS simulator does because the real iSAMS does it (docs/reference/isams-fields.md).

Each test talks to the simulator served by a real uvicorn over HTTP: leavers in /api/alumni,
applicants under admissions, the unpaged per-pupil contact list, joint and deceased
contacts, integer ids, `[""]` for an empty list, staff without `lastUpdated`, and the
403 / 429 / 500 answers with their counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sim.isams.app import STUDENT_CONTACTS_MISSING, SimConfig, create_app
from sim.isams.gate import NOT_AUTHORISED
from sim.isams.school import SchoolData, generate_school, roll_of
from sim.isams.store import Roll
from tests.sim.isams_support import FakeClock, bearer, serve

TODAY = datetime(2026, 12, 18, 10, 30, tzinfo=UTC)
ALL = {"pageSize": 1000}
SECONDARY_KEYS = {
    "secondaryPersonId",
    "secondaryPersonGuid",
    "relationshipOfJointContact",
    "secondaryTitle",
    "secondaryForename",
    "secondaryMiddleNames",
    "secondarySurname",
    "secondaryEmailAddress",
    "secondaryMobileNumber",
}


@dataclass
class Served:
    """A simulator on a real HTTP port, its school, its clock, and a client with a token."""

    http: httpx.AsyncClient
    school: SchoolData
    clock: FakeClock
    headers: dict[str, str]

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.headers)

    async def body(self, path: str, **params: Any) -> Any:
        response = await self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    async def control(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return await self.http.request(method, f"/_sim{path}", json=body)

    def on_roll(self, roll: Roll) -> list[str]:
        return [k for k, r in self.school.students.items() if roll_of(r) == roll]


async def served(school: SchoolData, config: SimConfig | None = None) -> AsyncIterator[Served]:
    clock = FakeClock()
    school.clock = lambda: TODAY
    app = create_app(config or SimConfig(monotonic=clock), school=school)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield Served(http, school, clock, await bearer(http))


@pytest.fixture
async def isams() -> AsyncIterator[Served]:
    async for sim in served(generate_school(200, seed=7)):
        yield sim


def with_contacts(sim: Served, roll: Roll) -> str:
    """Return a pupil on `roll` who has contact records."""
    return next(k for k in sim.on_roll(roll) if sim.school.contacts_of(k))


# Leavers, applicants, removals -----------------------------------------------------------


async def test_students_lists_current_pupils_only(isams: Served) -> None:
    listed = await isams.body("/api/students", **ALL)

    ids = [s["schoolId"] for s in listed["students"]]
    assert ids == isams.on_roll("current")
    assert listed["totalCount"] == len(ids) < len(isams.school.students)
    assert {s["systemStatus"] for s in listed["students"]} == {"Current"}


async def test_a_leaver_is_not_found_in_students_but_in_alumni(isams: Served) -> None:
    leavers = isams.on_roll("alumni")
    leaver = leavers[0]
    stored = isams.school.student(leaver)

    missing = await isams.get(f"/api/students/{leaver}")
    alumnus = await isams.body(f"/api/alumni/{leaver}")
    listed = await isams.body("/api/alumni", pageSize=4, page=2)

    assert missing.status_code == 404
    assert set(missing.json()) == {"message"}
    assert alumnus["schoolId"] == leaver
    assert alumnus["leavingDate"] == stored["leavingDate"]
    assert alumnus["leavingReason"] == stored["leavingReason"] is not None
    year, month = int(stored["leavingDate"][:4]), int(stored["leavingDate"][5:7])
    assert alumnus["leavingYear"] == (year if month >= 9 else year - 1)  # the school year
    assert alumnus["leavingYearGroup"] == stored["yearGroup"]
    assert (listed["totalCount"], listed["count"]) == (len(leavers), 4)
    assert [a["schoolId"] for a in listed["alumni"]] == leavers[4:8]
    current = isams.on_roll("current")[0]
    assert (await isams.get(f"/api/alumni/{current}")).status_code == 404


async def test_applicants_are_under_admissions_only(isams: Served) -> None:
    applicants = isams.on_roll("applicants")
    first = isams.school.student(applicants[0])

    listed = await isams.body("/api/admissions/applicants/students")
    as_student = await isams.get(f"/api/students/{applicants[0]}")
    as_alumnus = await isams.get(f"/api/alumni/{applicants[0]}")

    assert [a["schoolId"] for a in listed["students"]] == applicants
    shown = listed["students"][0]
    assert shown["dateOfBirth"] == first["dob"]
    assert shown["middleNames"] == first["middlenames"]
    assert shown["enrolmentSchoolYearGroup"] == first["yearGroup"]
    assert "dob" not in shown and "homeAddresses" not in shown
    assert (as_student.status_code, as_alumnus.status_code) == (404, 404)


async def test_leaving_moves_a_current_pupil_to_alumni(isams: Served) -> None:
    pupil = with_contacts(isams, "current")
    before = isams.school.student(pupil)
    totals = (await isams.body("/api/students"))["totalCount"], len(isams.on_roll("alumni"))

    left = await isams.control(
        "POST",
        f"/leave/student/{pupil}",
        {"leavingDate": "2026-12-18", "leavingReason": "Relocated abroad"},
    )

    assert left.status_code == 200
    assert (await isams.get(f"/api/students/{pupil}")).status_code == 404
    alumnus = await isams.body(f"/api/alumni/{pupil}")
    assert alumnus["systemStatus"] == "Leaver"
    assert alumnus["leavingDate"] == "2026-12-18T00:00:00"
    assert (alumnus["leavingReason"], alumnus["leavingYear"]) == ("Relocated abroad", 2026)
    assert alumnus["lastUpdated"] > before["lastUpdated"]
    assert (await isams.body("/api/students"))["totalCount"] == totals[0] - 1
    assert (await isams.body("/api/alumni"))["totalCount"] == totals[1] + 1
    contacts = (await isams.body("/api/students/contacts", **ALL))["contacts"]
    assert pupil not in {c["schoolId"] for c in contacts}
    again = await isams.control("POST", f"/leave/student/{pupil}")
    assert again.status_code == 404


async def test_leaving_without_a_date_leaves_today(isams: Served) -> None:
    pupil = isams.on_roll("current")[0]

    left = await isams.http.post(f"/_sim/leave/student/{pupil}")

    assert left.status_code == 200
    alumnus = await isams.body(f"/api/alumni/{pupil}")
    assert (alumnus["leavingDate"], alumnus["leavingReason"]) == ("2026-12-18T00:00:00", None)


async def test_status_edits_move_a_pupil_out_and_back(isams: Served) -> None:
    pupil = with_contacts(isams, "current")

    await isams.control("POST", f"/edit/student/{pupil}", {"systemStatus": "Leaver"})
    gone = await isams.get(f"/api/students/{pupil}")
    alumnus = await isams.body(f"/api/alumni/{pupil}")
    await isams.control("POST", f"/edit/student/{pupil}", {"systemStatus": "Current"})
    back = await isams.body(f"/api/students/{pupil}")

    assert gone.status_code == 404
    assert alumnus["leavingDate"] == "2026-12-18T00:00:00"
    assert (back["leavingDate"], back["leavingReason"]) == (None, None)
    assert (await isams.get(f"/api/alumni/{pupil}")).status_code == 404
    contacts = (await isams.body(f"/api/students/{pupil}/contacts"))["contacts"]
    assert contacts
    assert contacts[0]["schoolId"] == pupil


async def test_deleting_a_pupil_removes_them_from_every_list(isams: Served) -> None:
    pupil = with_contacts(isams, "current")
    contact_ids = {c["id"] for c in isams.school.contacts_of(pupil)}

    deleted = await isams.control("POST", f"/delete/student/{pupil}")

    assert deleted.status_code == 200
    assert deleted.json()["schoolId"] == pupil
    assert (await isams.get(f"/api/students/{pupil}")).status_code == 404
    assert (await isams.get(f"/api/alumni/{pupil}")).status_code == 404
    contacts = await isams.body("/api/students/contacts", includeDeceased="true", **ALL)
    assert not contact_ids & {c["id"] for c in contacts["contacts"]}
    summary = (await isams.control("GET", "/school")).json()
    assert pupil not in summary["studentIds"]
    assert not contact_ids & set(summary["contactIds"])
    assert (await isams.control("POST", f"/delete/student/{pupil}")).status_code == 404


# Contacts --------------------------------------------------------------------------------


async def test_a_pupils_contacts_are_one_unpaged_list(isams: Served) -> None:
    pupil = next(k for k in isams.on_roll("current") if len(isams.school.contacts_of(k)) >= 3)
    living = [c for c in isams.school.contacts_of(pupil) if not c["deceased"]]

    body = await isams.body(f"/api/students/{pupil}/contacts", page=2, pageSize=1)

    assert set(body) == {"contacts"}
    assert [c["id"] for c in body["contacts"]] == [c["id"] for c in living]
    assert len(body["contacts"]) >= 2


async def test_deceased_contacts_come_only_when_asked(isams: Served) -> None:
    deceased = [c for c in isams.school.all_contacts() if c["deceased"]]
    current = set(isams.on_roll("current"))
    listed_deceased = [c for c in deceased if c["schoolId"] in current]
    pupil = listed_deceased[0]["schoolId"]

    plain = await isams.body(f"/api/students/{pupil}/contacts")
    everyone = await isams.body(f"/api/students/{pupil}/contacts", includeDeceased="true")
    paged = await isams.body("/api/students/contacts", **ALL)
    paged_all = await isams.body("/api/students/contacts", includeDeceased="true", **ALL)

    assert listed_deceased[0]["id"] not in {c["id"] for c in plain["contacts"]}
    assert listed_deceased[0]["id"] in {c["id"] for c in everyone["contacts"]}
    assert not any(c["deceased"] for c in paged["contacts"])
    assert paged_all["totalCount"] - paged["totalCount"] == len(listed_deceased)
    bad = await isams.get(f"/api/students/{pupil}/contacts", includeDeceased="perhaps")
    assert bad.status_code == 400
    assert "message" in bad.json()


async def test_expansions_differ_between_the_two_contact_endpoints(isams: Served) -> None:
    pupil = with_contacts(isams, "current")
    path = f"/api/students/{pupil}/contacts"

    custom = (await isams.body(path, expand="customFields"))["contacts"]
    no_iso = (await isams.body(path, expand="countryIsoMappings"))["contacts"]
    paged_iso = await isams.body("/api/students/contacts", expand="countryIsoMappings")
    paged_custom = await isams.body("/api/students/contacts", expand="customFields")

    assert all(isinstance(c["customFields"], list) and c["customFields"] for c in custom)
    assert all("value" in field for c in custom for field in c["customFields"])
    assert not any("countryIsoMappings" in c or "customFields" in c for c in no_iso)
    assert all("countryIsoMappings" in c for c in paged_iso["contacts"])
    assert not any("customFields" in c for c in paged_custom["contacts"])


@pytest.mark.parametrize("roll", ["alumni", "applicants", None])
async def test_contacts_of_a_pupil_not_on_roll_answer_isams_message(
    isams: Served, roll: Roll | None
) -> None:
    pupil = with_contacts(isams, roll) if roll else "999999999999"

    response = await isams.get(f"/api/students/{pupil}/contacts")

    assert response.status_code == 404
    assert response.json() == {"message": STUDENT_CONTACTS_MISSING}
    assert STUDENT_CONTACTS_MISSING == "Failed to read student contacts - Student does not exist."


async def test_the_contact_list_shows_current_pupils_contacts_only(isams: Served) -> None:
    current = set(isams.on_roll("current"))
    expected = [c["id"] for c in isams.school.all_contacts() if c["schoolId"] in current]

    listed = await isams.body("/api/students/contacts", includeDeceased="true", **ALL)

    assert [c["id"] for c in listed["contacts"]] == expected
    assert len(expected) < len(isams.school.contacts)  # leavers and applicants have some


async def test_parental_responsibility_is_yes_no_or_default(isams: Served) -> None:
    contacts = (await isams.body("/api/students/contacts", **ALL))["contacts"]

    words = {c["parentalResponsibility"] for c in contacts}

    assert words == {"Yes", "No", "Default"}


async def test_a_joint_contact_is_one_record_for_two_people(isams: Served) -> None:
    summary = (await isams.control("GET", "/school")).json()
    current = set(summary["currentStudentIds"])
    joint_id = next(
        i for i in summary["jointContactIds"] if isams.school.contacts[i]["schoolId"] in current
    )
    pupil = isams.school.contacts[joint_id]["schoolId"]

    contacts = (await isams.body(f"/api/students/{pupil}/contacts"))["contacts"]

    joint = next(c for c in contacts if c["id"] == joint_id)
    assert isinstance(joint["secondaryPersonId"], int)
    assert joint["secondaryPersonGuid"] != joint["personGuid"]
    assert (joint["relationship"], joint["relationshipOfJointContact"]) == ("Father", "Mother")
    assert joint["secondaryForename"] and joint["secondarySurname"]
    assert joint["secondaryEmailAddress"] != joint["emailAddress"]
    everyone = isams.school.all_contacts()
    assert not any(c["personGuid"] == joint["secondaryPersonGuid"] for c in everyone)
    listed = (await isams.body("/api/students/contacts", **ALL))["contacts"]
    ordinary = [c for c in listed if c["secondaryPersonId"] is None]
    assert len(ordinary) > len(listed) / 2
    assert all(c.keys() >= SECONDARY_KEYS for c in ordinary)
    assert all(c[key] is None for c in ordinary for key in SECONDARY_KEYS)


async def test_editing_a_joint_contacts_second_person_changes_every_childs_record(
    isams: Served,
) -> None:
    summary = (await isams.control("GET", "/school")).json()
    guids = {isams.school.contacts[i]["personGuid"] for i in summary["jointContactIds"]}
    records = [isams.school.contact_ids_of_person(guid) for guid in sorted(guids)]
    first, second = next(ids for ids in records if len(ids) >= 2)[:2]  # siblings' records

    edited = await isams.control(
        "POST", f"/edit/contact/{first}", {"secondaryEmailAddress": "mum@mail.example"}
    )
    fixed = await isams.control("POST", f"/edit/contact/{first}", {"secondaryPersonId": 1})

    assert edited.status_code == 200
    assert isams.school.contact(second)["secondaryEmailAddress"] == "mum@mail.example"
    assert fixed.status_code == 400


# Ids and lists ---------------------------------------------------------------------------


async def test_ids_are_integers_and_school_ids_are_strings(isams: Served) -> None:
    students = (await isams.body("/api/students", **ALL))["students"]
    alumni = (await isams.body("/api/alumni", **ALL))["alumni"]
    contacts = (await isams.body("/api/students/contacts", **ALL))["contacts"]
    employees = (await isams.body("/api/humanresources/employees", **ALL))["employees"]

    for pupil in students + alumni:
        assert isinstance(pupil["id"], int) and isinstance(pupil["personId"], int)
        assert isinstance(pupil["schoolId"], str) and pupil["schoolId"].isdigit()
        assert all(isinstance(a["id"], int) for a in pupil["homeAddresses"])
    for contact in contacts:
        assert isinstance(contact["id"], int) and isinstance(contact["personId"], int)
        assert isinstance(contact["schoolId"], str)
        assert contact["secondaryPersonId"] is None or isinstance(contact["secondaryPersonId"], int)
    assert any(c["secondaryPersonId"] is not None for c in contacts)
    assert all(type(e["id"]) is int for e in employees)


async def test_an_empty_name_list_comes_back_as_one_empty_string(isams: Served) -> None:
    stateless = next(
        k for k in isams.on_roll("current") if isams.school.students[k]["nationalities"] == [""]
    )
    pupil = next(k for k in isams.on_roll("current") if k != stateless)

    generated = await isams.body(f"/api/students/{stateless}")
    await isams.control("POST", f"/edit/student/{pupil}", {"languages": []})
    await isams.control("POST", "/edit/staff/3", {"nationalities": []})
    edited = await isams.body(f"/api/students/{pupil}")
    employee = await isams.body("/api/humanresources/employees/3")

    assert generated["nationalities"] == [""]
    assert edited["languages"] == [""]
    assert employee["nationalities"] == [""]
    listed = (await isams.body("/api/students", **ALL))["students"]
    assert not any(s["nationalities"] == [] or s["languages"] == [] for s in listed)


# Employees -------------------------------------------------------------------------------


async def test_employees_carry_employment_details_and_no_last_updated(isams: Served) -> None:
    listed = (await isams.body("/api/humanresources/employees", **ALL))["employees"]

    await isams.control("POST", "/edit/staff/2", {"surname": "Okafor"})
    edited = await isams.body("/api/humanresources/employees/2")

    for employee in [*listed, edited]:
        assert "lastUpdated" not in employee
        assert employee["enrolmentDate"].endswith("T00:00:00")
        assert isinstance(employee["isPartTime"], bool)
        assert isinstance(employee["isPersonalTutor"], bool)
        divisions = employee["divisions"]
        assert divisions is None or (divisions and all(isinstance(d, str) for d in divisions))
    assert edited["surname"] == "Okafor"
    assert isams.school.employee_revision(2) == 1  # the hidden change counter
    assert any(e["isPersonalTutor"] for e in listed)
    assert not any(e["isPersonalTutor"] and not e["isTeachingStaff"] for e in listed)


# Errors, permissions, throttle, faults ---------------------------------------------------


async def test_unknown_routes_answer_with_a_message(isams: Served) -> None:
    response = await isams.get("/api/timetables")

    assert response.status_code == 404
    assert set(response.json()) == {"message"}


def module_paths(sim: Served) -> dict[str, list[str]]:
    """Every iSAMS route of each module, with real ids filled in."""
    pupil = with_contacts(sim, "current")
    return {
        "students": ["/api/students", f"/api/students/{pupil}"],
        "contacts": ["/api/students/contacts", f"/api/students/{pupil}/contacts"],
        "alumni": ["/api/alumni", f"/api/alumni/{sim.on_roll('alumni')[0]}"],
        "applicants": ["/api/admissions/applicants/students"],
        "employees": ["/api/humanresources/employees", "/api/humanresources/employees/1"],
        "yeargroups": ["/api/school/yeargroups"],
    }


@pytest.mark.parametrize(
    "module", ["students", "contacts", "alumni", "applicants", "employees", "yeargroups"]
)
async def test_a_revoked_module_answers_403_on_its_own_routes_only(
    isams: Served, module: str
) -> None:
    paths = module_paths(isams)

    revoked = await isams.control("PUT", "/permissions", {module: False})
    answers = {p: await isams.get(p) for ps in paths.values() for p in ps}
    await isams.control("PUT", "/permissions", {module: True})
    granted = [(await isams.get(p)).status_code for p in paths[module]]

    assert revoked.json()[module] is False
    for name, routes in paths.items():
        for path in routes:
            if name == module:
                assert answers[path].status_code == 403, path
                assert answers[path].json() == {"message": NOT_AUTHORISED}
            else:
                assert answers[path].status_code == 200, path
    assert set(granted) == {200}
    stats = (await isams.control("GET", "/stats")).json()
    assert stats["forbidden"] == len(paths[module])


async def test_permissions_refuse_a_module_isams_has_not(isams: Served) -> None:
    response = await isams.control("PUT", "/permissions", {"timetables": False})

    assert response.status_code == 400
    assert "message" in response.json()


async def test_injected_faults_answer_transient_500s(isams: Served) -> None:
    await isams.control("PUT", "/faults", {"failNext": 2})
    first = [(await isams.get("/api/students")).status_code for _ in range(3)]

    await isams.control("PUT", "/faults", {"errorRate": 0.5})
    dice = [(await isams.get("/api/school/yeargroups")).status_code for _ in range(40)]
    await isams.control("PUT", "/faults", {"errorRate": 0.5})
    again = [(await isams.get("/api/school/yeargroups")).status_code for _ in range(40)]
    await isams.control("PUT", "/faults", {"errorRate": 0})
    failed = await isams.http.put("/_sim/faults", json={"failNext": 1})
    body = (await isams.get("/api/alumni")).json()

    assert first == [500, 500, 200]
    assert 10 <= dice.count(500) <= 30
    assert set(dice) == {200, 500}
    assert again == dice  # the same dice for the same seed
    assert failed.json() == {"errorRate": 0.0, "failNext": 1}
    assert "deadlock" in body["message"]
    assert (await isams.control("GET", "/stats")).json()["serverErrors"] == 3 + dice.count(500) * 2


async def test_the_throttle_answers_429_with_retry_after_until_the_window_moves(
    isams: Served,
) -> None:
    configured = await isams.control("PUT", "/throttle", {"limit": 3, "windowSeconds": 60})
    allowed = [(await isams.get("/api/students")).status_code for _ in range(3)]
    refused = await isams.get("/api/humanresources/employees")
    other_token = {"Authorization": (await bearer(isams.http))["Authorization"]}
    same_key = await isams.http.get("/api/students", headers=other_token)
    isams.clock.now += 45
    later = await isams.get("/api/students")
    isams.clock.now += 15
    moved = await isams.get("/api/students")

    assert configured.json() == {"limit": 3, "windowSeconds": 60.0}
    assert allowed == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert "request limit" in refused.json()["message"]
    assert same_key.status_code == 429  # one budget per API key, whatever the token
    assert (later.status_code, later.headers["retry-after"]) == (429, "15")
    assert moved.status_code == 200
    stats = (await isams.control("GET", "/stats")).json()
    assert stats["throttled"] == 3
    assert stats["tokenGrants"] == 2  # the token endpoint is not throttled


async def test_a_throttle_can_be_set_at_start_and_switched_off() -> None:
    school = generate_school(20, seed=3)
    async for sim in served(school, SimConfig(throttle_limit=1, throttle_window_seconds=600)):
        first = await sim.get("/api/students")
        second = await sim.get("/api/students")
        off = await sim.control("PUT", "/throttle", {"limit": None})
        third = await sim.get("/api/students")

    assert (first.status_code, second.status_code, third.status_code) == (200, 429, 200)
    assert off.json() == {"limit": None, "windowSeconds": 3600.0}


async def test_stats_count_every_answer_by_route_and_status(isams: Served) -> None:
    await isams.control("POST", "/stats/reset")
    await isams.control("PUT", "/permissions", {"employees": False})
    await isams.get("/api/humanresources/employees")
    await isams.control("PUT", "/faults", {"failNext": 1})
    await isams.get("/api/students")
    await isams.control("PUT", "/throttle", {"limit": 1, "windowSeconds": 60})
    await isams.get("/api/alumni")
    await isams.get("/api/alumni")

    stats = (await isams.control("GET", "/stats")).json()
    await isams.control("POST", "/stats/reset")
    reset = (await isams.control("GET", "/stats")).json()

    assert stats["statuses"] == {"200": 1, "403": 1, "429": 1, "500": 1}
    assert stats["requests"] == {
        "GET /api/alumni": 2,
        "GET /api/humanresources/employees": 1,
        "GET /api/students": 1,
    }
    assert (stats["forbidden"], stats["throttled"], stats["serverErrors"]) == (1, 1, 1)
    assert (reset["totalRequests"], reset["statuses"]) == (0, {})
