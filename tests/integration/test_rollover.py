"""The academic-year rollover needs no ticket, in either order (docs/design.md §3).

On real parts (the simulators over HTTP, the real broker, the ledger on SQLite): a school of
a few hundred pupils maps grades (`secondary;7` … `secondary;13`), is synced, then iSAMS moves
every pupil up a year (Year 13 leave, into `/api/alumni`) and ManageBac+ runs its academic-year
transition, one order or the other. Every pupil ends in the cohort now in the grade of their
new year, none in an archived one, the leavers archived; and the burst keeps to the school's
budget: ManageBac+ limits the client to `max_requests_per_second` and under 2% of the calls
are answered 429.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from consumers.outcomes import Outcome
from consumers.settings import Topics
from sim.isams.school import generate_school
from sim.managebac import SimConfig as ManagebacConfig
from tests.integration.sync_stack import TOKEN, YEAR_GROUPS, Stack, open_stack

pytestmark = pytest.mark.kafka

PUPILS = 300
BUDGET = 40  # the school's max_requests_per_second, and ManageBac+'s limit per client address
GRADES = {year: f"secondary;{year}" for year in range(7, 14)}
BATCH = 100  # events per webhook request
SETTLE_TIMEOUT = 120.0


def current_years(stack: Stack) -> dict[str, int]:
    """Return each current pupil's School Code and NC year, as iSAMS has them now."""
    return {
        str(record["schoolCode"]): int(record["yearGroup"])
        for record in stack.school.all_students()
        if str(record.get("systemStatus")).lower() == "current"
    }


async def send(stack: Stack, events: list[dict[str, Any]]) -> None:
    """Send the events through the webhook, `BATCH` at a time, and wait until all are done."""
    done = len(stack.results) + len(events)
    for start in range(0, len(events), BATCH):
        response = await stack.emitter.send(events[start : start + BATCH])
        assert response.status_code == 202, response.text
    await stack.wait_for_results(done, timeout=SETTLE_TIMEOUT)


async def misplaced(stack: Stack, years: dict[str, int], leavers: set[str]) -> list[str]:
    """Return the School Codes of pupils not where they belong now: a pupil of a mapped year
    not in the active cohort of their grade (or archived), a leaver not archived."""
    state = await stack.managebac_state()
    active = {
        (group["program_code"], group["grade_number"]): group["id"]
        for group in state["year_groups"]
        if not group["archived"]
    }
    students = {student["student_id"]: student for student in state["students"]}
    wrong = [
        code
        for code, year in years.items()
        if year in GRADES
        and (
            code not in students
            or students[code]["archived"]
            or students[code]["year_group_id"] != active[("secondary", year)]
        )
    ]
    wrong += [code for code in leavers if not students[code]["archived"]]
    return sorted(wrong)


