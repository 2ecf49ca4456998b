"""The ManageBac+ client's failure rules.

Pure HTTP logic over httpx.MockTransport; 429 handling against the ManageBac+ simulator served
over HTTP, with a frozen clock so that a used-up rate-limit window stays used up.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from consumers.adapters.managebac import ManagebacClient, RetryPolicy, _retry_wait
from consumers.ports import (
    ManagebacBlockedError,
    ManagebacRejectedError,
    ManagebacUnavailableError,
    RemoteUser,
)
from sim.managebac import SimConfig, create_app
from sim.serving import serve_app

FAST = RetryPolicy(attempts=3, timeout=10, wait_initial=0.001, wait_max=0.01)


def client_answering(*responses: httpx.Response) -> tuple[ManagebacClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ManagebacClient(http, "https://mb.example", "token", 1000, FAST), seen


def _http_date_in(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "least", "most"),
    [
        (lambda: "0.3", 0.3, 1.0),
        # An HTTP-date (RFC 9110), in whole seconds: 3 s ahead waits over 2 s, more than the
        # 1 s used when the header cannot be read; a past date retries at once.
        (lambda: _http_date_in(3), 2.0, 4.0),
        (lambda: "Wed, 21 Oct 2015 07:28:00 GMT", 0.0, 0.5),
    ],
    ids=["seconds", "future-http-date", "past-http-date"],
)
async def test_a_429_waits_as_retry_after_says_then_succeeds(
    retry_after: Callable[[], str], least: float, most: float
) -> None:
    client, seen = client_answering(
        httpx.Response(429, headers={"retry-after": retry_after()}),
        httpx.Response(200, json={"student": {"id": 1}}),
    )
    started = time.monotonic()
    await client.update("students", 1, {"first_name": "A"})
    assert least <= time.monotonic() - started <= most
    assert len(seen) == 2
    assert seen[0].headers["auth-token"] == "token"


NOW = 1_764_844_800.0  # 2025-12-04T10:40:00Z


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"x-ratelimit-reset": f"{NOW + 7:.0f}"}, 7.0),
        ({"x-ratelimit-reset": "Thu, 04 Dec 2025 10:40:09 GMT"}, 9.0),
        ({"x-ratelimit-reset": "2025-12-04T10:40:05Z"}, 5.0),
        ({"x-ratelimit-reset": "2025-12-04T10:40:06+00:00"}, 6.0),
        ({"x-ratelimit-reset": "2025-12-04T11:40:04+01:00"}, 4.0),
        ({"x-ratelimit-reset": "2025-12-04T10:40:03"}, 3.0),  # no offset: UTC
        ({"x-ratelimit-reset": "2"}, 2.0),  # a small number: seconds to wait
        ({"x-ratelimit-reset": f"{NOW + 7:.0f}", "retry-after": "4"}, 4.0),
        ({"x-ratelimit-reset": "2025-12-04T10:40:00.4Z", "retry-after": "1"}, 0.4),
        ({"x-ratelimit-reset": "2025-12-04T10:39:00Z"}, 0.0),  # past: at once
        ({"x-ratelimit-reset": "soon"}, 1.0),
        ({}, 1.0),
        ({"x-ratelimit-reset": f"{NOW + 600:.0f}"}, 60.0),  # cut to the longest wait
    ],
    ids=[
        "epoch",
        "http-date",
        "iso-z",
        "iso-utc-offset",
        "iso-other-offset",
        "iso-no-offset",
        "delay",
        "retry-after-sooner",
        "reset-sooner",
        "past",
        "unreadable",
        "none",
        "capped",
    ],
)
def test_the_reset_time_is_read_in_every_form(headers: dict[str, str], seconds: float) -> None:
    assert _retry_wait(httpx.Response(429, headers=headers), 60.0, now=NOW) == pytest.approx(
        seconds
    )


@pytest.mark.parametrize("status", [500, 502, 503, 409])
async def test_server_errors_and_conflicts_are_retried_then_reported_unavailable(
    status: int,
) -> None:
    client, seen = client_answering(httpx.Response(status))
    with pytest.raises(ManagebacUnavailableError):
        await client.update("students", 1, {"first_name": "A"})
    assert len(seen) == FAST.attempts


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_other_client_errors_are_refused_at_once_with_the_body(status: int) -> None:
    client, seen = client_answering(httpx.Response(status, text='{"errors":{"email":["x"]}}'))
    with pytest.raises(ManagebacRejectedError) as refused:
        await client.update("students", 1, {"first_name": "A"})
    assert len(seen) == 1
    assert refused.value.status == status
    assert '"email"' in refused.value.body


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (401, {"error": "Access Denied"}, "the token was refused (401): Access Denied"),
        (
            403,
            {"error": "Forbidden", "reason": "This token has no permission for teachers/create"},
            "the token lacks a right (403): This token has no permission for teachers/create",
        ),
        (403, None, "the token lacks a right (403)"),
    ],
)
async def test_a_refused_token_blocks_at_once_with_the_reason(
    status: int, body: dict[str, str] | None, reason: str
) -> None:
    answer = httpx.Response(status, json=body) if body else httpx.Response(status, text="<html>")
    client, seen = client_answering(answer)
    with pytest.raises(ManagebacBlockedError) as blocked:
        await client.update("students", 1, {"first_name": "A"})
    assert len(seen) == 1  # not retried: only a working token helps
    assert (blocked.value.status, blocked.value.reason) == (status, reason)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(
            200, text="<html>Down for maintenance</html>", headers={"content-type": "text/html"}
        ),
        httpx.Response(302, headers={"location": "https://mb.example/login"}),
        httpx.Response(503, text="<html>Maintenance</html>", headers={"content-type": "text/html"}),
    ],
    ids=["html-200", "redirect-302", "html-503"],
)
async def test_a_maintenance_page_or_a_redirect_is_never_a_success(answer: httpx.Response) -> None:
    client, seen = client_answering(answer)
    with pytest.raises(ManagebacUnavailableError):
        await client.update("students", 1, {"first_name": "A"})
    assert len(seen) == FAST.attempts  # transient: retried, then reported unavailable


TAKEN = httpx.Response(422, json={"errors": {"child": ["has already been taken"]}})
LINK_MISSING = httpx.Response(404, json={"error": "Student 2 is not a child of Parent 7"})


@pytest.mark.parametrize(
    ("answers", "likely_new", "requests"),
    [
        (
            [httpx.Response(200, json={"child": {"id": 2}})],
            False,
            [("PUT", "/v2/parents/7/children/2")],
        ),
        (
            [LINK_MISSING, httpx.Response(201, json={"child": {"id": 2}})],
            False,
            [("PUT", "/v2/parents/7/children/2"), ("POST", "/v2/parents/7/children")],
        ),
        (
            [httpx.Response(201, json={"child": {"id": 2}})],
            True,
            [("POST", "/v2/parents/7/children")],
        ),
        (
            [TAKEN, httpx.Response(200, json={"child": {"id": 2}})],
            True,
            [("POST", "/v2/parents/7/children"), ("PUT", "/v2/parents/7/children/2")],
        ),
        (
            [httpx.Response(422, json={"error": "Unprocessable"}), httpx.Response(200, json={})],
            True,
            [("POST", "/v2/parents/7/children"), ("PUT", "/v2/parents/7/children/2")],
        ),
    ],
    ids=[
        "existing-link-one-put",
        "no-link-put-then-post",
        "likely-new-one-post",
        "taken-then-put",
        "undocumented-422-then-put",
    ],
)
async def test_a_link_is_written_with_put_or_posted_first_when_likely_new(
    answers: list[httpx.Response], likely_new: bool, requests: list[tuple[str, str]]
) -> None:
    client, seen = client_answering(*answers)
    await client.link_child(7, 2, "Mother", likely_new=likely_new)
    assert [(r.method, r.url.path) for r in seen] == requests


async def test_a_refused_link_that_put_cannot_find_is_the_posts_refusal() -> None:
    must_exist = httpx.Response(422, json={"errors": {"child": ["must exist"]}})
    client, seen = client_answering(must_exist, LINK_MISSING)
    with pytest.raises(ManagebacRejectedError) as raised:
        await client.link_child(7, 2, "Mother", likely_new=True)
    assert raised.value.status == 422
    assert "to POST /v2/parents/7/children" in str(raised.value)
    assert "must exist" in raised.value.body
    assert [r.method for r in seen] == ["POST", "PUT"]


async def test_a_link_refused_otherwise_is_not_retried_with_put() -> None:
    client, seen = client_answering(httpx.Response(404, json={"error": "Parent 7 not found"}))
    with pytest.raises(ManagebacRejectedError) as raised:
        await client.link_child(7, 2, "Mother", likely_new=True)
    assert raised.value.status == 404
    assert [r.method for r in seen] == ["POST"]


async def test_find_by_email_ignores_case_and_pages() -> None:
    client, seen = client_answering(
        httpx.Response(
            200,
            json={"parents": [{"id": 1, "email": "x@y.z"}], "meta": {"total_pages": 2}},
        ),
        httpx.Response(
            200,
            json={"parents": [{"id": 2, "email": "Ann@Example.org"}], "meta": {"total_pages": 2}},
        ),
    )
    found = await client.find_by_email("parents", "ann@example.ORG")
    assert found is not None and found.id == 2
    assert [r.url.params["page"] for r in seen] == ["1", "2"]


# --- 429s against the simulator -------------------------------------------------------------

SIM_TOKEN = "client-test-token"
PATIENT = replace(FAST, attempts=2, rate_limit_wait_max=0.02, rate_limit_budget=10.0)


class FrozenClock:
    """The simulator's clock; it moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1_000.5

    def __call__(self) -> float:
        return self.now


