"""Year groups are cohorts that move up a grade at the academic-year transition (notes, H)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from sim.managebac import SimConfig
from sim.managebac.cohorts import CohortSpec
from sim.managebac.grades import IB_DIPLOMA, IB_MYP
from tests.sim.managebac_support import TOKEN, YEAR_7, YEAR_8, FakeClock, client_for

YEAR_13 = 10209278
SEPTEMBER = datetime(2026, 9, 21, 12, tzinfo=UTC).timestamp()  # academic year 2026-27
SPEC_FIELDS = {
    "id",
    "name",
    "short_name",
    "program",
    "program_code",
    "grade",
    "archived",
    "grade_number",
    "graduation_year",
    "student_ids",
}


def school(**changes: Any) -> SimConfig:
    """Return a Secondary school with cohorts in Years 7, 8 and 13."""
    base: dict[str, Any] = {"token": TOKEN, "year_groups": {7: YEAR_7, 8: YEAR_8, 13: YEAR_13}}
    return SimConfig(**(base | changes))


async def year_groups(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/v2/year-groups", params=params)
    assert response.status_code == 200, response.text
    groups: list[dict[str, Any]] = response.json()["year_groups"]
    return groups


async def new_student(client: httpx.AsyncClient, n: int, year_group_id: int) -> int:
    body = {"email": f"s{n}@s.test", "last_name": "L", "student_id": f"S{n}"}
    response = await client.post(
        "/v2/students", json={"student": body | {"year_group_id": year_group_id}}
    )
    assert response.status_code == 201, response.text
    student_id: int = response.json()["student"]["id"]
    return student_id


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


async def test_a_year_group_is_a_cohort_with_the_spec_fields() -> None:
    async with client_for(school(), FakeClock(SEPTEMBER)) as client:
        sid = await new_student(client, 1, YEAR_7)
        groups = {g["id"]: g for g in await year_groups(client)}
    assert list(groups) == [YEAR_7, YEAR_8, YEAR_13]
    assert set(groups[YEAR_7]) == SPEC_FIELDS
    assert groups[YEAR_7] == {
        "id": YEAR_7,
        "name": "Secondary Group of 2033 (Year 7)",
        "short_name": "Secondary Group of 2033",
        "program": "Secondary",
        "program_code": "secondary",
        "grade": "Year 7",
        "archived": False,
        "grade_number": 7,
        "graduation_year": 2033,
        "student_ids": [sid],
    }
    assert groups[YEAR_13]["graduation_year"] == 2027  # leaves in the summer of 2027


async def test_school_grades_give_each_grade_its_code() -> None:
    config = school(programs=(IB_MYP, IB_DIPLOMA))
    async with client_for(config) as client:
        response = await client.get("/v2/school/grades")
    assert response.status_code == 200
    programs = {p["code"]: p for p in response.json()["school"]["programs"]}
    assert list(programs) == ["secondary", "myp", "diploma"]
    secondary = [(g["code"], g["grade_number"], g["name"]) for g in programs["secondary"]["grades"]]
    assert secondary == [(f"secondary;{n}", n, f"Year {n}") for n in range(7, 14)]
    # The spec's own example: MYP Year 2, labelled Grade 7, is myp;8 with uid 100110011.
    myp_2 = programs["myp"]["grades"][1]
    assert myp_2 == {
        "name": "Year 2",
        "label": "Grade 7",
        "code": "myp;8",
        "uid": 100110011,
        "grade_number": 8,
    }
    assert [g["code"] for g in programs["diploma"]["grades"]] == ["diploma;12", "diploma;13"]


async def test_the_transition_moves_cohorts_up_archives_the_leavers_and_opens_year_7() -> None:
    clock = FakeClock(SEPTEMBER)
    async with client_for(school(), clock) as client:
        in_7, in_13 = await new_student(client, 1, YEAR_7), await new_student(client, 2, YEAR_13)
        clock.now += 3600
        assert await year_groups(client, modified_since=iso(clock.now)) == []

        result = (await client.post("/_sim/transition")).json()
        new_id = result["created"][0]
        assert result == {
            "academic_year": 2028,
            "archived": [YEAR_13],
            "moved": [YEAR_7, YEAR_8],
            "created": [new_id],
        }
        assert new_id not in (YEAR_7, YEAR_8, YEAR_13)

        active = {g["id"]: g for g in await year_groups(client)}
        assert list(active) == [new_id, YEAR_7, YEAR_8]  # by grade: the new Year 7 first
        assert (active[YEAR_7]["grade_number"], active[YEAR_7]["grade"]) == (8, "Year 8")
        assert active[YEAR_7]["name"] == "Secondary Group of 2033 (Year 8)"  # same cohort
        assert active[YEAR_8]["grade_number"] == 9
        assert active[new_id]["grade_number"] == 7
        assert active[new_id]["graduation_year"] == 2034
        assert active[new_id]["student_ids"] == []

        archived = await year_groups(client, archived="true")
        assert [(g["id"], g["archived"], g["grade_number"]) for g in archived] == [
            (YEAR_13, True, 13)
        ]
        # Students stay in their cohort, which moved.
        students = {s["id"]: s for s in (await client.get("/v2/students")).json()["students"]}
        assert students[in_7]["year_group_id"] == YEAR_7
        assert students[in_13]["year_group_id"] == YEAR_13
        assert active[YEAR_7]["student_ids"] == [in_7]

        changed = await year_groups(client, modified_since=iso(clock.now))
        assert [g["id"] for g in changed] == [new_id, YEAR_7, YEAR_8]
        changed_archived = await year_groups(client, modified_since=iso(clock.now), archived="1")
        assert [g["id"] for g in changed_archived] == [YEAR_13]
        state = (await client.get("/_sim/state")).json()
        assert state["academic_year"] == 2028
        assert {g["id"]: g["updated_at"] for g in state["year_groups"]}[YEAR_7] == (
            "2026-09-21T13:00:00.000Z"
        )


async def test_a_student_cannot_be_put_in_an_archived_or_unknown_cohort() -> None:
    async with client_for(school()) as client:
        sid = await new_student(client, 1, YEAR_8)
        await client.post("/_sim/transition")
        body = {"email": "n@s.test", "last_name": "N", "year_group_id": YEAR_13}
        refused = await client.post("/v2/students", json={"student": body})
        assert refused.status_code == 422
        assert refused.json() == {"errors": {"year_group_id": ["is archived"]}}
        patch = await client.patch(
            f"/v2/students/{sid}", json={"student": {"year_group_id": YEAR_13}}
        )
        assert patch.status_code == 422
        assert patch.json() == {"errors": {"year_group_id": ["is archived"]}}
        unknown = await client.patch(f"/v2/students/{sid}", json={"student": {"year_group_id": 1}})
        assert unknown.json() == {"errors": {"year_group_id": ["must exist"]}}
        moved = await client.patch(
            f"/v2/students/{sid}", json={"student": {"year_group_id": YEAR_7}}
        )
        assert moved.status_code == 200
        assert moved.json()["student"]["year_group_id"] == YEAR_7


async def test_archived_cohorts_listed_without_a_filter_when_configured() -> None:
    async with client_for(school(year_groups_listing="all")) as client:
        await client.post("/_sim/transition")
        listed = await year_groups(client)
        active_only = await year_groups(client, archived="false")
    assert [g["id"] for g in listed if g["archived"]] == [YEAR_13]
    assert YEAR_13 not in [g["id"] for g in active_only]
    assert len(listed) == len(active_only) + 1


async def test_year_groups_filter_by_student_and_page() -> None:
    async with client_for(school()) as client:
        sid = await new_student(client, 1, YEAR_8)
        mine = await year_groups(client, student_ids=str(sid))
        assert [g["id"] for g in mine] == [YEAR_8]
        page = (await client.get("/v2/year-groups", params={"per_page": "2", "page": "2"})).json()
        assert page["meta"] == {
            "current_page": 2,
            "total_pages": 2,
            "total_count": 3,
            "per_page": 2,
        }
        assert [g["id"] for g in page["year_groups"]] == [YEAR_13]
        bad = await client.get("/v2/year-groups", params={"modified_since": "yesterday"})
        assert bad.status_code == 422


async def test_ib_programs_graduate_and_open_each_on_its_own() -> None:
    config = SimConfig(
        token=TOKEN,
        year_groups={},
        programs=(IB_MYP, IB_DIPLOMA),
        academic_year=2019,
        cohorts=(
            CohortSpec(id=11076103, grade="myp;11"),
            CohortSpec(id=10907397, grade="diploma;12"),
            CohortSpec(id=10907398, grade="diploma;13"),
        ),
    )
    async with client_for(config) as client:
        before = {g["id"]: g for g in await year_groups(client)}
        assert before[11076103]["name"] == "IB MYP Group of 2019 (Year 5)"
        assert before[10907398]["name"] == "IB Diploma Group of 2019 (Grade 12)"
        result = (await client.post("/_sim/transition")).json()
        after = {g["id"]: g for g in await year_groups(client)}
    assert result["archived"] == [11076103, 10907398]
    assert result["moved"] == [10907397]
    assert len(result["created"]) == 2
    assert after[10907397]["grade_number"] == 13
    entry = sorted((after[i]["program_code"], after[i]["grade_number"]) for i in result["created"])
    assert entry == [("diploma", 12), ("myp", 7)]
    # New in 2019-20: DP Grade 11 graduates in 2021, MYP Year 1 (Year 5 in 2023-24) in 2024.
    assert {after[i]["graduation_year"] for i in result["created"]} == {2021, 2024}


async def test_a_cohort_can_be_added_at_run_time() -> None:
    async with client_for(school()) as client:
        added = await client.post("/_sim/year-groups", json={"id": 77, "grade": "secondary;7"})
        assert added.status_code == 201
        assert added.json()["grade_number"] == 7
        sevens = [g["id"] for g in await year_groups(client) if g["grade_number"] == 7]
        assert sevens == [77, YEAR_7]  # two active cohorts in one grade
        again = await client.post("/_sim/year-groups", json={"id": 77, "grade": "secondary;8"})
        assert again.json() == {"errors": {"id": ["has already been taken"]}}
        nowhere = await client.post("/_sim/year-groups", json={"id": 78, "grade": "myp;8"})
        assert nowhere.status_code == 422
        assert "grade" in nowhere.json()["errors"]
        archived = await client.post(
            "/_sim/year-groups", json={"id": 79, "grade": "secondary;13", "archived": True}
        )
        assert archived.json()["archived"] is True
        this_year = (await client.get("/_sim/state")).json()["academic_year"]
        assert archived.json()["graduation_year"] == this_year - 1  # it left last summer
        assert (await client.post("/_sim/reset")).status_code == 200
        assert [g["id"] for g in await year_groups(client)] == [YEAR_7, YEAR_8, YEAR_13]


async def test_reset_undoes_the_transition() -> None:
    async with client_for(school(academic_year=2027)) as client:
        await client.post("/_sim/transition")
        await client.post("/_sim/reset")
        state = (await client.get("/_sim/state")).json()
    assert state["academic_year"] == 2027
    assert [(g["id"], g["grade_number"], g["archived"]) for g in state["year_groups"]] == [
        (YEAR_7, 7, False),
        (YEAR_8, 8, False),
        (YEAR_13, 13, False),
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cohorts": (CohortSpec(id=1, grade="myp;8"),)}, "no grade 'myp;8'"),
        ({"cohorts": (CohortSpec(id=YEAR_7, grade="secondary;9"),)}, "must be distinct"),
        ({"programs": (IB_MYP, IB_MYP)}, "program codes must be distinct"),
    ],
    ids=["unknown-grade", "duplicate-id", "duplicate-program"],
)
def test_year_group_config_is_checked(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        school(**changes)


def test_old_year_groups_outside_7_to_13_widen_the_program() -> None:
    config = SimConfig(year_groups={6: 5, 7: 6})
    secondary = config.school_programs()[0]
    assert [g.grade_number for g in secondary.grades] == list(range(6, 14))
