"""The webhook endpoint against the real broker: what is answered, and what lands on Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from app.main import open_app
from consumers.adapters.kafka.admin import ping
from consumers.adapters.kafka.publisher import KafkaPublisher
from consumers.events import QueuedChange
from consumers.ports import PublisherPort as Publisher
from consumers.settings import Settings, Topics
from tests.integration.ingest_support import (
    NEW_SECRET,
    SCHOOL,
    STRANGER_SECRET,
    TcpGate,
    dumps,
    event,
    free_port,
    schools_file,
    signed_headers,
)
from tests.webhook_requests import REFUSALS, URL, Build, assert_problem, missing_headers

pytestmark = pytest.mark.kafka


def settings_for(bootstrap: str, prefix: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "kafka_topic_prefix": prefix,
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/var/sync.db",
        **overrides,
    }
    return Settings(**values)


def prefix_of(topics: Topics) -> str:
    return topics.changes.removesuffix("isams.changes")


@asynccontextmanager
async def serving(
    settings: Settings, publisher: Publisher | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Open the app on its services, run its lifespan, give a client that talks to it."""
    async with (
        open_app(settings, schools_file(), publisher=publisher) as app,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as c,
    ):
        yield c


@pytest.fixture
async def publisher(kafka_bootstrap: str) -> AsyncIterator[KafkaPublisher]:
    started = KafkaPublisher(kafka_bootstrap)
    await started.start()
    assert started.connected
    yield started
    await started.stop()


