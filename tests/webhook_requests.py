"""The webhook requests both ingest test modules send: every refusal of docs/design.md §2.2
as one table (tests/unit on the fakes, tests/integration on the real broker), and the check
of a problem+json answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.integration.ingest_support import (
    SCHOOL,
    STRANGER_SECRET,
    dumps,
    event,
    signed_headers,
)

URL = f"/v1/webhooks/isams/{SCHOOL}"
PROBLEM = "application/problem+json"

Request = tuple[str, bytes, dict[str, str]]
Build = Callable[[], Request]


def signed(document: Any, **kwargs: Any) -> Build:
    def build() -> Request:
        body = document if isinstance(document, bytes) else dumps(document)
        return URL, body, signed_headers(body, **kwargs)

    return build


def at(shift: timedelta) -> Build:
    def build() -> Request:
        body = dumps(event())
        return URL, body, signed_headers(body, at=datetime.now(UTC) + shift)

    return build


def missing_headers() -> Request:
    return URL, dumps(event()), {"content-type": "application/json"}


def tampered() -> Request:
    body = dumps(event())
    return URL, body.replace(b"145629077495", b"145629077496"), signed_headers(body)


def malformed_signature() -> Request:
    body = dumps(event())
    return URL, body, signed_headers(body) | {"webhook-signature": "v1,not base64!"}


def unknown_school() -> Request:
    body = dumps(event())
    return "/v1/webhooks/isams/no-such-school", body, signed_headers(body)


def too_large() -> Request:
    body = dumps(event() | {"data": {"schoolId": "1", "record": {"pad": "x" * (1024 * 1024)}}})
    return URL, body, signed_headers(body)


def content_type(value: str | None) -> Build:
    def build() -> Request:
        body = dumps(event())
        headers = signed_headers(body)
        if value is None:
            del headers["content-type"]
        else:
            headers["content-type"] = value
        return URL, body, headers

    return build


def latin1() -> Request:
    body = '{"type": "student.updated", "note": "caf\u00e9"}'.encode("latin-1")
    return URL, body, signed_headers(b"{}") | {"webhook-id": "msg_test"}


def no_data(kind: str) -> dict[str, Any]:
    return {"type": f"{kind}.updated", "timestamp": "2026-11-28T10:00:00Z", "data": {}}


REFUSALS: list[tuple[str, Build, int, str, list[str] | None]] = [
    ("malformed JSON", signed(b'{"type": "student.updated",'), 400, "invalid-json", None),
    ("JSON not UTF-8", latin1, 400, "invalid-json", None),
    ("bad signature", signed(event(), secret=STRANGER_SECRET), 401, "invalid-signature", None),
    ("tampered body", tampered, 401, "invalid-signature", None),
    ("stale timestamp", at(-timedelta(minutes=6)), 401, "invalid-signature", None),
    ("future timestamp", at(timedelta(minutes=6)), 401, "invalid-signature", None),
    ("missing headers", missing_headers, 401, "invalid-signature", None),
    ("malformed signature", malformed_signature, 401, "invalid-signature", None),
    ("unknown school", unknown_school, 404, "unknown-school", None),
    ("body over 1 MiB", too_large, 413, "payload-too-large", None),
    ("text/plain", content_type("text/plain"), 415, "unsupported-media-type", None),
    ("no content type", content_type(None), 415, "unsupported-media-type", None),
    (
        "JSON in latin-1",
        content_type("application/json; charset=iso-8859-1"),
        415,
        "unsupported-media-type",
        None,
    ),
    (
        "unknown type",
        signed(event() | {"type": "student.promoted"}),
        422,
        "invalid-event",
        ["/type"],
    ),
    (
        "missing id, in a batch",
        signed([event(), no_data("student")]),
        422,
        "invalid-event",
        ["/1/data/schoolId"],
    ),
    ("missing contact ids", signed([no_data("contact")]), 422, "invalid-event", ["/0/data/id"]),
    ("over 500 events", signed([event()] * 501), 422, "invalid-event", [""]),
    ("empty batch", signed([]), 422, "invalid-event", [""]),
    ("not an event", signed(42), 422, "invalid-event", [""]),
    (
        "one bad event spoils the batch",
        signed([event(), event(), event() | {"timestamp": "yesterday"}]),
        422,
        "invalid-event",
        ["/2/timestamp"],
    ),
    (
        "an id neither text nor a whole number",
        signed({"type": "staff.updated", "timestamp": "2026-11-28T10:00:00Z", "data": {"id": 1.5}}),
        422,
        "invalid-event",
        ["/data/id"],
    ),
]


def assert_problem(response: httpx.Response, status: int, path: str = URL) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    assert body["status"] == status
    assert body["instance"] == path
    return body
