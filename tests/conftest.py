"""Shared fixtures: the real local Kafka broker and per-test topics; the local PostgreSQL.

`scripts/run-tests.sh` starts the broker and PostgreSQL before pytest runs; a test that
needs one fails (not skips) with a clear message when it does not answer.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from consumers.adapters.kafka.admin import delete_topics, ensure_topics, ping
from consumers.settings import Topics


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Return the bootstrap address of the test broker, failing loudly if it is down."""
    bootstrap = os.environ.get("SYNC_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    if not asyncio.run(ping(bootstrap, timeout=10)):
        pytest.fail(
            f"Kafka does not answer on {bootstrap}: run `scripts/kafka.sh start` "
            "(make test does this for you)"
        )
    return bootstrap


@pytest.fixture
async def topics(kafka_bootstrap: str) -> AsyncIterator[Topics]:
    """Give each test its own uuid-prefixed topics, created on the real broker."""
    prefix = f"test-{uuid.uuid4().hex[:12]}."
    names = Topics.with_prefix(prefix)
    await ensure_topics(kafka_bootstrap, names.all(), partitions=3)
    yield names
    await delete_topics(kafka_bootstrap, names.all())


async def _postgres_error(url: str) -> str | None:
    """Return why PostgreSQL at `url` does not answer a query, or None when it does."""
    engine = create_async_engine(url, connect_args={"timeout": 10})
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure is the message to show
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres() -> str:
    """Return the test database's URL (`postgresql+asyncpg://…`), failing loudly if it is down.

    `SYNC_TEST_POSTGRES_URL` when set (run-tests.sh sets it), else the local cluster's URL
    from `scripts/postgres.sh url`.
    """
    url = os.environ.get("SYNC_TEST_POSTGRES_URL")
    if not url:
        script = Path(__file__).resolve().parent.parent / "scripts" / "postgres.sh"
        found = subprocess.run(  # noqa: S603 # our own script, no input from outside
            [str(script), "url"], capture_output=True, text=True, check=False
        )
        if found.returncode != 0:
            pytest.fail(
                "SYNC_TEST_POSTGRES_URL is not set and there is no local cluster: run "
                "`scripts/postgres.sh start` (make test does this for you)"
            )
        url = found.stdout.strip()
    error = asyncio.run(_postgres_error(url))
    if error is not None:
        shown = make_url(url).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL does not answer at {shown} ({error}): run `scripts/postgres.sh start` "
            "(make test does this for you)"
        )
    return url
