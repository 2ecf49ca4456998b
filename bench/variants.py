"""`isams-sync serve` with one cost knocked out at a time: where the request time goes.

Each variant builds the app exactly as `consumers.cli serve` does, then changes one thing
through a public seam (`create_app`'s `publisher`, the producer class the adapter builds,
the log level), so the difference to the shipped service prices that one thing. The app's
code is not touched. `bench.ingest --breakdown` runs these next to the real `serve`.

    python -m bench.variants --port 8080 --variant no-kafka
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import uvicorn
from aiokafka import AIOKafkaProducer

from app import publisher as publisher_module
from app.gc_tuning import prepare_gc_for_serving
from app.logs import configure_logging
from app.main import create_app
from app.publisher import OutgoingMessage
from app.settings import load_schools, load_settings

VARIANTS = {
    "shipped": "as `serve` runs it (checks the wrapper adds nothing)",
    "no-request-log": "SYNC_LOG_LEVEL=WARNING: no INFO line per accepted request",
    "kafka-batching": "producer max_batch_size 512 KiB, linger_ms 2 (aiokafka: 16 KiB, 0)",
    "no-kafka": "a publisher that acknowledges at once: no aiokafka, no broker round trip",
    "suggested": "no-request-log + kafka-batching, real Kafka",
}
BATCH_BYTES = 512 * 1024  # under the broker's default message.max.bytes (1 MiB)
LINGER_MS = 2


class BatchingProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka has no types
    """The service's producer with bigger batches and a short linger."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_batch_size", BATCH_BYTES)
        kwargs.setdefault("linger_ms", LINGER_MS)
        super().__init__(*args, **kwargs)


class InstantPublisher:
    """Acknowledge every publish at once: prices what the real producer costs."""

    async def publish(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        return None

    async def ping(self) -> bool:
        return True


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.variant in ("kafka-batching", "suggested"):
        # The adapter builds its producer from the module's name at each connection.
        publisher_module.AIOKafkaProducer = BatchingProducer  # type: ignore[attr-defined]
    quiet = args.variant in ("no-request-log", "suggested")
    configure_logging("WARNING" if quiet else settings.log_level)
    publisher = InstantPublisher() if args.variant == "no-kafka" else None
    app = create_app(settings, load_schools(settings.schools_file), publisher)
    prepare_gc_for_serving()
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
