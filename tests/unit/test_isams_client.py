"""The iSAMS client's answers to what iSAMS answers: tokens, paging, refusals and retries.

Pure HTTP logic over httpx.MockTransport: a scripted iSAMS that answers each request from a
queue per path (the last answer repeats), so every rule is one short table or test.
"""

from __future__ import annotations

import email.utils
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from consumers.adapters.isams import IsamsClient, IsamsRetryPolicy
from consumers.ports import (
    IsamsAuthError,
    IsamsError,
    IsamsForbiddenError,
    IsamsListNotFoundError,
    IsamsThrottledError,
    IsamsUnavailableError,
)

FAST = IsamsRetryPolicy(
    attempts=3, timeout=10, wait_initial=0.001, wait_max=0.01, wait_jitter=0, retry_after_max=2
)
NOT_AUTHORISED = {"message": "The user is not authorised for this request"}
TOKEN = "/auth/connect/token"


class ScriptedIsams:
    """Answer each path from its own queue of responses; record every request."""

    def __init__(self) -> None:
        self.answers: dict[str, list[httpx.Response]] = defaultdict(list)
        self.seen: list[httpx.Request] = []
        self.tokens = 0
        self.answer(TOKEN, self._token())

    def _token(self) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})

    def answer(self, path: str, *responses: httpx.Response) -> None:
        self.answers[path] = list(responses)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path == TOKEN:
            self.tokens += 1
        queue = self.answers[request.url.path]
        assert queue, f"unexpected request {request.method} {request.url}"
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def client(self, retry: IsamsRetryPolicy = FAST, page_size: int = 2) -> IsamsClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        return IsamsClient(http, "https://school.isams.cloud", "id", "secret", retry, page_size)

    def reads(self, path: str) -> list[httpx.Request]:
        return [r for r in self.seen if r.url.path == path]


def page(collection: str, items: list[dict[str, Any]], number: int, pages: int) -> httpx.Response:
    body = {"page": number, "pageSize": 2, "totalPages": pages, collection: items}
    return httpx.Response(200, json=body)


def _http_date_in(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@pytest.fixture
def isams() -> ScriptedIsams:
    return ScriptedIsams()


# --- paging ------------------------------------------------------------------------------


async def test_all_contacts_pages_with_the_iso_expansion_and_deceased_contacts(
    isams: ScriptedIsams,
) -> None:
    path = "/api/students/contacts"
    isams.answer(
        path,
        page("contacts", [{"id": 1, "schoolId": "S1"}, {"id": 2, "schoolId": "S1"}], 1, 2),
        page("contacts", [{"id": 3, "schoolId": "S2"}], 2, 2),
    )

    contacts = [c async for c in isams.client().all_contacts()]

    assert [c["id"] for c in contacts] == [1, 2, 3]
    pages = isams.reads(path)
    assert [dict(r.url.params) for r in pages] == [
        {"page": str(n), "pageSize": "2", "expand": "countryIsoMappings", "includeDeceased": "true"}
        for n in (1, 2)
    ]


async def test_students_and_alumni_are_paged_with_their_iso_expansions(
    isams: ScriptedIsams,
) -> None:
    isams.answer("/api/students", page("students", [{"schoolId": "S1"}], 1, 1))
    isams.answer("/api/alumni", page("alumni", [{"schoolId": "S9"}], 1, 1))
    client = isams.client()

    assert [s["schoolId"] async for s in client.all_students()] == ["S1"]
    assert [s["schoolId"] async for s in client.all_alumni()] == ["S9"]

    for path in ("/api/students", "/api/alumni"):
        (request,) = isams.reads(path)
        assert request.url.params["expand"] == "nationalityIsoMappings,languageIsoMappings"


@pytest.mark.parametrize("failing_page", [1, 2])
async def test_a_404_on_a_list_is_an_error_never_the_end_of_the_list(
    isams: ScriptedIsams, failing_page: int
) -> None:
    first = page("employees", [{"id": 1}, {"id": 2}], 1, 2)
    missing = httpx.Response(404, json={"message": "No HTTP resource was found"})
    isams.answer(
        "/api/humanresources/employees", *([missing] if failing_page == 1 else [first, missing])
    )

    seen: list[int] = []
    with pytest.raises(IsamsListNotFoundError) as caught:
        async for employee in isams.client().all_employees():
            seen.append(employee["id"])

    assert seen == ([] if failing_page == 1 else [1, 2])
    assert caught.value.path == "/api/humanresources/employees"
    assert isinstance(caught.value, IsamsError)


async def test_a_list_answer_without_its_collection_is_an_error(isams: ScriptedIsams) -> None:
    isams.answer("/api/students", httpx.Response(200, json={"page": 1, "totalPages": 1}))
    with pytest.raises(IsamsError, match="'students'"):
        [s async for s in isams.client().all_students()]


async def test_a_404_on_a_single_record_means_it_is_gone(isams: ScriptedIsams) -> None:
    isams.answer("/api/humanresources/employees/7", httpx.Response(404, json={"message": "x"}))
    assert await isams.client().employee("7") is None


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("read", ["list", "single"])
async def test_a_403_raises_forbidden_with_isams_message_and_is_not_retried(
    isams: ScriptedIsams, read: str
) -> None:
    isams.answer("/api/students/contacts", httpx.Response(403, json=NOT_AUTHORISED))
    isams.answer("/api/students/S1/contacts", httpx.Response(403, json=NOT_AUTHORISED))
    client = isams.client()

    with pytest.raises(IsamsForbiddenError) as caught:
        if read == "list":
            [c async for c in client.all_contacts()]
        else:
            await client.student_contacts("S1")

    assert caught.value.message == NOT_AUTHORISED["message"]
    assert NOT_AUTHORISED["message"] in str(caught.value)
    assert len(isams.seen) == 2  # the token, then one refused read


async def test_a_401_fetches_a_new_token_and_tries_again(isams: ScriptedIsams) -> None:
    isams.answer(
        "/api/humanresources/employees/7",
        httpx.Response(401, json={"message": "Authorization has been denied"}),
        httpx.Response(200, json={"id": 7}),
    )
    assert await isams.client().employee("7") == {"id": 7}
    assert isams.tokens == 2


async def test_refused_credentials_are_an_auth_error_at_once(isams: ScriptedIsams) -> None:
    isams.answer(TOKEN, httpx.Response(401, json={"error": "invalid_client"}))
    with pytest.raises(IsamsAuthError, match="client_secret"):
        await isams.client().employee("7")
    assert isams.tokens == 1


async def test_another_client_error_is_refused_with_isams_message(isams: ScriptedIsams) -> None:
    isams.answer("/api/students", httpx.Response(400, json={"message": "pageSize is too big"}))
    with pytest.raises(IsamsError, match="pageSize is too big"):
        [s async for s in isams.client().all_students()]
    assert len(isams.reads("/api/students")) == 1


# --- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "least", "most"),
    [
        (429, lambda: "0.3", 0.3, 1.0),
        (503, lambda: "0.3", 0.3, 1.0),
        # An HTTP-date (RFC 9110) in whole seconds: 2 s ahead waits over 1 s; a past one
        # retries at once; none at all, or one that cannot be read, backs off (FAST: ms).
        (429, lambda: _http_date_in(2), 1.0, 2.5),
        (429, lambda: "Wed, 21 Oct 2015 07:28:00 GMT", 0.0, 0.5),
        (429, lambda: "", 0.0, 0.5),
        (500, lambda: "soon", 0.0, 0.5),
    ],
    ids=["429-seconds", "503-seconds", "future-date", "past-date", "none", "unreadable"],
)
async def test_throttles_and_server_errors_are_retried_after_what_isams_asks(
    isams: ScriptedIsams, status: int, retry_after: Callable[[], str], least: float, most: float
) -> None:
    headers = {"retry-after": value} if (value := retry_after()) else {}
    isams.answer(
        "/api/humanresources/employees/7",
        httpx.Response(status, headers=headers, json={"message": "busy"}),
        httpx.Response(200, json={"id": 7}),
    )
    started = time.monotonic()

    assert await isams.client().employee("7") == {"id": 7}

    assert least <= time.monotonic() - started <= most
    assert len(isams.reads("/api/humanresources/employees/7")) == 2


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_retries_are_bounded_then_unavailable(isams: ScriptedIsams, status: int) -> None:
    isams.answer("/api/students", httpx.Response(status, json={"message": "deadlock victim"}))
    with pytest.raises(IsamsUnavailableError, match="deadlock victim"):
        [s async for s in isams.client().all_students()]
    assert len(isams.reads("/api/students")) == FAST.attempts


