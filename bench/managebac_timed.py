"""The ManageBac+ simulator with every API request's time kept, for the sync benchmarks.

    python -m bench.managebac_timed --port P --token T --rate-limit 50   # sim.managebac's options

The simulator's own write log times only the writes; this wrapper also keeps each `/v2`
request's method, path, status and the moment its answer started (wall clock), so a
benchmark can see where a rate-limited budget went unused (`GET /_bench/requests?since=`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import parse_qs

import orjson
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sim.managebac.__main__ import build_parser, config_from
from sim.managebac.app import create_app

TIMES_PATH = "/_bench/requests"


class RequestTimes:
    """An ASGI wrapper keeping `(at, method, path, status)` of every `/v2` request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[float, str, str, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path == TIMES_PATH:
            await self._answer(scope, send)
            return
        if scope["type"] != "http" or not path.startswith("/v2/"):
            await self.app(scope, receive, send)
            return

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((time.time(), scope["method"], path, int(message["status"])))
            await send(message)

        await self.app(scope, receive, timed)

    async def _answer(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode())
        since = float(query.get("since", ["0"])[0])
        body = orjson.dumps([entry for entry in self.seen if entry[0] > since])
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    parser.prog = "python -m bench.managebac_timed"
    args = parser.parse_args(argv)
    app = RequestTimes(create_app(config_from(args)))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