@dataclass
class Sim:
    """The simulator on a local port, its control API and its clock."""

    url: str
    http: httpx.AsyncClient
    clock: FrozenClock

    def client(self, policy: RetryPolicy) -> ManagebacClient:
        return ManagebacClient(self.http, self.url, SIM_TOKEN, 1000, policy)

    async def faults(self, **faults: Any) -> None:
        response = await self.http.put(f"{self.url}/_sim/faults", json=faults)
        assert response.status_code == 200, response.text

    async def statuses(self) -> dict[str, int]:
        statuses: dict[str, int] = (await self.http.get(f"{self.url}/_sim/stats")).json()[
            "statuses"
        ]
        return statuses

    async def until(self, check: Callable[[dict[str, int]], bool]) -> None:
        deadline = time.monotonic() + 10
        while not check(await self.statuses()):
            assert time.monotonic() < deadline, "the simulator's counts never got there"
            await asyncio.sleep(0.01)

    async def rate_limit_used_up(self) -> None:
        """Allow one request a second and use this second's: until the clock moves, all 429."""
        await self.faults(rate_limit_per_second=1)
        used = await self.http.get(f"{self.url}/v2/students", headers={"auth-token": SIM_TOKEN})
        assert used.status_code == 200

    async def first_name(self, user: RemoteUser) -> str | None:
        state = (await self.http.get(f"{self.url}/_sim/state")).json()
        found: str | None = next(s for s in state["students"] if s["id"] == user.id).get(
            "first_name"
        )
        return found


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    clock = FrozenClock()
    app = create_app(SimConfig(token=SIM_TOKEN), clock=clock)
    async with serve_app(app, lifespan="off") as url, httpx.AsyncClient(timeout=10) as http:
        yield Sim(url, http, clock)


