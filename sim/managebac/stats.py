"""Request counters for `GET /_sim/stats`.

Besides route and status, each request is counted under its token and its client address, with
the clock times of the first and last one, so a test can check a client's 429 share and how much
of its budget it used, per school (token) and per replica (address).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Tally:
    """Counts of one token or one client address."""

    statuses: Counter[str] = field(default_factory=Counter)
    first_at: float | None = None
    last_at: float | None = None

    def count(self, status: int, at: float) -> None:
        self.statuses[str(status)] += 1
        self.first_at = at if self.first_at is None else self.first_at
        self.last_at = at

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": sum(self.statuses.values()),
            "statuses": dict(sorted(self.statuses.items())),
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


class RequestStats:
    """Count ManageBac+ API requests by route template, status, token and client address."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.by_route: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.by_status: Counter[str] = Counter()
        self.by_token: defaultdict[str, _Tally] = defaultdict(_Tally)
        self.by_client: defaultdict[str, _Tally] = defaultdict(_Tally)

    def reset(self) -> None:
        """Forget every count."""
        self.by_route.clear()
        self.by_status.clear()
        self.by_token.clear()
        self.by_client.clear()

    def record(self, method: str, template: str, status: int, token: str, client: str) -> None:
        """Count one answered request, e.g. `PATCH /v2/students/{id}` answered 200."""
        self.by_route[f"{method} {template}"][str(status)] += 1
        self.by_status[str(status)] += 1
        now = self._clock()
        self.by_token[token].count(status, now)
        self.by_client[client].count(status, now)

    def as_dict(self) -> dict[str, Any]:
        """Return totals, per route, per status, per route and status, per token and client."""
        routes = sorted(self.by_route.items())
        return {
            "total": sum(self.by_status.values()),
            "requests": {route: sum(c.values()) for route, c in routes},
            "statuses": dict(sorted(self.by_status.items())),
            "by_route": {route: dict(sorted(c.items())) for route, c in routes},
            "by_token": {key: t.as_dict() for key, t in sorted(self.by_token.items())},
            "by_client": {key: t.as_dict() for key, t in sorted(self.by_client.items())},
        }
