"""Request counters for `GET /_sim/stats`."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any


class RequestStats:
    """Count ManageBac+ API requests by route template and by status."""

    def __init__(self) -> None:
        self.by_route: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.by_status: Counter[str] = Counter()

    def reset(self) -> None:
        """Forget every count."""
        self.by_route.clear()
        self.by_status.clear()

    def record(self, method: str, template: str, status: int) -> None:
        """Count one answered request, e.g. `PATCH /v2/students/{id}` answered 200."""
        self.by_route[f"{method} {template}"][str(status)] += 1
        self.by_status[str(status)] += 1

    def as_dict(self) -> dict[str, Any]:
        """Return totals, per route, per status and per route and status."""
        routes = sorted(self.by_route.items())
        return {
            "total": sum(self.by_status.values()),
            "requests": {route: sum(c.values()) for route, c in routes},
            "statuses": dict(sorted(self.by_status.items())),
            "by_route": {
                route: dict(sorted(c.items())) for route, c in sorted(self.by_route.items())
            },
        }
