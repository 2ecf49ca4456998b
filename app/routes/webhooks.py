"""`POST /v1/webhooks/isams/{school_id}`: verify → validate → publish → 202 (docs/design.md §2.2).

Checks run in this order, cheapest and least trusting first, so that nothing is read,
verified or parsed that an earlier check could refuse:

1. 404 unknown school (no secret to verify with, nothing to read);
2. 415 content type not JSON;
3. 413 body over 1 MiB: Content-Length first, then bytes counted while reading, so a
   chunked body is refused at the first byte past the limit, never buffered whole;
4. 400 body not UTF-8 (JSON is UTF-8, and the signature library signs text);
5. 401 missing headers, stale timestamp or no matching signature;
6. 400 malformed JSON (only an authenticated body is parsed);
7. 422 valid JSON but not one event or an array of 1..500 valid events;
8. 503 + Retry-After when Kafka does not acknowledge every message (413 if one message is
   too large for Kafka), else 202.

Nothing is published unless every event of the request is valid. A 503 can come after Kafka
took part of the batch: the sender's retry brings the rest, and the repeats change nothing
(the consumer applies each record's current state). Logs carry the school,
the webhook id, the event count and the status, never the body.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import ClientDisconnect

from app.deps import IngestContext, ingest_context
from app.metrics import UNKNOWN_SCHOOL
from app.problems import FieldError, ProblemError, json_pointer
from app.routes.webhooks_openapi import MAX_BODY_BYTES, documented_route
from app.security import WEBHOOK_HEADERS, SignatureError
from consumers.events import MAX_EVENTS_PER_REQUEST, ChangeEvent, to_message
from consumers.ports import MessageTooLargeError, PublishError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MAX_REPORTED_ERRORS = 100  # a 500-event batch can fail many ways; the first 100 are enough

WEBHOOK_PATH = "/v1/webhooks/isams/{school_id}"


async def receive_isams_webhook(request: Request) -> Response:
    """Answer one webhook request: 202 once Kafka holds every event, else a problem."""
    ingest = ingest_context(request)
    school_id: str = request.path_params["school_id"]
    label = school_id if school_id in ingest.verifiers else UNKNOWN_SCHOOL
    claimed_id = request.headers.get("webhook-id", "")[:80]  # for logs; verified only on 202
    try:
        webhook_id, count = await _ingest(school_id, request, ingest)
    except ProblemError as problem:
        ingest.metrics.answered(label, problem.status)
        log.info(
            "webhook refused: school=%s webhook_id=%s status=%d reason=%s",
            label,
            claimed_id,
            problem.status,
            problem.slug,
            extra={
                "school": label,
                "webhook_id": claimed_id,
                "status": problem.status,
                "reason": problem.slug,
            },
        )
        raise
    except Exception:
        ingest.metrics.answered(label, 500)
        raise
    ingest.metrics.answered(label, 202)
    ingest.metrics.accepted(label, count)
    log.debug(  # one line per request at INFO would cost more than the request (see bench/)
        "webhook accepted: school=%s webhook_id=%s events=%d",
        label,
        webhook_id,
        count,
        extra={"school": label, "webhook_id": webhook_id, "events": count, "status": 202},
    )
    return Response(orjson.dumps({"accepted": count}), 202, media_type="application/json")


def add_webhook_route(app: FastAPI) -> None:
    """Serve the webhook as a plain Starlette route, described by `DOCUMENTED_ROUTE`.

    FastAPI's parameter and dependency machinery, and resuming its deep coroutine stack
    after the Kafka acknowledgement, cost more CPU than everything else the request does
    (bench/steps.py: 225 → 125 µs a request). The route takes nothing FastAPI would
    validate (the body is checked by hand, in the order above), so nothing is lost.
    """
    app.add_route(WEBHOOK_PATH, receive_isams_webhook, methods=["POST"], include_in_schema=False)


async def _ingest(school_id: str, request: Request, ingest: IngestContext) -> tuple[str, int]:
    """Run the checks in the documented order and publish; return (webhook id, count)."""
    verifier = ingest.verifiers.get(school_id)
    if verifier is None:
        raise ProblemError(404, "unknown-school", "Unknown school", "No such school is configured.")
    check_content_type(request.headers.get("content-type"))
    body = await read_limited(request, MAX_BODY_BYTES)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError(
            400, "invalid-json", "Malformed JSON", "The body is not UTF-8 encoded JSON."
        ) from None
    try:
        webhook_id = verifier.verify(
            body, {name: request.headers.get(name, "") for name in WEBHOOK_HEADERS}
        )
    except SignatureError as exc:
        raise ProblemError(
            401,
            "invalid-signature",
            "Invalid signature",
            f"The request is not signed for this school: {exc}.",
            headers={"WWW-Authenticate": 'Webhook-Signature realm="isams-sync"'},
        ) from None
    events = parse_event_items(body)
    received_at = datetime.now(UTC)
    messages = [to_message(event, school_id, webhook_id, received_at, raw) for event, raw in events]
    started = time.perf_counter()
    try:
        await ingest.publisher.publish(ingest.topic, messages)
    except MessageTooLargeError:
        raise ProblemError(
            413, "event-too-large", "Event too large", "One event is larger than Kafka accepts."
        ) from None
    except PublishError as exc:
        log.warning("kafka publish failed: school=%s webhook_id=%s: %s", school_id, webhook_id, exc)
        raise ProblemError(
            503,
            "kafka-unavailable",
            "Queue unavailable",
            "Kafka did not acknowledge every event, so the request was not accepted (some "
            "events may be queued already). Send the same request again later: repeats "
            "are harmless.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    ingest.metrics.publish_seconds.observe(time.perf_counter() - started)
    return webhook_id, len(messages)


def check_content_type(value: str | None) -> None:
    """Accept `application/json` and `application/*+json`, in UTF-8 (or no charset)."""
    media_type, _, parameters = (value or "").partition(";")
    media_type = media_type.strip().lower()
    is_json = media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    charset = ""
    for parameter in parameters.split(";"):
        name, _, setting = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = setting.strip().strip('"').lower()
    if not is_json or charset not in ("", "utf-8", "utf8"):
        raise ProblemError(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the events as application/json in UTF-8.",
        )


async def read_limited(request: Request, limit: int) -> bytes:
    """Read the body, refusing it (413) as soon as it is known to exceed `limit` bytes."""
    too_large = ProblemError(
        413, "payload-too-large", "Payload too large", f"The body is over {limit} bytes."
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise ProblemError(
            400, "incomplete-body", "Incomplete body", "The client disconnected mid-body."
        ) from None
    return b"".join(chunks)


def parse_events(body: bytes) -> list[ChangeEvent]:
    """Parse one event or an array of events; 400 if not JSON, 422 naming each bad field."""
    return [event for event, _ in parse_event_items(body)]


def parse_event_items(body: bytes) -> list[tuple[ChangeEvent, dict[str, Any]]]:
    """Like `parse_events`, keeping each event's JSON object as received (to queue as is)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(
            400, "invalid-json", "Malformed JSON", f"The body is not valid JSON: {exc}."
        ) from None
    if isinstance(document, dict):
        items: list[tuple[tuple[int, ...], Any]] = [((), document)]
    elif isinstance(document, list) and 1 <= len(document) <= MAX_EVENTS_PER_REQUEST:
        items = [((index,), item) for index, item in enumerate(document)]
    elif isinstance(document, list):
        raise _invalid(
            [
                FieldError(
                    pointer="",
                    detail=f"an array must hold 1 to {MAX_EVENTS_PER_REQUEST} events; "
                    f"it holds {len(document)}",
                )
            ]
        )
    else:
        raise _invalid([FieldError(pointer="", detail="must be an event or an array of events")])
    events: list[tuple[ChangeEvent, dict[str, Any]]] = []
    errors: list[FieldError] = []
    for prefix, item in items:
        try:
            events.append((ChangeEvent.model_validate(item), item))
        except ValidationError as exc:
            errors.extend(field_errors(exc.errors(include_url=False, include_input=False), prefix))
    if errors:
        raise _invalid(errors)
    return events


_REQUIRED_ID = re.compile(r"data\.(\w+) is required")


def field_errors(details: Sequence[ErrorDetails], prefix: tuple[int, ...]) -> list[FieldError]:
    """Turn pydantic errors into pointers; a missing id (a model-level check) points at it."""
    found = []
    for error in details:
        location: tuple[str | int, ...] = (*prefix, *error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"] and (missing := _REQUIRED_ID.search(message)):
            location = (*prefix, "data", missing.group(1))
        found.append(FieldError(pointer=json_pointer(location), detail=message))
    return found


def _invalid(errors: list[FieldError]) -> ProblemError:
    shown = errors[:MAX_REPORTED_ERRORS]
    more = len(errors) - len(shown)
    detail = f"{len(errors)} invalid value(s)" + (
        f"; the first {len(shown)} are listed" if more else ""
    )
    return ProblemError(
        422, "invalid-event", "Invalid event", detail + ": see `errors`.", errors=shown
    )


DOCUMENTED_ROUTE = documented_route(WEBHOOK_PATH, receive_isams_webhook)
