"""Plain ASGI middleware in front of `/v2`: what stands between a client and the API.

In order: latency; an odd serving mode (maintenance page, login redirect) as an edge would
answer; the per-client-address limit, which counts every request whatever its token (the
notes: per IP, over all endpoints; counting bad tokens too is assumed, as a throttle in front
of the application would); the token (401 unknown or disabled); the per-token limit; the
endpoint's right (403); injected 503s; then the API. Every request is counted.
The control API (`/_sim/...`) and the docs bypass it, so tests can always look and steer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sim.managebac.ratelimit import RateDecision, tightest
from sim.managebac.rights import required_right
from sim.managebac.state import SimState
from sim.managebac.tokens import Presented

API_PREFIX = "/v2/"
UNKNOWN_CLIENT = "<unknown>"


def client_address(scope: Scope) -> str:
    """Return the client's address (host only: one machine, many ports, one limit)."""
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN_CLIENT


class ApiGate:
    """Apply the simulator's modes, limits, tokens and faults to ManageBac+ API requests."""

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
        client = client_address(scope)
        presented = self.sim.tokens.identify(scope)
        status = 500
        decision: RateDecision | None = None

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if decision is not None:
                    MutableHeaders(scope=message).update(decision.headers(self.sim.limits))
            await send(message)

        try:
            faults = self.sim.faults
            if faults.latency_ms > 0:
                await asyncio.sleep(faults.latency_ms / 1000)
            odd = self.sim.mode.take()
            if odd is not None:
                await odd(scope, receive, send_counted)
                return
            decision = self._limit(client, presented)
            refusal = self._refusal(method, template, presented, decision)
            if refusal is not None:
                await refusal(scope, receive, send_counted)
                return
            await self.app(scope, receive, send_counted)
        finally:
            self.sim.stats.record(method, template, status, presented.label, client)

    def _limit(self, client: str, presented: Presented) -> RateDecision | None:
        """Count the request against the client's limit, then (if it passed) the token's."""
        per_client, per_token = self.sim.faults.rate_limit_per_second, self.sim.limits.per_token
        decision = None
        if per_client is not None:
            decision = self.sim.client_windows.acquire(client, per_client)
            if not decision.allowed:
                return decision
        if per_token is not None and self._enabled(presented):
            assert presented.token is not None  # _enabled checked it; narrows the type
            own = self.sim.token_windows.acquire(presented.token, per_token)
            decision = tightest(decision, own)
        return decision

    def _refusal(
        self, method: str, template: str, presented: Presented, decision: RateDecision | None
    ) -> Response | None:
        """Return the answer that stops the request here, None to let it through.

        A refused decision is the client limit (checked before the token) or the token's
        (checked only for a working token), so the order stays client 429, 401, token 429.
        """
        if decision is not None and not decision.allowed:
            return JSONResponse({"error": "Too Many Requests"}, 429)
        if not self._enabled(presented):
            return JSONResponse({"error": "Access Denied"}, 401)
        right = required_right(method, template)
        state = self.sim.tokens.get(presented.token) if presented.token else None
        if right is not None and state is not None and right not in state.rights:
            body = {"error": "Forbidden", "reason": f"This token has no permission for {right}"}
            return JSONResponse(body, 403)
        if self.sim.injector.should_fail(self.sim.faults.error_rate):
            return JSONResponse({"error": "Service Unavailable"}, 503)
        return None

    def _enabled(self, presented: Presented) -> bool:
        state = self.sim.tokens.get(presented.token) if presented.token else None
        return state is not None and state.enabled

    def _template(self, scope: Scope) -> str:
        """Return the matched route's path template, e.g. `/v2/students/{id}`."""
        path = scope["path"]
        return next((t for regex, t in self.templates if regex.match(path)), "<unmatched>")
