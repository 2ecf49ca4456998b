"""`isams-sync serve` with one cost knocked out at a time: where the request time goes.

Each variant builds the app exactly as `app.cli serve` does, then changes one thing
through a public seam (`create_app`'s `publisher`), so the difference to the shipped
service prices that one thing. The app's code is not touched. `bench.ingest --breakdown`
runs these next to the real `serve`.

    python -m bench.variants --port 8080 --variant no-kafka
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

import uvicorn

from app.main import open_app
from consumers.gc_tuning import prepare_gc_for_serving
from consumers.logs import configure_logging
from consumers.ports import OutgoingMessage
from consumers.settings import load_schools, load_settings

VARIANTS = {
    "shipped": "as `serve` runs it (checks the wrapper adds nothing)",
    "no-kafka": "a publisher that acknowledges at once: no aiokafka, no broker round trip",
}


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
    configure_logging(settings.log_level)
    publisher = InstantPublisher() if args.variant == "no-kafka" else None

    async def serve() -> None:
        schools = load_schools(settings.schools_file)
        async with open_app(settings, schools, publisher=publisher) as app:
            config = uvicorn.Config(
                app, host=args.host, port=args.port, log_config=None, access_log=False
            )
            prepare_gc_for_serving()
            await uvicorn.Server(config).serve()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