async def test_a_throttle_longer_than_a_request_may_wait_gives_up_at_once(
    isams: ScriptedIsams,
) -> None:
    limit = {"message": "The request limit for this API key has been reached"}
    isams.answer("/api/students", httpx.Response(429, headers={"retry-after": "3600"}, json=limit))

    with pytest.raises(IsamsThrottledError) as caught:
        [s async for s in isams.client().all_students()]

    assert caught.value.retry_after == 3600
    assert limit["message"] in str(caught.value)
    assert len(isams.reads("/api/students")) == 1


async def test_an_outage_longer_than_a_request_may_wait_gives_up_at_once(
    isams: ScriptedIsams,
) -> None:
    down = {"message": "iSAMS is unavailable"}
    isams.answer("/api/students/S1", httpx.Response(503, headers={"retry-after": "10"}, json=down))

    with pytest.raises(IsamsUnavailableError, match="asked to wait 10 s") as caught:
        await isams.client().student("S1")

    assert not isinstance(caught.value, IsamsThrottledError)
    assert len(isams.reads("/api/students/S1")) == 1


async def test_connection_errors_are_retried(isams: ScriptedIsams) -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        if request.url.path != TOKEN:
            calls += 1
            if calls == 1:
                raise httpx.ConnectError("refused", request=request)
        return isams.handler(request)

    isams.answer("/api/humanresources/employees/7", httpx.Response(200, json={"id": 7}))
    http = httpx.AsyncClient(transport=httpx.MockTransport(flaky))
    client = IsamsClient(http, "https://school.isams.cloud", "id", "secret", FAST)

    assert await client.employee("7") == {"id": 7}
    assert calls == 2


async def test_every_request_sent_is_counted(isams: ScriptedIsams) -> None:
    isams.answer(
        "/api/students",
        page("students", [{"schoolId": "S1"}], 1, 2),
        httpx.Response(500, json={"message": "deadlock"}),
        page("students", [{"schoolId": "S2"}], 2, 2),
    )
    client = isams.client()

    assert [s["schoolId"] async for s in client.all_students()] == ["S1", "S2"]

    assert client.requests_sent == len(isams.seen) == 4  # token, page 1, a 500, page 2
