"""What stands between a valid token and the data: module permissions, a throttle, faults.

Each is a small stateful object the control API (`/_sim/...`) changes while the simulator
runs; the REST routes consult them in that order: throttle, permission, injected fault.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from typing import Literal, get_args

Module = Literal["students", "contacts", "alumni", "applicants", "employees", "yeargroups"]
"""An iSAMS REST module a REST client is granted (Control Panel > API Services Manager)."""
MODULES: tuple[Module, ...] = get_args(Module)

NOT_AUTHORISED = "The user is not authorised for this request"  # iSAMS's words (public clients)
# Assumed: iSAMS answers a deadlocked or timed-out SQL query with a 500; this text is SQL
# Server's deadlock message under ASP.NET Web API's generic one, not a captured iSAMS body.
TRANSIENT_ERROR = (
    "An error has occurred. Transaction (Process ID 61) was deadlocked on lock resources "
    "with another process and has been chosen as the deadlock victim. Rerun the transaction."
)


class Permissions:
    """Which modules the REST client may read; every module is granted at the start."""

    def __init__(self) -> None:
        self._granted: dict[Module, bool] = dict.fromkeys(MODULES, True)

    def allows(self, module: Module) -> bool:
        return self._granted[module]

    def update(self, changes: Mapping[Module, bool]) -> None:
        """Grant (True) or revoke (False) the named modules; others keep their state."""
        self._granted.update(changes)

    def as_dict(self) -> dict[str, bool]:
        return {module: granted for module, granted in self._granted.items()}


class Throttle:
    """Allow at most `limit` requests per `window` seconds for each API key, then refuse.

    iSAMS lets a school throttle each API key ("Throttling Limit" requests per "Throttling
    Unit Value" hours, e.g. 100 per hour: iSAMS help, API Services Manager). How the window
    moves is not published; this one slides, so a refused client learns exactly how long
    to wait. Refused requests do not use up the budget.
    """

    def __init__(
        self, clock: Callable[[], float], limit: int | None = None, window: float = 3600.0
    ) -> None:
        self._clock = clock
        self._log: dict[str, deque[float]] = {}
        self.limit = limit
        self.window = window

    def configure(self, limit: int | None, window: float) -> None:
        """Set a new budget (None: no throttle) and forget the requests counted so far."""
        self.limit, self.window = limit, window
        self._log.clear()

    def acquire(self, key: str) -> float:
        """Count one request for `key`; return 0 if allowed, else the seconds to wait."""
        if self.limit is None:
            return 0.0
        now = self._clock()
        log = self._log.setdefault(key, deque())
        while log and log[0] <= now - self.window:
            log.popleft()
        if len(log) >= self.limit:
            return max(log[0] + self.window - now, 0.001)
        log.append(now)
        return 0.0

    def as_dict(self) -> dict[str, float | int | None]:
        return {"limit": self.limit, "windowSeconds": self.window}


def retry_after(seconds: float) -> str:
    """Return a `Retry-After` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


class FaultInjector:
    """Decide which requests fail with a transient 500, reproducibly for a seed."""

    def __init__(self, seed: int, error_rate: float = 0.0) -> None:
        self._seed = seed
        self._random = random.Random(seed)
        self.error_rate = error_rate
        self.fail_next = 0

    def configure(self, error_rate: float, fail_next: int) -> None:
        """Fail the next `fail_next` requests, then about `error_rate` of them (dice restart)."""
        self.error_rate, self.fail_next = error_rate, fail_next
        self._random = random.Random(self._seed)

    def should_fail(self) -> bool:
        """Return True when this request is to fail."""
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        return self.error_rate > 0 and self._random.random() < self.error_rate

    def as_dict(self) -> dict[str, float | int]:
        return {"errorRate": self.error_rate, "failNext": self.fail_next}
