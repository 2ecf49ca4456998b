"""Check that Kafka answers and create the topics we need, with aiokafka's admin client.

An open port is not a ready broker: readiness here means a metadata request succeeded.
`scripts/kafka.sh` calls this module's command line (`wait`, `ensure`, `ping`) so the shell
script and the service share one definition of "ready" and one way to create topics.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from consumers.adapters.kafka.connection import Kafka, client_options

log = logging.getLogger(__name__)

_RETRY_PAUSE = 0.5  # seconds between attempts while waiting; the broker starts in seconds


class KafkaNotReadyError(Exception):
    """Raised when Kafka did not answer a metadata request in time."""


class TopicCreationError(Exception):
    """Raised when Kafka refused to create a topic, or the topic did not come up in time."""


# What "Kafka is not there (yet)" can look like to a caller that waits and tries again.
KAFKA_ERRORS: tuple[type[BaseException], ...] = (
    KafkaError,
    TopicCreationError,
    KafkaNotReadyError,
    OSError,
    TimeoutError,
)


@asynccontextmanager
async def _admin(bootstrap: Kafka, request_timeout: float) -> AsyncIterator[AIOKafkaAdminClient]:
    """Yield a started admin client and always close it, even if starting failed."""
    client = AIOKafkaAdminClient(
        **client_options(bootstrap),
        client_id="isams-sync-admin",
        request_timeout_ms=max(1, int(request_timeout * 1000)),
    )
    try:
        await client.start()
        yield client
    finally:
        await client.close()


async def _list_topics(bootstrap: Kafka, timeout: float) -> list[str]:
    """Return the topic names; one bounded attempt (connect plus one metadata request)."""
    async with asyncio.timeout(timeout), _admin(bootstrap, timeout) as admin:
        topics: list[str] = await admin.list_topics()
        return topics


async def ping(bootstrap: Kafka, timeout: float) -> bool:
    """Return whether Kafka answers a metadata request within `timeout` seconds.

    Never raises (a readiness probe answers 503, not 500): any failure, including a malformed
    bootstrap string, is False, logged at DEBUG with its class name.
    """
    try:
        await _list_topics(bootstrap, timeout)
    except Exception as exc:  # a probe reports; the caller decides what "down" means
        log.debug("kafka ping %s failed: %s", bootstrap, exc.__class__.__name__)
        return False
    return True


async def wait_until_ready(bootstrap: Kafka, timeout: float) -> None:
    """Retry a metadata request until Kafka answers; raise KafkaNotReadyError after `timeout`."""
    deadline = time.monotonic() + timeout
    attempts = 0
    last_error = "no attempt made"
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        try:
            await _list_topics(bootstrap, max(0.5, min(remaining, 10.0)))
        except (KafkaError, OSError, TimeoutError) as exc:
            last_error = f"{exc.__class__.__name__}: {exc}".rstrip(": ")
        else:
            log.info("kafka at %s is ready after %d attempt(s)", bootstrap, attempts)
            return
        if time.monotonic() + _RETRY_PAUSE >= deadline:
            raise KafkaNotReadyError(
                f"Kafka at {bootstrap} did not answer a metadata request within {timeout:g} s "
                f"({attempts} attempts; last error: {last_error})"
            )
        await asyncio.sleep(_RETRY_PAUSE)


async def ensure_topics(
    bootstrap: Kafka,
    topics: Iterable[str],
    partitions: int = 6,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> None:
    """Create the topics that are missing and wait until every partition has a leader.

    Idempotent: a topic that already exists is left as it is (its partition count is not
    changed). Waiting for leaders means a producer started right after will not race the
    topic's creation.
    """
    names = sorted(set(topics))
    if not names:
        return
    try:
        async with asyncio.timeout(timeout):
            await _create_and_wait(bootstrap, names, partitions, replication_factor, timeout)
    except TimeoutError:
        raise TopicCreationError(
            f"Kafka did not create or elect leaders for {', '.join(names)} within {timeout:g} s"
        ) from None


async def delete_topics(bootstrap: Kafka, topics: Iterable[str], timeout: float = 30.0) -> None:
    """Delete topics that exist (tests clean up after themselves); missing ones are fine."""
    async with asyncio.timeout(timeout), _admin(bootstrap, timeout) as admin:
        existing = set(await admin.list_topics())
        doomed = sorted(set(topics) & existing)
        if doomed:
            await admin.delete_topics(doomed)


async def group_state(bootstrap: Kafka, group: str, timeout: float = 10.0) -> tuple[str, int]:
    """Return a consumer group's state ("Stable", "PreparingRebalance", …) and its number of
    members, as the broker describes it: whether the replicas share the partitions yet."""
    async with asyncio.timeout(timeout), _admin(bootstrap, timeout) as admin:
        for response in await admin.describe_consumer_groups([group]):
            for described in response.to_object()["groups"]:
                return str(described["state"]), len(described["members"])
    return "Unknown", 0


async def wait_for_stable_group(
    bootstrap: Kafka, group: str, members: int, timeout: float
) -> tuple[str, int]:
    """Wait until the group is stable with `members` members; return the last state seen
    (the caller decides what an unsettled group means)."""
    deadline = time.monotonic() + timeout
    seen = ("Unknown", 0)
    while time.monotonic() < deadline:
        seen = await group_state(bootstrap, group)
        if seen == ("Stable", members):
            break
        await asyncio.sleep(_RETRY_PAUSE)
    return seen


async def _create_and_wait(
    bootstrap: Kafka, names: list[str], partitions: int, replication_factor: int, timeout: float
) -> None:
    """Send one CreateTopics request, then poll metadata until every partition has a leader."""
    async with _admin(bootstrap, timeout) as admin:
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor) for name in names],
            timeout_ms=max(1, int(timeout * 1000)),
        )
        for name, code, *rest in response.topic_errors:
            error = for_code(code)
            if code == 0:
                log.info("created kafka topic %s (%d partitions)", name, partitions)
            elif error is TopicAlreadyExistsError:
                log.debug("kafka topic %s already exists", name)
            else:
                message = rest[0] if rest and rest[0] else error.__name__
                raise TopicCreationError(f"cannot create Kafka topic {name}: {message}")
        while missing := _not_ready(await admin.describe_topics(names)):
            log.debug("waiting for leaders of %s", ", ".join(missing))
            await asyncio.sleep(_RETRY_PAUSE)


def _not_ready(described: Sequence[dict[str, object]]) -> list[str]:
    """Return the described topics that are unknown or have a partition without a leader."""
    missing = []
    for topic in described:
        partitions = topic.get("partitions")
        leaders_ok = isinstance(partitions, list) and all(
            isinstance(p, dict) and isinstance(p.get("leader"), int) and p["leader"] >= 0
            for p in partitions
        )
        if topic.get("error_code") != 0 or not partitions or not leaders_ok:
            missing.append(str(topic.get("topic")))
    return missing


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m consumers.adapters.kafka.admin",
        description="Wait for the Kafka broker, ping it, or create topics.",
    )
    parser.add_argument("command", choices=["wait", "ping", "ensure"])
    parser.add_argument("--bootstrap", required=True, help="host:port[,host:port...]")
    parser.add_argument(
        "--topic", action="append", default=[], help="topic to create (ensure; repeatable)"
    )
    parser.add_argument("--partitions", type=int, default=6, help="partitions for new topics")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log aiokafka's own logs")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> int:
    if args.command == "ping":
        return 0 if await ping(args.bootstrap, args.timeout) else 1
    if args.command == "wait":
        await wait_until_ready(args.bootstrap, args.timeout)
        return 0
    await ensure_topics(args.bootstrap, args.topic, args.partitions, timeout=args.timeout)
    log.info("kafka topics ready: %s", ", ".join(args.topic) or "(none asked)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 on failure with the reason on stderr."""
    args = _parse(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="kafka_admin: %(levelname)s %(message)s"
    )
    # aiokafka logs every refused connection at ERROR; while waiting for a broker those are
    # expected, and our own message says what finally went wrong.
    logging.getLogger("aiokafka").setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    try:
        return asyncio.run(_run(args))
    except (KafkaNotReadyError, TopicCreationError, KafkaError, OSError, TimeoutError) as exc:
        log.error("%s", exc or exc.__class__.__name__)
        return 1


if __name__ == "__main__":
    sys.exit(main())
