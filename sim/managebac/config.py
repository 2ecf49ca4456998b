"""Configuration of one ManageBac+ simulator instance."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_YEAR_GROUPS: dict[int, int] = {year: 10209265 + year for year in range(7, 14)}
"""NC year -> year group id: Year 7 is 10209272 (docs/design.md's example id), up to Year 13."""


class SimConfig(BaseModel):
    """Start-up settings; the fault settings can be changed later through `PUT /_sim/faults`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str = Field(default="sim-token", min_length=1)
    year_groups: dict[int, int] = Field(default_factory=lambda: dict(DEFAULT_YEAR_GROUPS))
    rate_limit_per_second: int | None = Field(default=None, ge=1)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    random_seed: int | None = None
    max_write_log: int = Field(default=100_000, ge=1)

    @field_validator("year_groups")
    @classmethod
    def _distinct_ids(cls, value: dict[int, int]) -> dict[int, int]:
        if len(set(value.values())) != len(value):
            raise ValueError("year group ids must be distinct")
        return value
