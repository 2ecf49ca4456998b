"""Price each step of `serve`'s webhook path in-process, in CPU microseconds per request.

Complements `bench.ingest --breakdown` (which knocks costs out of the running service):
here each step of `app.routes.webhooks` runs alone on the same fat student event the load
generator sends, so the figures add up to (most of) the service's CPU per request. The
Kafka step publishes for real, 32 requests in flight as under the benchmark's load.

    python -m bench.steps [--events 1|50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from standardwebhooks import Webhook

from app.main import open_app
from app.metrics import IngestMetrics, new_registry
from app.routes.webhooks import check_content_type, parse_event_items
from app.security import WebhookVerifier
from bench.baseline import create_app as baseline_app
from bench.pool import PATH, SCHOOL_ID, new_secret, student_bodies
from bench.variants import InstantPublisher
from consumers.adapters.kafka.admin import ensure_topics
from consumers.adapters.kafka.publisher import KafkaPublisher
from consumers.events import to_message
from consumers.logs import configure_logging
from consumers.settings import SchoolsFile, Settings

Step = Callable[[], object]
Asgi = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def cpu_us(step: Step, repeat: int) -> float:
    """Return the CPU time of one call of `step`, in microseconds (best of three rounds)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(repeat):
            step()
        best = min(best, (time.process_time() - started) / repeat * 1e6)
    return best


