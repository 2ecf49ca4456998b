"""The ManageBac+ client's failure rules, over httpx.MockTransport (pure HTTP logic)."""

from __future__ import annotations

import time

import httpx
import pytest

from consumers.adapters.managebac import (
    ManagebacClient,
    ManagebacRejectedError,
    ManagebacUnavailableError,
    RetryPolicy,
)

FAST = RetryPolicy(attempts=3, timeout=10, wait_initial=0.001, wait_max=0.01)


def client_answering(*responses: httpx.Response) -> tuple[ManagebacClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ManagebacClient(http, "https://mb.example", "token", 1000, FAST), seen


async def test_a_429_waits_for_retry_after_then_succeeds() -> None:
    client, seen = client_answering(
        httpx.Response(429, headers={"retry-after": "0.3"}),
        httpx.Response(200, json={"student": {"id": 1}}),
    )
    started = time.monotonic()
    await client.update("students", 1, {"first_name": "A"})
    assert time.monotonic() - started >= 0.3
    assert len(seen) == 2
    assert seen[0].headers["auth-token"] == "token"


@pytest.mark.parametrize("status", [500, 502, 503, 409])
async def test_server_errors_and_conflicts_are_retried_then_reported_unavailable(
    status: int,
) -> None:
    client, seen = client_answering(httpx.Response(status))
    with pytest.raises(ManagebacUnavailableError):
        await client.update("students", 1, {"first_name": "A"})
    assert len(seen) == FAST.attempts


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_client_errors_are_refused_at_once_with_the_body(status: int) -> None:
    client, seen = client_answering(httpx.Response(status, text='{"errors":{"email":["x"]}}'))
    with pytest.raises(ManagebacRejectedError) as refused:
        await client.update("students", 1, {"first_name": "A"})
    assert len(seen) == 1
    assert refused.value.status == status
    assert '"email"' in refused.value.body


async def test_an_existing_link_counts_as_linked_and_gets_the_relationship() -> None:
    client, seen = client_answering(
        httpx.Response(422, json={"errors": {"child": ["has already been taken"]}}),
        httpx.Response(200, json={"child": {"id": 2, "relationship": "Mother"}}),
    )
    await client.link_child(7, 2, "Mother")
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/v2/parents/7/children"),
        ("PUT", "/v2/parents/7/children/2"),
    ]


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