async def a_student(client: ManagebacClient, n: int = 1) -> RemoteUser:
    fields = {"email": f"s{n}@school.test", "last_name": "Lovelace", "student_id": f"S{n}"}
    return await client.create("students", fields)


async def an_update_held_by_429s(
    sim: Sim, client: ManagebacClient, student: RemoteUser
) -> asyncio.Task[None]:
    """Start an update once the rate limit is used up; return after three times `attempts` 429s
    (or once it ended, which the caller checks)."""
    await sim.rate_limit_used_up()
    update = asyncio.create_task(client.update("students", student.id, {"first_name": "Ada"}))
    await sim.until(lambda s: s.get("429", 0) >= 3 * PATIENT.attempts or update.done())
    return update


async def test_a_429_run_longer_than_the_attempts_is_waited_out(sim: Sim) -> None:
    client = sim.client(PATIENT)
    student = await a_student(client)
    update = await an_update_held_by_429s(sim, client, student)
    assert not update.done()
    sim.clock.now += 1  # a new window: the next request goes through
    await asyncio.wait_for(update, timeout=10)
    assert await sim.first_name(student) == "Ada"
    assert (await sim.statuses())["429"] >= 3 * PATIENT.attempts


async def test_429s_leave_the_5xx_attempts_alone(sim: Sim) -> None:
    client = sim.client(PATIENT)
    student = await a_student(client)
    update = await an_update_held_by_429s(sim, client, student)
    assert not update.done()
    await sim.faults(rate_limit_per_second=None, error_rate=1.0)
    with pytest.raises(ManagebacUnavailableError, match="503"):
        await asyncio.wait_for(update, timeout=10)
    assert (await sim.statuses())["503"] == PATIENT.attempts


