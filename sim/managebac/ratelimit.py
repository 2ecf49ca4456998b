"""Rate limits: per client address over every endpoint and token, optionally per token too.

ManageBac+ limits per client IP, counted over all endpoints (notes, H). A 429 carries
`X-RateLimit-Limit`, `X-RateLimit-Period` and `X-RateLimit-Reset`, "the exact time (in UTC)"
a retry will succeed, in a format the docs do not show: it is configurable here. The unit of
`X-RateLimit-Period` (seconds) is assumed. `Retry-After` is not documented; the simulator sends
it unless told not to, because today's clients read it.
Windows are whole epoch seconds, so the reset time is exact in every format.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

ResetFormat = Literal["epoch", "http-date", "iso8601", "iso8601-z", "iso8601-no-offset"]
RESET_FORMATS: tuple[str, ...] = get_args(ResetFormat)
PERIOD_SECONDS = 1


def format_reset(reset: int, style: ResetFormat) -> str:
    """Write the reset time (epoch seconds) as `X-RateLimit-Reset` in the chosen format."""
    moment = datetime.fromtimestamp(reset, UTC)
    match style:
        case "epoch":
            return str(reset)
        case "http-date":
            return email.utils.formatdate(reset, usegmt=True)
        case "iso8601":
            return moment.isoformat()
        case "iso8601-z":
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        case "iso8601-no-offset":
            return moment.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class LimitSettings:
    """The rate-limit knobs beyond the per-client limit (which `/_sim/faults` also holds)."""

    per_token: int | None = None
    reset_format: ResetFormat = "epoch"
    retry_after: bool = True


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one request against one limit, with the values of its headers."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int

    def headers(self, settings: LimitSettings) -> dict[str, str]:
        """Return the rate-limit headers; `Retry-After` only on a refusal, if switched on."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Period": str(PERIOD_SECONDS),
            "X-RateLimit-Reset": format_reset(self.reset, settings.reset_format),
        }
        if not self.allowed and settings.retry_after:
            headers["Retry-After"] = str(self.retry_after)
        return headers


def tightest(first: RateDecision | None, second: RateDecision | None) -> RateDecision | None:
    """Return the decision whose headers a client should see: a refusal, else the fewest left."""
    if first is None or second is None:
        return first or second
    if not second.allowed or (first.allowed and second.remaining < first.remaining):
        return second
    return first


class KeyedWindows:
    """Allow `limit` requests per key (client address or token) per whole epoch second."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, int]] = {}

    def reset(self) -> None:
        """Forget every window."""
        self._windows.clear()

    def acquire(self, key: str, limit: int) -> RateDecision:
        """Count one request of `key` and tell whether it is within the limit."""
        now = self._clock()
        window = math.floor(now)
        start, used = self._windows.get(key, (window, 0))
        if start != window:
            used = 0
        reset = window + PERIOD_SECONDS
        if used >= limit:
            self._windows[key] = (window, used)
            return RateDecision(False, limit, 0, reset, max(1, math.ceil(reset - now)))
        self._windows[key] = (window, used + 1)
        return RateDecision(True, limit, limit - used - 1, reset, 0)
