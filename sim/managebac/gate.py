"""Plain ASGI middleware in front of `/v2`: latency, auth, rate limit, injected 503s, counting.

The control API (`/_sim/...`) and the docs bypass it, so tests can always look and steer.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Sequence
from urllib.parse import parse_qs

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sim.managebac.limits import RateDecision
from sim.managebac.state import SimState

API_PREFIX = "/v2/"


class ApiGate:
    """Apply the simulator's faults and limits to ManageBac+ API requests."""

    def __init__(self, app: ASGIApp, sim: SimState, templates: Sequence[str]) -> None:
        self.app = app
        self.sim = sim
        self.templates = [(compile_path(t)[0], t) for t in templates]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Gate one request."""
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        method, template = scope["method"], self._template(scope)
        status = 500
        decision: RateDecision | None = None

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if decision is not None:
                    MutableHeaders(scope=message).update(decision.headers())
            await send(message)

        try:
            faults = self.sim.faults
            if faults.latency_ms > 0:
                await asyncio.sleep(faults.latency_ms / 1000)
            if not self._authorized(scope):
                await JSONResponse({"error": "Access Denied"}, 401)(scope, receive, send_counted)
                return
            if faults.rate_limit_per_second is not None:
                decision = self.sim.limiter.acquire(faults.rate_limit_per_second)
                if not decision.allowed:
                    body = {"error": "Too Many Requests"}
                    await JSONResponse(body, 429)(scope, receive, send_counted)
                    return
            if self.sim.injector.should_fail(faults.error_rate):
                body = {"error": "Service Unavailable"}
                await JSONResponse(body, 503)(scope, receive, send_counted)
                return
            await self.app(scope, receive, send_counted)
        finally:
            self.sim.stats.record(method, template, status)

    def _template(self, scope: Scope) -> str:
        """Return the matched route's path template, e.g. `/v2/students/{id}`."""
        path = scope["path"]
        return next((t for regex, t in self.templates if regex.match(path)), "<unmatched>")

    def _authorized(self, scope: Scope) -> bool:
        """Accept the token as `auth-token` header, bearer token, or `auth_token` query."""
        headers = Headers(scope=scope)
        candidates = [headers.get("auth-token")]
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            candidates.append(credentials.strip())
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        candidates.extend(query.get("auth_token", []))
        expected = self.sim.config.token.encode()
        return any(
            hmac.compare_digest(candidate.encode(), expected)
            for candidate in candidates
            if candidate
        )