async def test_5xx_are_retried_attempts_times_then_reported_unavailable(sim: Sim) -> None:
    client = sim.client(PATIENT)
    student = await a_student(client)
    await sim.faults(error_rate=1.0)
    with pytest.raises(ManagebacUnavailableError, match="503"):
        await client.update("students", student.id, {"first_name": "Ada"})
    assert await sim.statuses() == {"201": 1, "503": PATIENT.attempts}


async def test_429s_beyond_the_budget_report_unavailable(sim: Sim) -> None:
    policy = replace(PATIENT, rate_limit_budget=0.3)
    client = sim.client(policy)
    student = await a_student(client)
    await sim.rate_limit_used_up()  # and the clock never moves: 429 for ever
    started = time.monotonic()
    with pytest.raises(ManagebacUnavailableError, match="429"):
        await asyncio.wait_for(
            client.update("students", student.id, {"first_name": "Ada"}), timeout=10
        )
    assert 0.25 <= time.monotonic() - started < 5
    assert (await sim.statuses())["429"] > policy.attempts
    assert await sim.first_name(student) is None


async def test_a_429_holds_back_the_other_calls_of_the_client(sim: Sim) -> None:
    client = sim.client(replace(PATIENT, rate_limit_wait_max=1.0))  # the simulator asks 1 s
    first, second = await a_student(client, 1), await a_student(client, 2)
    await sim.rate_limit_used_up()
    rate_limited = asyncio.create_task(client.update("students", first.id, {"first_name": "A"}))
    await sim.until(lambda s: s.get("429", 0) >= 1)
    await sim.faults(rate_limit_per_second=None)  # the server would take a request now
    started = time.monotonic()
    await client.update("students", second.id, {"first_name": "B"})
    assert time.monotonic() - started >= 0.5  # it waited for the first call's Retry-After
    await asyncio.wait_for(rate_limited, timeout=10)
    assert (await sim.statuses())["429"] == 1


@pytest.mark.parametrize("reset_format", ["epoch", "http-date", "iso8601-z", "iso8601-no-offset"])
async def test_a_429_with_only_a_reset_time_is_waited_out(reset_format: str) -> None:
    """ManageBac+ documents `X-RateLimit-Reset` (a UTC time, format not shown), not
    `Retry-After`: the simulator sends only the reset time, in each form."""
    app = create_app(SimConfig(token=SIM_TOKEN))  # the simulator on the real clock
    async with serve_app(app, lifespan="off") as url, httpx.AsyncClient(timeout=10) as http:
        limits = {"per_client_per_second": 1, "reset_format": reset_format, "retry_after": False}
        assert (await http.put(f"{url}/_sim/limits", json=limits)).status_code == 200
        client = ManagebacClient(http, url, SIM_TOKEN, 1000, PATIENT)
        first, second = await asyncio.wait_for(
            asyncio.gather(a_student(client, 1), a_student(client, 2)), timeout=10
        )
        stats = (await http.get(f"{url}/_sim/stats")).json()
    assert {first.id, second.id} and first.id != second.id
    assert stats["statuses"].get("429", 0) >= 1  # one was refused, waited for, and went
    assert stats["statuses"]["201"] == 2
