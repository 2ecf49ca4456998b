"""Signed webhook requests, built once and replayed by the load generators.

Bodies are what the iSAMS simulator's emitter sends for real: fat `student.updated` events
carrying the generated student's REST record with its ISO mappings. Each request is signed
per Standard Webhooks (`v1,` HMAC-SHA256 of `id.timestamp.body`); a signature is good for
±5 minutes, so the pool is re-signed before every measured run. The pool file is a list of
complete HTTP/1.1 requests, each preceded by its length in bytes on a line of its own, so
the load generator only copies bytes to the socket.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
from standardwebhooks import Webhook

from sim.isams.emitter import make_event
from sim.isams.school import STUDENT_EXPANSIONS, expand_record, generate_school

SCHOOL_ID = "bench-school"
PATH = f"/v1/webhooks/isams/{SCHOOL_ID}"
SIGNATURE_LIFETIME = 300.0  # seconds; the service's tolerance (docs/design.md §2.2)


def new_secret() -> str:
    """Return a fresh Standard Webhooks secret (whsec_ + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def student_bodies(students: int, batch_size: int, count: int, seed: int = 2026) -> list[bytes]:
    """Return `count` JSON bodies: one fat student event, or an array of `batch_size` of them.

    Events cycle through `students` generated students, so Kafka keys spread over every
    partition as a school's changes would.
    """
    school = generate_school(students, seed=seed)
    events = [
        make_event(
            "student.updated",
            {
                "schoolId": school_id,
                "schoolCode": record.get("schoolCode") or None,
                "record": expand_record("student", record, STUDENT_EXPANSIONS),
            },
        )
        for school_id, record in ((i, school.student(i)) for i in school.students)
    ]
    cycle = itertools.cycle(events)
    if batch_size == 1:
        return [orjson.dumps(next(cycle)) for _ in range(count)]
    return [orjson.dumps([next(cycle) for _ in range(batch_size)]) for _ in range(count)]


def signed_requests(bodies: Sequence[bytes], secret: str, host: str) -> list[bytes]:
    """Sign each body now and return the complete HTTP/1.1 requests (keep-alive)."""
    signer = Webhook(secret)
    now = datetime.now(UTC)
    timestamp = str(int(now.timestamp()))
    requests = []
    for body in bodies:
        webhook_id = f"msg_{uuid.uuid4().hex}"
        signature = signer.sign(webhook_id, now, body.decode())
        head = (
            f"POST {PATH} HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"webhook-id: {webhook_id}\r\n"
            f"webhook-timestamp: {timestamp}\r\n"
            f"webhook-signature: {signature}\r\n"
            "\r\n"
        )
        requests.append(head.encode() + body)
    return requests


def write_pool(path: Path, requests: Sequence[bytes]) -> None:
    """Write requests as `<length>\\n<bytes>` records (read by wrk_pool.lua and pyload)."""
    with path.open("wb") as out:
        for request in requests:
            out.write(b"%d\n" % len(request))
            out.write(request)


def read_pool(path: Path) -> list[bytes]:
    """Read back what `write_pool` wrote."""
    data = path.read_bytes()
    requests: list[bytes] = []
    position = 0
    while position < len(data):
        newline = data.index(b"\n", position)
        length = int(data[position:newline])
        requests.append(data[newline + 1 : newline + 1 + length])
        position = newline + 1 + length
    return requests
