"""The Kafka admin adapter against the real local broker (`scripts/kafka.sh start`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from consumers.adapters.kafka.admin import (
    KafkaNotReadyError,
    ensure_topics,
    ping,
    wait_until_ready,
)

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def bootstrap() -> str:
    """Return the test broker's address (kept here: tests/conftest.py has another owner)."""
    return os.environ.get("SYNC_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


@pytest.fixture
def closed_port() -> str:
    """Return a loopback address nothing listens on (a port the kernel just gave back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
async def admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """Give a raw aiokafka admin client, to check the adapter's work independently."""
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    yield client
    await client.close()


@pytest.fixture
async def topic_name(admin: AIOKafkaAdminClient) -> AsyncIterator[str]:
    """Give a fresh uuid-named topic name and delete the topic afterwards if it was made."""
    name = f"test-{uuid.uuid4().hex[:12]}.admin"
    yield name
    if name in await admin.list_topics():
        await admin.delete_topics([name])


async def test_ensure_topics_twice_is_idempotent(
    bootstrap: str, admin: AIOKafkaAdminClient, topic_name: str
) -> None:
    await ensure_topics(bootstrap, [topic_name], partitions=2)
    await ensure_topics(bootstrap, [topic_name], partitions=2)

    assert topic_name in await admin.list_topics()
    [described] = await admin.describe_topics([topic_name])
    assert described["error_code"] == 0
    assert len(described["partitions"]) == 2
    assert all(p["leader"] >= 0 for p in described["partitions"])


async def test_ensure_topics_keeps_an_existing_topic_as_it_is(
    bootstrap: str, admin: AIOKafkaAdminClient, topic_name: str
) -> None:
    await ensure_topics(bootstrap, [topic_name], partitions=1)
    await ensure_topics(bootstrap, [topic_name], partitions=4)

    [described] = await admin.describe_topics([topic_name])
    assert len(described["partitions"]) == 1


async def test_ping_is_true_for_the_broker(bootstrap: str) -> None:
    assert await ping(bootstrap, timeout=10) is True


async def test_ping_is_false_quickly_for_a_closed_port(closed_port: str) -> None:
    started = time.monotonic()

    assert await ping(closed_port, timeout=3) is False
    assert time.monotonic() - started < 3.5


async def test_wait_until_ready_returns_for_the_broker(bootstrap: str) -> None:
    await wait_until_ready(bootstrap, timeout=10)


async def test_wait_until_ready_gives_up_with_a_clear_error(closed_port: str) -> None:
    started = time.monotonic()

    with pytest.raises(KafkaNotReadyError, match=f"Kafka at {closed_port} did not answer"):
        await wait_until_ready(closed_port, timeout=2)
    assert time.monotonic() - started < 4


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the module's command line as scripts/kafka.sh does, in a child process."""
    return subprocess.run(  # noqa: S603 (fixed argv: our interpreter and our own module)
        [sys.executable, "-m", "consumers.adapters.kafka.admin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_command_line_ensure_wait_and_ping(
    bootstrap: str, closed_port: str, admin: AIOKafkaAdminClient, topic_name: str
) -> None:
    ensured = _cli("ensure", "--bootstrap", bootstrap, "--topic", topic_name, "--partitions", "1")
    assert ensured.returncode == 0, ensured.stderr
    assert topic_name in await admin.list_topics()

    assert _cli("wait", "--bootstrap", bootstrap, "--timeout", "10").returncode == 0
    assert _cli("ping", "--bootstrap", bootstrap, "--timeout", "5").returncode == 0

    refused = _cli("wait", "--bootstrap", closed_port, "--timeout", "1")
    assert refused.returncode == 1
    assert f"Kafka at {closed_port} did not answer" in refused.stderr
    assert refused.stdout == ""
