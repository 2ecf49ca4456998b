"""Helpers shared by the ingest tests: schools with known secrets, signing, a TCP gate."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook

from consumers.settings import SchoolsFile

SCHOOL = "demo-school"
OLD_SECRET = "whsec_" + base64.b64encode(b"old-secret-of-the-demo-school-32").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"new-secret-of-the-demo-school-32").decode()
STRANGER_SECRET = "whsec_" + base64.b64encode(b"a-secret-no-school-has-ever-seen").decode()


def schools_file() -> SchoolsFile:
    """One school mid-rotation: the old and the new secret both verify."""
    return SchoolsFile.model_validate(
        {
            "schools": [
                {
                    "id": SCHOOL,
                    "webhook_secrets": [OLD_SECRET, NEW_SECRET],
                    "isams": {
                        "base_url": "https://isams.example",
                        "client_id": "sync",
                        "client_secret": "unused",
                    },
                    "managebac": {"base_url": "https://managebac.example", "token": "unused"},
                }
            ]
        }
    )


def signed_headers(
    body: bytes,
    *,
    secret: str = OLD_SECRET,
    webhook_id: str = "msg_test",
    at: datetime | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    """Return Standard Webhooks headers signing `body` (plus a content type)."""
    when = at or datetime.now(UTC)
    signature = Webhook(secret).sign(webhook_id, when, body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": content_type,
    }


def event(
    kind: str = "student", action: str = "updated", ident: str = "145629077495"
) -> dict[str, Any]:
    """Return a valid event of `kind` naming the record `ident`."""
    data: dict[str, Any] = {"student": {"schoolId": ident}, "staff": {"id": ident}}.get(
        kind, {"id": ident, "schoolId": "145629077495"}
    )
    return {"type": f"{kind}.{action}", "timestamp": "2026-11-28T10:00:00Z", "data": data}


def dumps(document: Any) -> bytes:
    return orjson.dumps(document)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TcpGate:
    """A TCP forwarder to the broker that can be opened late: Kafka "coming back"."""

    def __init__(self, port: int, target: str) -> None:
        host, _, target_port = target.rpartition(":")
        self.port = port
        self._target = (host, int(target_port))
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._pipes:
            task.cancel()
        for task in self._pipes:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(_pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