@pytest.fixture
async def client(
    kafka_bootstrap: str, topics: Topics, publisher: Publisher, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(kafka_bootstrap, prefix_of(topics), tmp_path)
    async with serving(settings, publisher) as c:
        yield c


@asynccontextmanager
async def assigned(bootstrap: str, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """Yield a group-less consumer holding every partition of `topic`, from the start."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        for _ in range(200):  # assignment happens in the background, after a metadata fetch
            if consumer.assignment():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"no partitions of {topic} assigned within 10 s")
        yield consumer
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, expected: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Read `expected` records from the start of `topic` (10 s at most)."""
    async with assigned(bootstrap, topic) as consumer:
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 10
        while len(records) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            records.extend(record for batch in batches.values() for record in batch)
        return records


async def topic_size(bootstrap: str, topic: str) -> int:
    """Return how many records `topic` holds (end offsets: exact once acks=all returned)."""
    async with assigned(bootstrap, topic) as consumer:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        return sum(ends.values())


# --- accepted -------------------------------------------------------------------------------


async def test_signed_event_is_queued_with_key_value_and_headers(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    body = dumps(event("student", "updated", "145629077495"))
    response = await client.post(
        URL, content=body, headers=signed_headers(body, webhook_id="msg_1")
    )

    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1}
    [record] = await read_all(kafka_bootstrap, topics.changes, expected=1)
    assert record.key == f"{SCHOOL}:student:145629077495".encode()
    queued = QueuedChange.from_bytes(record.value)
    assert (queued.type, queued.school, queued.webhook_id) == ("student.updated", SCHOOL, "msg_1")
    assert queued.data.schoolId == "145629077495"
    assert abs(queued.received_at - datetime.now(UTC)) < timedelta(minutes=1)
    headers = dict(record.headers)
    assert headers["webhook-id"] == b"msg_1"
    assert headers["school"] == SCHOOL.encode()
    assert headers["type"] == b"student.updated"


async def test_signed_batch_is_queued_one_message_per_event(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    fat = event("student", "created", "S1") | {
        "data": {"schoolId": "S1", "record": {"forename": "Ada", "yearGroup": 7}}
    }
    batch = [fat, event("contact", "updated", "C1"), event("staff", "deleted", "T1")]
    body = dumps(batch)
    response = await client.post(URL, content=body, headers=signed_headers(body, webhook_id="b1"))

    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 3}
    records = await read_all(kafka_bootstrap, topics.changes, expected=3)
    by_key = {record.key: QueuedChange.from_bytes(record.value) for record in records if record.key}
    assert set(by_key) == {
        f"{SCHOOL}:student:S1".encode(),
        f"{SCHOOL}:contact:C1".encode(),
        f"{SCHOOL}:staff:T1".encode(),
    }
    assert by_key[f"{SCHOOL}:student:S1".encode()].data.record == {
        "forename": "Ada",
        "yearGroup": 7,
    }
    assert {dict(record.headers)["type"] for record in records} == {
        b"student.created",
        b"contact.updated",
        b"staff.deleted",
    }


async def test_integer_ids_are_queued_as_text_in_the_key_and_the_value(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    """The iSAMS REST API gives contact and employee ids as JSON integers."""
    contact = {"type": "contact.updated", "timestamp": "2026-11-28T10:00:00Z"} | {
        "data": {"id": 3301, "schoolId": "145629077495", "record": {"id": 3301, "personId": 9}}
    }
    staff = {"type": "staff.updated", "timestamp": "2026-11-28T10:00:00Z"} | {
        "data": {"id": 17, "managebacAccess": True}
    }
    body = dumps([contact, staff])
    response = await client.post(URL, content=body, headers=signed_headers(body))

    assert response.status_code == 202, response.text
    records = await read_all(kafka_bootstrap, topics.changes, expected=2)
    by_key = {record.key: record for record in records}
    assert set(by_key) == {f"{SCHOOL}:contact:3301".encode(), f"{SCHOOL}:staff:17".encode()}
    queued_contact = orjson.loads(by_key[f"{SCHOOL}:contact:3301".encode()].value)
    assert queued_contact["data"]["id"] == "3301"
    assert queued_contact["data"]["record"]["id"] == 3301  # the record stays as iSAMS gave it
    assert orjson.loads(by_key[f"{SCHOOL}:staff:17".encode()].value)["data"]["id"] == "17"


@pytest.mark.parametrize("bad", [True, -1, 1.5, [1], {"id": 1}])
async def test_an_id_that_is_neither_text_nor_a_whole_number_is_refused(
    client: httpx.AsyncClient, bad: object
) -> None:
    body = dumps(
        {"type": "staff.updated", "timestamp": "2026-11-28T10:00:00Z"} | {"data": {"id": bad}}
    )
    answer = await client.post(URL, content=body, headers=signed_headers(body))
    problem = assert_problem(answer, 422)
    assert problem["errors"][0]["pointer"] == "/data/id"
    assert "string or a non-negative integer" in problem["errors"][0]["detail"]


async def test_the_new_secret_of_a_rotation_verifies_too(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    body = dumps(event())
    response = await client.post(URL, content=body, headers=signed_headers(body, secret=NEW_SECRET))

    assert response.status_code == 202, response.text
    assert await topic_size(kafka_bootstrap, topics.changes) == 1


async def test_json_subtype_and_charset_are_accepted(client: httpx.AsyncClient) -> None:
    body = dumps(event())
    headers = signed_headers(body, content_type="application/cloudevents+json; charset=UTF-8")
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 202, response.text


# --- refused: every 4xx row of docs/design.md §2.2, and nothing on the topic ----------------


@pytest.mark.parametrize(
    ("build", "status", "slug", "pointers"),
    [pytest.param(*row[1:], id=row[0]) for row in REFUSALS],
)
async def test_refusals_answer_problem_json_and_queue_nothing(
    client: httpx.AsyncClient,
    kafka_bootstrap: str,
    topics: Topics,
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
    assert await topic_size(kafka_bootstrap, topics.changes) == 0


async def test_a_401_names_the_scheme(client: httpx.AsyncClient) -> None:
    _, body, headers = missing_headers()
    response = await client.post(URL, content=body, headers=headers)
    assert_problem(response, 401)
    assert "WWW-Authenticate" in response.headers


async def test_a_chunked_huge_body_is_refused_without_reading_it_all(
    client: httpx.AsyncClient, kafka_bootstrap: str, topics: Topics
) -> None:
    chunk = b"x" * 65536
    total_chunks = 64  # 4 MiB offered
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(total_chunks):
            sent += 1
            yield chunk

    response = await client.post(
        URL, content=stream(), headers=signed_headers(b"") | {"webhook-id": "chunked"}
    )

    assert_problem(response, 413)
    assert "content-length" not in response.request.headers
    assert sent <= 1024 * 1024 // len(chunk) + 1 < total_chunks
    assert await topic_size(kafka_bootstrap, topics.changes) == 0


async def test_routing_errors_are_problems_too(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/no/such/route"), 404, "/no/such/route")
    response = await client.get(URL)
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


# --- health, readiness, metrics ----------------------------------------------------------


async def test_health_ready_and_metrics(client: httpx.AsyncClient) -> None:
    body = dumps([event(), event("staff", "updated", "T9")])
    await client.post(URL, content=body, headers=signed_headers(body))
    await client.post(URL, content=body, headers=signed_headers(body, secret=STRANGER_SECRET))
    await client.post("/v1/webhooks/isams/someone-else", content=body, headers=signed_headers(body))

    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"kafka": "ok", "ledger": "ok"},
        "failed": [],
    }
    metrics = (await client.get("/metrics")).text
    assert f'isams_sync_webhook_requests_total{{school="{SCHOOL}",status="202"}} 1.0' in metrics
    assert f'isams_sync_webhook_requests_total{{school="{SCHOOL}",status="401"}} 1.0' in metrics
    assert 'isams_sync_webhook_requests_total{school="unknown",status="404"} 1.0' in metrics
    assert f'isams_sync_events_accepted_total{{school="{SCHOOL}"}} 2.0' in metrics
    assert "isams_sync_publish_duration_seconds_count 1.0" in metrics


async def test_readyz_names_a_ledger_that_does_not_answer(
    kafka_bootstrap: str, topics: Topics, publisher: Publisher, tmp_path: Path
) -> None:
    settings = settings_for(
        kafka_bootstrap,
        prefix_of(topics),
        tmp_path,
        database_url=f"postgresql+asyncpg://sync:unused@127.0.0.1:{free_port()}/sync",
    )
    async with serving(settings, publisher) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["ledger"]


# --- Kafka unavailable ---------------------------------------------------------------------


async def test_kafka_unreachable_answers_503_with_retry_after(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    down = KafkaPublisher(closed, reconnect_interval=60)
    await down.start()
    settings = settings_for(closed, prefix_of(topics), tmp_path)
    try:
        async with serving(settings, down) as client:
            body = dumps(event())
            started = time.monotonic()
            response = await client.post(URL, content=body, headers=signed_headers(body))
            elapsed = time.monotonic() - started
            ready = await client.get("/readyz")
            alive = await client.get("/healthz")
    finally:
        await down.stop()

    problem = assert_problem(response, 503)
    assert problem["type"].endswith("problems/kafka-unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert elapsed < 5
    assert ready.status_code == 503
    assert ready.json()["failed"] == ["kafka"]
    assert alive.status_code == 200
    assert await topic_size(kafka_bootstrap, topics.changes) == 0


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.2)
    return False


async def test_serve_starts_without_kafka_then_recovers_and_creates_the_topics(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The app's own publisher: down at start-up, then Kafka "comes back" (a gate opens)."""
    gate = TcpGate(free_port(), kafka_bootstrap)
    prefix = f"test-recover-{time.monotonic_ns()}."
    settings = settings_for(f"127.0.0.1:{gate.port}", prefix, tmp_path)
    body = dumps(event())
    try:
        async with serving(settings) as client:
            assert (await client.get("/healthz")).status_code == 200
            before = await client.get("/readyz")
            refused = await client.post(URL, content=body, headers=signed_headers(body))

            await gate.open()

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            assert await wait_for(ready, seconds=20)
            accepted = await client.post(URL, content=body, headers=signed_headers(body))
    finally:
        await gate.close()

    assert before.status_code == 503
    assert before.json()["failed"] == ["kafka"]
    assert_problem(refused, 503)
    assert "retry-after" in refused.headers
    assert accepted.status_code == 202, accepted.text
    assert await ping(kafka_bootstrap, timeout=5)
    topics = Topics.with_prefix(prefix)
    for name in topics.all():
        assert await topic_size(kafka_bootstrap, name) == (1 if name == topics.changes else 0)


async def test_the_ledger_directory_is_created(
    kafka_bootstrap: str, topics: Topics, publisher: Publisher, tmp_path: Path
) -> None:
    settings = settings_for(kafka_bootstrap, prefix_of(topics), tmp_path)
    assert not (tmp_path / "var").exists()
    async with serving(settings, publisher) as client:
        assert (await client.get("/readyz")).status_code == 200
    assert (tmp_path / "var").is_dir()
