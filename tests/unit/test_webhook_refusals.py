"""The webhook's answers without a broker: `create_app` on services built from the fakes.

Every refusal of docs/design.md §2.2 answers RFC 9457 problem+json and publishes nothing;
a publisher that fails answers 503 with Retry-After (413 for a message Kafka will not take);
an accepted request answers 202 once every event is in the publisher, one message per event
with the key, value and headers the consumers read. tests/integration/test_ingest.py proves
the same on the real broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from app.main import create_app
from consumers.ports import MessageTooLargeError, PublishError
from tests.fakes import FakeLedger, FakePublisher, fake_services
from tests.integration.ingest_support import (
    NEW_SECRET,
    SCHOOL,
    STRANGER_SECRET,
    dumps,
    event,
    schools_file,
    signed_headers,
)
from tests.webhook_requests import REFUSALS, URL, Build, assert_problem, missing_headers, no_data


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
async def client(publisher: FakePublisher, ledger: FakeLedger) -> AsyncIterator[httpx.AsyncClient]:
    """The ingest app on fakes, its lifespan run, and a client that talks to it in-process."""
    app = create_app(fake_services(schools_file(), publisher=publisher, ledger=ledger))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as c,
    ):
        yield c


# --- refused: every 4xx row of docs/design.md §2.2, and nothing published -------------------


@pytest.mark.parametrize(
    ("build", "status", "slug", "pointers"),
    [pytest.param(*row[1:], id=row[0]) for row in REFUSALS],
)
async def test_refusals_answer_problem_json_and_publish_nothing(
    client: httpx.AsyncClient,
    publisher: FakePublisher,
    build: Build,
    status: int,
    slug: str,
    pointers: list[str] | None,
) -> None:
    path, body, headers = build()

    response = await client.post(path, content=body, headers=headers)

    problem = assert_problem(response, status, path)
    assert problem["type"].endswith(f"problems/{slug}")
    if pointers is None:
        assert "errors" not in problem
    else:
        assert [error["pointer"] for error in problem["errors"]] == pointers
    assert publisher.published == []


async def test_a_401_names_the_scheme(client: httpx.AsyncClient) -> None:
    _, body, headers = missing_headers()
    response = await client.post(URL, content=body, headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Webhook-Signature")


async def test_a_chunked_huge_body_is_refused_without_reading_it_all(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    chunk = b"x" * 65536
    offered = 64  # 4 MiB
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(offered):
            sent += 1
            yield chunk

    response = await client.post(
        URL, content=stream(), headers=signed_headers(b"") | {"webhook-id": "chunked"}
    )

    assert_problem(response, 413)
    assert "content-length" not in response.request.headers
    assert sent <= 1024 * 1024 // len(chunk) + 1 < offered
    assert publisher.published == []


async def test_a_too_many_errors_answer_lists_the_first_hundred(client: httpx.AsyncClient) -> None:
    body = dumps([no_data("staff")] * 150)
    response = await client.post(URL, content=body, headers=signed_headers(body))
    problem = assert_problem(response, 422)
    assert len(problem["errors"]) == 100
    assert "150 invalid value(s); the first 100 are listed" in problem["detail"]


# --- the publisher fails --------------------------------------------------------------------


async def test_a_publisher_that_fails_answers_503_with_retry_after(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    publisher.fail_with(PublishError("no acknowledgement within 5 s"))
    body = dumps(event())

    response = await client.post(URL, content=body, headers=signed_headers(body))

    problem = assert_problem(response, 503)
    assert problem["type"].endswith("problems/kafka-unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert publisher.published == []
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()["failed"]) == (503, ["kafka"])


async def test_a_partly_published_batch_answers_503_and_the_retry_is_accepted_whole(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    publisher.fail_with(PublishError("1 of 3 not acknowledged"), after=2)
    body = dumps([event(ident="S1"), event(ident="S2"), event(ident="S3")])

    refused = await client.post(URL, content=body, headers=signed_headers(body))
    publisher.recover()
    accepted = await client.post(URL, content=body, headers=signed_headers(body))

    assert_problem(refused, 503)
    assert accepted.status_code == 202, accepted.text
    ids = [change.data.schoolId for change in publisher.changes()]
    assert ids == ["S1", "S2", "S1", "S2", "S3"]  # the repeats are harmless: state-based


async def test_a_message_too_large_for_kafka_answers_413(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    publisher.fail_with(MessageTooLargeError("message of 1.2 MB over max.message.bytes"))
    body = dumps(event())

    response = await client.post(URL, content=body, headers=signed_headers(body))

    problem = assert_problem(response, 413)
    assert problem["type"].endswith("problems/event-too-large")


# --- accepted -------------------------------------------------------------------------------


async def test_a_signed_event_is_published_with_key_value_and_headers(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    body = dumps(event("student", "updated", "145629077495"))

    response = await client.post(URL, content=body, headers=signed_headers(body, webhook_id="m1"))

    assert response.status_code == 202, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"accepted": 1}
    [(topic, message)] = publisher.published
    assert topic == "isams.changes"
    assert message.key == f"{SCHOOL}:student:145629077495".encode()
    [change] = publisher.changes()
    assert (change.type, change.school, change.webhook_id) == ("student.updated", SCHOOL, "m1")
    assert abs(change.received_at - datetime.now(UTC)) < timedelta(minutes=1)
    headers = dict(message.headers)
    assert headers["webhook-id"] == b"m1"
    assert headers["school"] == SCHOOL.encode()
    assert headers["type"] == b"student.updated"


async def test_a_batch_is_published_whole_one_message_per_event_in_order(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    fat = event("student", "created", "S1") | {
        "data": {"schoolId": "S1", "record": {"forename": "Ada", "yearGroup": 7}}
    }
    contact = {"type": "contact.updated", "timestamp": "2026-11-28T10:00:00Z"} | {
        "data": {"id": 3301, "schoolId": "S1"}
    }
    body = dumps([fat, contact, event("staff", "deleted", "T1")])

    response = await client.post(URL, content=body, headers=signed_headers(body, secret=NEW_SECRET))

    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 3}
    assert [message.key for _, message in publisher.published] == [
        f"{SCHOOL}:student:S1".encode(),
        f"{SCHOOL}:contact:3301".encode(),  # an integer id, queued as text
        f"{SCHOOL}:staff:T1".encode(),
    ]
    changes = publisher.changes()
    assert changes[0].data.record == {"forename": "Ada", "yearGroup": 7}
    assert orjson.loads(publisher.published[1][1].value)["data"]["id"] == "3301"
    assert [change.type for change in changes] == [
        "student.created",
        "contact.updated",
        "staff.deleted",
    ]


async def test_the_lifespan_migrates_the_ledger_and_readiness_asks_both(
    client: httpx.AsyncClient, ledger: FakeLedger
) -> None:
    assert ledger.schema_created is True
    assert (await client.get("/readyz")).json()["checks"] == {"kafka": "ok", "ledger": "ok"}
    ledger.available = False
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()["failed"]) == (503, ["ledger"])


async def test_metrics_count_answers_by_school_and_status(client: httpx.AsyncClient) -> None:
    body = dumps([event(), event("staff", "updated", "T9")])
    await client.post(URL, content=body, headers=signed_headers(body))
    await client.post(URL, content=body, headers=signed_headers(body, secret=STRANGER_SECRET))
    await client.post("/v1/webhooks/isams/someone-else", content=body, headers=signed_headers(body))

    metrics = (await client.get("/metrics")).text

    assert f'isams_sync_webhook_requests_total{{school="{SCHOOL}",status="202"}} 1.0' in metrics
    assert f'isams_sync_webhook_requests_total{{school="{SCHOOL}",status="401"}} 1.0' in metrics
    assert 'isams_sync_webhook_requests_total{school="unknown",status="404"} 1.0' in metrics
    assert f'isams_sync_events_accepted_total{{school="{SCHOOL}"}} 2.0' in metrics