async def settle(stack: Stack, years: dict[str, int], leavers: set[str]) -> None:
    """Wait (bounded) until every pupil is where they belong now."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while wrong := await misplaced(stack, years, leavers):
        assert time.monotonic() < deadline, f"{len(wrong)} pupils misplaced, e.g. {wrong[:5]}"
        await asyncio.sleep(0.25)


async def move_everyone_up_in_isams(stack: Stack) -> set[str]:
    """Move every current pupil up a year in iSAMS (Year 13 leave), then send the changes;
    return the School Codes of the leavers."""
    isams = stack.isams_url
    http = stack.managebac  # any client: the iSAMS simulator's control API takes no token
    leavers: set[str] = set()
    changed: list[str] = []
    for record in stack.school.all_students():
        if str(record.get("systemStatus")).lower() != "current":
            continue
        school_id = str(record["schoolId"])
        if record["yearGroup"] == 13:
            answer = await http.post(f"{isams}/_sim/leave/student/{school_id}", json={})
            leavers.add(str(record["schoolCode"]))
        else:
            body = {"yearGroup": int(record["yearGroup"]) + 1}
            answer = await http.post(f"{isams}/_sim/edit/student/{school_id}", json=body)
        assert answer.status_code == 200, answer.text
        changed.append(school_id)
    await send(stack, [stack.emitter.student_event(school_id) for school_id in changed])
    return leavers


async def transition(stack: Stack) -> None:
    answer = await stack.managebac.post("/_sim/transition")
    assert answer.status_code == 200, answer.text


async def client_counts(stack: Stack) -> Counter[str]:
    """Return the ManageBac+ API calls of the sync so far: `total` and one count per status."""
    stats = (await stack.managebac.get("/_sim/stats")).json()
    (client,) = stats["by_client"].values()  # the consumer is the one client of the API
    return Counter({"total": client["total"], **client["statuses"]})


async def student_writes(stack: Stack) -> list[dict[str, Any]]:
    writes: list[dict[str, Any]] = (await stack.managebac.get("/_sim/writes?kind=student")).json()
    return writes


@pytest.mark.parametrize("order", ["isams-first", "transition-first"])
async def test_the_rollover_in_either_order_needs_no_ticket_and_keeps_to_the_budget(
    order: str, kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    async with open_stack(
        kafka_bootstrap,
        topics,
        tmp_path,
        school=generate_school(PUPILS, seed=2027),
        mappings={"grades": GRADES, "contact_types": []},
        school_rps=BUDGET,
        managebac_config=ManagebacConfig(
            token=TOKEN, year_groups=YEAR_GROUPS, rate_limit_per_second=BUDGET
        ),
        year_group_interval=1.0,
    ) as stack:
        await stack.start_consumer()
        await send(stack, stack.emitter.events_for_all_students())
        before = current_years(stack)
        assert await misplaced(stack, before, set()) == []
        counts_before = await client_counts(stack)
        writes_before = len(await student_writes(stack))
        started = time.monotonic()

        if order == "isams-first":
            leavers = await move_everyone_up_in_isams(stack)
            await settle(stack, current_years(stack), leavers)
            between, halfway = len(await student_writes(stack)), time.monotonic()
            await transition(stack)
        else:
            await transition(stack)
            await settle(stack, before, set())  # as iSAMS still says: last year's grades
            between, halfway = len(await student_writes(stack)), time.monotonic()
            leavers = await move_everyone_up_in_isams(stack)
        after = current_years(stack)
        await settle(stack, after, leavers)
        seconds = time.monotonic() - started

        counts = await client_counts(stack) - counts_before
        writes = (await student_writes(stack))[writes_before:]
        state = await stack.managebac_state()
        archived_groups = {g["id"] for g in state["year_groups"] if g["archived"]}
        assert archived_groups  # the transition archived last year's Year 13
        in_archived = [
            s["student_id"]
            for s in state["students"]
            if not s["archived"] and s["year_group_id"] in archived_groups
        ]
        assert in_archived == []
        assert len(leavers) > 10
        assert all(result.outcome is not Outcome.DEAD_LETTERED for result in stack.results)
        assert counts["429"] <= 0.02 * counts["total"], counts

        first, second = writes[: between - writes_before], writes[between - writes_before :]
        summary = {
            "order": order,
            "pupils_moved_up": sum(1 for code in after if code in before),
            "leavers": len(leavers),
            "phase_1": Counter(w["action"] for w in first if w["changed"]),
            "phase_1_s": round(halfway - started, 1),
            "phase_2": Counter(w["action"] for w in second if w["changed"]),
            "phase_2_s": round(time.monotonic() - halfway, 1),
            "requests": counts["total"],
            "429s": counts["429"],
            "seconds": round(seconds, 1),
            "requests_per_second": round(counts["total"] / seconds, 1),
        }
        print(f"\nrollover {summary}")  # the counts to quote (pytest -s shows them)


async def test_a_consumer_stopped_in_the_middle_of_the_moves_leaves_the_rest_to_the_next(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    async with open_stack(
        kafka_bootstrap,
        topics,
        tmp_path,
        school=generate_school(150, seed=2028),
        mappings={"grades": GRADES, "contact_types": []},
        school_rps=BUDGET,
        managebac_config=ManagebacConfig(
            token=TOKEN, year_groups=YEAR_GROUPS, rate_limit_per_second=BUDGET
        ),
        year_group_interval=1.0,
    ) as stack:
        assert stack.stop_consumer is not None
        await stack.start_consumer()
        await send(stack, stack.emitter.events_for_all_students())
        years = current_years(stack)
        mark = len(await student_writes(stack))

        await transition(stack)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while len(await student_writes(stack)) - mark < 20:
            assert time.monotonic() < deadline, "no moves began after the transition"
            await asyncio.sleep(0.05)
        await stack.stop_consumer()
        left = await misplaced(stack, years, set())
        assert left, "every move was made before the stop: the test proves nothing"

        await stack.start_consumer()
        await settle(stack, years, set())

        moves = Counter(w["id"] for w in (await student_writes(stack))[mark:] if w["changed"])
        assert len(moves) == len([code for code, year in years.items() if year in GRADES])
        assert max(moves.values()) == 1  # nobody moved twice: the next consumer did the rest
