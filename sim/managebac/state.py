"""Everything one simulator instance holds, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from sim.managebac.config import SimConfig
from sim.managebac.limits import FaultInjector, Faults, FixedWindowLimiter
from sim.managebac.stats import RequestStats
from sim.managebac.store import Clock, Store


@dataclass
class SimState:
    """The store plus the runtime knobs and counters around it."""

    config: SimConfig
    clock: Clock
    store: Store
    faults: Faults
    limiter: FixedWindowLimiter
    injector: FaultInjector
    stats: RequestStats

    @classmethod
    def build(cls, config: SimConfig, clock: Clock) -> SimState:
        """Return a fresh instance for `config`."""
        return cls(
            config=config,
            clock=clock,
            store=Store(config.year_groups, clock, config.max_write_log),
            faults=Faults.from_config(config),
            limiter=FixedWindowLimiter(clock),
            injector=FaultInjector(config.random_seed),
            stats=RequestStats(),
        )

    def reset(self) -> None:
        """Return to the state right after start-up, faults included."""
        self.store.reset()
        self.faults = Faults.from_config(self.config)
        self.limiter.reset()
        self.injector.reset()
        self.stats.reset()
