"""Fault injection (503s, latency) and the per-client rate limit, changeable at run time."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sim.managebac.config import SimConfig


@dataclass
class Faults:
    """What the simulator does wrong on purpose; `PUT /_sim/faults` changes it."""

    error_rate: float = 0.0
    latency_ms: int = 0
    rate_limit_per_second: int | None = None
    """Per client address, over every token and endpoint (`/_sim/limits` shows it too)."""

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