async def publish_us(bootstrap: str, body: bytes, requests: int, concurrency: int) -> float:
    """CPU µs per request of `KafkaPublisher.publish` (send + ack wait) with real Kafka."""
    topic = f"bench-steps-{uuid.uuid4().hex[:8]}.isams.changes"
    await ensure_topics(bootstrap, [topic], 6, timeout=10)
    publisher = KafkaPublisher(bootstrap)
    await publisher.start()
    try:
        events = [event for event, _ in parse_event_items(body)]
        now = datetime.now(UTC)
        messages = [to_message(event, SCHOOL_ID, "msg_bench", now) for event in events]

        async def worker(count: int) -> None:
            for _ in range(count):
                await publisher.publish(topic, messages)

        await asyncio.gather(*(worker(20) for _ in range(concurrency)))  # warm up
        started = time.process_time()
        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
        return (time.process_time() - started) / (requests // concurrency * concurrency) * 1e6
    finally:
        await publisher.stop()
        await _delete_topic(bootstrap, topic)


async def _delete_topic(bootstrap: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


async def call(app: Asgi, body: bytes, headers: dict[str, str]) -> int:
    """Send one POST straight into an ASGI app (no socket, no HTTP parser); return the status."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()]
        + [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"host", b"127.0.0.1"),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def route_us(
    app: Asgi, body: bytes, headers: dict[str, str], requests: int, concurrency: int
) -> float:
    """CPU µs per request of the whole app, `concurrency` requests in flight."""

    async def worker(count: int) -> None:
        for _ in range(count):
            status = await call(app, body, headers)
            if status != 202:
                raise RuntimeError(f"the app answered {status}")

    per_worker = max(1, requests // concurrency)
    await asyncio.gather(*(worker(max(1, per_worker // 10)) for _ in range(concurrency)))
    started = time.process_time()
    await asyncio.gather(*(worker(per_worker) for _ in range(concurrency)))
    return (time.process_time() - started) / (per_worker * concurrency) * 1e6


@dataclass(frozen=True)
class RouteVariant:
    """One app to price: serve with some costs knocked out, or the baseline."""

    name: str
    kafka: bool = True  # the real producer, else acknowledgements at once
    baseline: bool = False


ROUTE_VARIANTS = (
    RouteVariant("bare FastAPI baseline", baseline=True),
    RouteVariant("serve as shipped"),
    RouteVariant("  Kafka acks at once", kafka=False),
)


async def routes(
    bootstrap: str, secret: str, body: bytes, headers: dict[str, str], requests: int, rounds: int
) -> list[tuple[str, float]]:
    """Price the whole route in-process: the baseline, serve, and serve minus some costs.

    Variants take turns, `rounds` times; each keeps its best round (the least disturbed
    by whatever else shares the machine's cores).
    """
    schools = SchoolsFile.model_validate(
        {
            "schools": [
                {
                    "id": SCHOOL_ID,
                    "webhook_secrets": [secret],
                    "isams": {
                        "base_url": "http://x.invalid",
                        "client_id": "-",
                        "client_secret": "-",
                    },
                    "managebac": {"base_url": "http://x.invalid", "token": "-"},
                }
            ]
        }
    )
    topic_prefix = f"bench-steps-{uuid.uuid4().hex[:8]}."
    settings = Settings(kafka_bootstrap=bootstrap, kafka_topic_prefix=topic_prefix)
    await ensure_topics(bootstrap, [settings.topics.changes], 6, timeout=10)
    kafka = KafkaPublisher(bootstrap)
    await kafka.start()
    exits = contextlib.AsyncExitStack()
    best = dict.fromkeys((variant.name for variant in ROUTE_VARIANTS), float("inf"))
    try:
        apps: list[tuple[RouteVariant, Asgi]] = []
        for variant in ROUTE_VARIANTS:
            if variant.baseline:
                apps.append((variant, baseline_app()))
                continue
            publisher = kafka if variant.kafka else InstantPublisher()
            app = await exits.enter_async_context(open_app(settings, schools, publisher=publisher))
            apps.append((variant, app))
        for _ in range(rounds):
            for variant, asgi in apps:
                micros = await route_us(asgi, body, headers, requests, 32)
                best[variant.name] = min(best[variant.name], micros)
    finally:
        await exits.aclose()
        await kafka.stop()
        await _delete_topic(bootstrap, settings.topics.changes)
    return list(best.items())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1, help="events per request (1 or 50)")
    parser.add_argument(
        "--bootstrap", default=os.environ.get("SYNC_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
    parser.add_argument("--repeat", type=int, default=2000, help="calls per step measurement")
    parser.add_argument("--rounds", type=int, default=5, help="turns of the route variants")
    args = parser.parse_args(argv)
    secret = new_secret()
    body = student_bodies(1000, args.events, 1)[0]
    webhook_id = "msg_" + uuid.uuid4().hex
    now = datetime.now(UTC)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body.decode()),
    }
    verifier = WebhookVerifier([SecretStr(secret)])
    items = parse_event_items(body)
    events = [event for event, _ in items]
    metrics = IngestMetrics(new_registry())
    configure_logging("INFO")
    devnull = open(os.devnull, "w")  # noqa: SIM115  (open for the whole run)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    repeat = max(20, args.repeat // args.events)

    def count() -> None:
        metrics.answered(SCHOOL_ID, 202)
        metrics.accepted(SCHOOL_ID, len(events))
        metrics.publish_seconds.observe(0.003)

    steps: list[tuple[str, Step]] = [
        ("content type check", lambda: check_content_type("application/json")),
        ("UTF-8 check", lambda: body.decode("utf-8")),
        ("signature (standardwebhooks)", lambda: verifier.verify(body, headers)),
        ("parse: orjson + ChangeEvent", lambda: parse_event_items(body)),
        (
            "to_message: event JSON + fields",
            lambda: [to_message(e, SCHOOL_ID, webhook_id, now, raw) for e, raw in items],
        ),
        ("metrics (3 updates)", count),
    ]
    print(f"{len(body)} byte body, {len(events)} event(s) per request")
    total = 0.0
    for name, step in steps:
        micros = cpu_us(step, repeat)
        total += micros
        print(f"  {name:34} {micros:8.1f} µs")
    kafka = asyncio.run(publish_us(args.bootstrap, body, max(640, repeat), 32))
    print(f"  {'publish: aiokafka send + ack wait':34} {kafka:8.1f} µs")
    print(f"  {'sum':34} {total + kafka:8.1f} µs")
    print("whole route in-process (ASGI call, no socket), 32 in flight, CPU µs per request:")
    priced = asyncio.run(
        routes(args.bootstrap, secret, body, headers, max(1600, repeat), args.rounds)
    )
    for name, micros in priced:
        print(f"  {name:34} {micros:8.1f} µs")


if __name__ == "__main__":
    main()
