"""The running simulator's settings and state, and its iSAMS-style error answer."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi.responses import Response

from sim.isams.gate import FaultInjector, Permissions, Throttle
from sim.isams.store import Record, SchoolData


@dataclass(frozen=True)
class SimConfig:
    """How the simulator behaves; `monotonic` is injectable so tests can move time.

    `throttle_limit` requests per `throttle_window_seconds` per API key (None: unthrottled)
    and `error_rate` (transient 500s) are the start values; `/_sim/...` changes them later.
    """

    client_id: str = "sync-client"
    client_secret: str = "sync-secret"
    token_ttl_seconds: int = 3600
    students: int = 500
    seed: int = 1
    default_page_size: int = 100
    max_page_size: int = 1000
    throttle_limit: int | None = None
    throttle_window_seconds: float = 3600.0
    error_rate: float = 0.0
    monotonic: Callable[[], float] = time.monotonic


@dataclass
class SimState:
    """What the running simulator holds: the school, tokens, counters, outage and gates."""

    config: SimConfig
    school: SchoolData
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    requests: Counter[str] = field(default_factory=Counter)  # "GET /api/students" -> n
    statuses: Counter[str] = field(default_factory=Counter)  # "200" -> n (iSAMS answers)
    counters: Counter[str] = field(default_factory=Counter)
    down_until: float = 0.0
    permissions: Permissions = field(default_factory=Permissions)
    throttle: Throttle = field(init=False)
    faults: FaultInjector = field(init=False)

    def __post_init__(self) -> None:
        config = self.config
        self.throttle = Throttle(
            config.monotonic, config.throttle_limit, config.throttle_window_seconds
        )
        self.faults = FaultInjector(config.seed, config.error_rate)

    def down_for(self) -> float:
        """Return the seconds the simulated outage still lasts (0 when up)."""
        return max(0.0, self.down_until - self.config.monotonic())

    def reset_counts(self) -> None:
        """Forget the request counts (not the tokens, gates or outage)."""
        self.requests.clear()
        self.statuses.clear()
        self.counters.clear()

    def stats(self) -> Record:
        """Return the counts a benchmark or test reads: requests per route, refusals."""
        now = self.config.monotonic()
        return {
            "requests": dict(sorted(self.requests.items())),
            "totalRequests": sum(self.requests.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "tokenGrants": self.counters["tokenGrants"],
            "tokenRejections": self.counters["tokenRejections"],
            "unauthorized": self.counters["unauthorized"],
            "forbidden": self.counters["forbidden"],
            "throttled": self.counters["throttled"],
            "serverErrors": self.counters["serverErrors"],
            "unavailable": self.counters["unavailable"],
            "edits": self.counters["edits"],
            "activeTokens": sum(1 for expiry in self.tokens.values() if expiry > now),
            "downForSeconds": round(self.down_for(), 3),
        }


class SimHTTPError(Exception):
    """An iSAMS-style error answer: a status and a JSON `message`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Answer JSON the way the simulator always does (orjson, `application/json`)."""
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )
