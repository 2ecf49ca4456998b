"""Everything one simulator instance holds, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from sim.managebac.cohorts import Cohorts
from sim.managebac.config import SimConfig
from sim.managebac.limits import FaultInjector, Faults
from sim.managebac.modes import ServingMode
from sim.managebac.ratelimit import KeyedWindows, LimitSettings
from sim.managebac.stats import RequestStats
from sim.managebac.store import Clock, Store
from sim.managebac.tokens import TokenRegistry


def _limit_settings(config: SimConfig) -> LimitSettings:
    return LimitSettings(
        per_token=config.rate_limit_per_token_per_second,
        reset_format=config.rate_limit_reset_format,
        retry_after=config.rate_limit_retry_after,
    )


@dataclass
class SimState:
    """The store plus the runtime knobs and counters around it."""

    config: SimConfig
    clock: Clock
    store: Store
    faults: Faults
    limits: LimitSettings
    client_windows: KeyedWindows
    token_windows: KeyedWindows
    injector: FaultInjector
    tokens: TokenRegistry
    mode: ServingMode
    stats: RequestStats

    @classmethod
    def build(cls, config: SimConfig, clock: Clock) -> SimState:
        """Return a fresh instance for `config`."""
        cohorts = Cohorts(
            config.school_programs(), config.cohort_specs(), clock, config.academic_year
        )
        return cls(
            config=config,
            clock=clock,
            store=Store(cohorts, clock, config.max_write_log),
            faults=Faults.from_config(config),
            limits=_limit_settings(config),
            client_windows=KeyedWindows(clock),
            token_windows=KeyedWindows(clock),
            injector=FaultInjector(config.random_seed),
            tokens=TokenRegistry(config.token, config.tokens),
            mode=ServingMode(),
            stats=RequestStats(clock),
        )

    def reset(self) -> None:
        """Return to the state right after start-up: data, year groups, faults, tokens, mode."""
        self.store.reset()
        self.faults = Faults.from_config(self.config)
        self.limits = _limit_settings(self.config)
        self.client_windows.reset()
        self.token_windows.reset()
        self.injector.reset()
        self.tokens.reset()
        self.mode = ServingMode()
        self.stats.reset()
