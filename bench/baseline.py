"""The baseline for `bench.ingest`: a bare FastAPI endpoint that parses the JSON and answers 202.

It does what any JSON webhook endpoint must (read the body, parse it, answer) and nothing
that `serve` adds (signature, validation, Kafka), and runs under the same `uvicorn.run`
call as `isams-sync serve`, so the ratio of the two prices exactly what `serve` adds.

    python -m bench.baseline --port 8081
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import orjson
import uvicorn
from fastapi import FastAPI, Request

from consumers.gc_tuning import prepare_gc_for_serving


def create_app() -> FastAPI:
    """Return an app with the webhook route and `/healthz`, like `serve`'s but bare."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/webhooks/isams/{school_id}", status_code=202)
    async def receive(school_id: str, request: Request) -> dict[str, int]:
        document = orjson.loads(await request.body())
        return {"accepted": len(document) if isinstance(document, list) else 1}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    # The same call as `isams-sync serve` (consumers/cli.py), so both run the same uvicorn.
    app = create_app()
    prepare_gc_for_serving()  # as `serve` does: the same garbage-collector settings
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
