"""Fault injection and rate limiting, both changeable while the simulator runs."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from sim.managebac.config import SimConfig


@dataclass
class Faults:
    """What the simulator does wrong on purpose; `PUT /_sim/faults` changes it."""

    error_rate: float = 0.0
    latency_ms: int = 0
    rate_limit_per_second: int | None = None

    @classmethod
    def from_config(cls, config: SimConfig) -> Faults:
        """Return the faults the configuration starts with."""
        return cls(config.error_rate, config.latency_ms, config.rate_limit_per_second)

    def as_dict(self) -> dict[str, float | int | None]:
        """Return the JSON shape of `GET`/`PUT /_sim/faults`."""
        return {
            "error_rate": self.error_rate,
            "latency_ms": self.latency_ms,
            "rate_limit_per_second": self.rate_limit_per_second,
        }


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one request against the limit, with the values of the X-RateLimit headers."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        """Return the rate-limit headers; `Retry-After` only on a refusal."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class FixedWindowLimiter:
    """Allow `limit` requests per whole epoch second, so `X-RateLimit-Reset` is exact."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._window = -1
        self._used = 0

    def reset(self) -> None:
        """Start a fresh window."""
        self._window = -1
        self._used = 0

    def acquire(self, limit: int) -> RateDecision:
        """Count one request and tell whether it is within the limit."""
        now = self._clock()
        window = math.floor(now)
        if window != self._window:
            self._window, self._used = window, 0
        reset = window + 1
        if self._used >= limit:
            return RateDecision(False, limit, 0, reset, max(1, math.ceil(reset - now)))
        self._used += 1
        return RateDecision(True, limit, limit - self._used, reset, 0)


class FaultInjector:
    """Decide which requests fail, reproducibly when seeded."""

    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self._random = random.Random(seed)

    def reset(self) -> None:
        """Restart the random sequence."""
        self._random = random.Random(self._seed)

    def should_fail(self, error_rate: float) -> bool:
        """Return True for about `error_rate` of the calls."""
        return error_rate > 0 and self._random.random() < error_rate
