"""`openapi.yaml` is the app's schema, and the live service keeps every promise in it.

The schemathesis run drives a real uvicorn server (own thread, own event loop) whose own
Kafka publisher talks to the real broker. Most generated webhook requests are re-signed with
the school's secret so the run reaches parsing, validation and publishing, not only 401.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
import uvicorn
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import open_app, openapi_document
from consumers.settings import Settings
from tests.integration.ingest_support import SCHOOL, free_port, schools_file, signed_headers

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "openapi.yaml"
WEBHOOK_PATH = "/v1/webhooks/isams/{school_id}"
WEBHOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

schema = schemathesis.openapi.from_path(OPENAPI)


def test_checked_in_openapi_is_the_apps_schema() -> None:
    generated = orjson.loads(orjson.dumps(openapi_document(schools_file())))
    assert yaml.safe_load(OPENAPI.read_text(encoding="utf-8")) == generated, (
        "openapi.yaml is stale: run .venv/bin/python scripts/export_openapi.py"
    )


def test_export_script_is_deterministic() -> None:
    result = subprocess.run(  # noqa: S603  (our own script, fixed arguments)
        [sys.executable, str(REPO / "scripts" / "export_openapi.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_status_of_the_contract_is_documented() -> None:
    document = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    operation = document["paths"][WEBHOOK_PATH]["post"]
    assert set(operation["responses"]) == {"202", "400", "401", "404", "413", "415", "422", "503"}
    for status, response in operation["responses"].items():
        if status != "202":
            assert set(response["content"]) == {"application/problem+json"}
    assert operation["responses"]["503"]["headers"]["Retry-After"]["required"] is True
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header" and p["required"]}
    assert headers == set(WEBHOOK_HEADERS)
    body = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert body[1]["maxItems"] == 500


@pytest.fixture(scope="module")
def live_server(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve the real app on a free port; the app creates its own uuid-prefixed topics."""
    database = tmp_path_factory.mktemp("openapi") / "sync.db"
    app_settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=f"test-openapi-{uuid.uuid4().hex[:8]}.",
        database_url=f"sqlite+aiosqlite:///{database}",
    )
    port = free_port()
    stop = threading.Event()

    async def serve() -> None:
        async with open_app(app_settings, schools_file()) as app:
            config = uvicorn.Config(
                app, host="127.0.0.1", port=port, log_level="warning", access_log=False
            )
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            await asyncio.to_thread(stop.wait)
            server.should_exit = True
            await task

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="uvicorn-openapi")
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base_url, seconds=30)
        yield base_url
    finally:
        stop.set()
        thread.join(timeout=20)


def _wait_until_ready(base_url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the live server at {base_url} was not ready within {seconds} s")


def _signed_call(case: schemathesis.Case[Any]) -> dict[str, Any]:
    """Point most webhook cases at the real school and sign their body; return call kwargs."""
    if case.operation.path != WEBHOOK_PATH:
        return {}
    school = str((case.path_parameters or {}).get("school_id", ""))
    if len(school) % 4 != 0:  # keep every fourth generated id: unknown schools answer 404
        case.path_parameters = {**(case.path_parameters or {}), "school_id": SCHOOL}
    present = case.headers
    if present is None or case.media_type is None:
        return {}
    if not all(name in present for name in WEBHOOK_HEADERS):
        return {}  # a case missing a header stays unsigned: it must get a 4xx
    try:
        body = json.dumps(case.body, allow_nan=False).encode()
    except (TypeError, ValueError):
        return {}
    signed = signed_headers(body, webhook_id=f"msg_{uuid.uuid4().hex}")
    del signed["content-type"]
    present.update(signed)
    return {"data": body}


@pytest.mark.kafka
@schema.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_the_live_service_conforms_to_openapi_yaml(
    case: schemathesis.Case[Any], live_server: str
) -> None:
    extra = _signed_call(case)
    case.call_and_validate(
        base_url=live_server,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
        timeout=15,
        **extra,
    )
