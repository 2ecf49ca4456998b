"""Configuration of one ManageBac+ simulator instance."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.managebac.cohorts import CohortSpec
from sim.managebac.grades import SECONDARY_CODE, Program, find_grade, secondary_program
from sim.managebac.ratelimit import ResetFormat
from sim.managebac.rights import unknown_rights

DEFAULT_YEAR_GROUPS: dict[int, int] = {year: 10209265 + year for year in range(7, 14)}
"""NC year -> year group id: Year 7 is 10209272 (docs/design.md's example id), up to Year 13."""


class SimConfig(BaseModel):
    """Start-up settings; faults, limits, tokens and modes can change later through `/_sim`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: str = Field(default="sim-token", min_length=1)
    """A token with every right (unless `tokens` names it too)."""
    tokens: dict[str, frozenset[str]] = Field(default_factory=dict)
    """More tokens, each with its rights (names from `sim.managebac.rights`)."""
    year_groups: dict[int, int] = Field(default_factory=lambda: dict(DEFAULT_YEAR_GROUPS))
    """NC year -> id of the cohort now in that grade of the Secondary program (`secondary;7`)."""
    programs: tuple[Program, ...] = ()
    """Programs besides Secondary (e.g. `grades.IB_MYP`); Secondary exists when `year_groups`
    is not empty."""
    cohorts: tuple[CohortSpec, ...] = ()
    """Cohorts besides those of `year_groups` (a second one in a grade, archived ones, IB)."""
    academic_year: int | None = None
    """Calendar year the current academic year ends in; None = from the clock at start."""
    year_groups_listing: Literal["active", "all"] = "active"
    """What `GET /v2/year-groups` lists without `archived`: the spec says `archived=true` gives
    only archived groups, so without it only active ones (assumed); "all" to test the other."""
    rate_limit_per_second: int | None = Field(default=None, ge=1)
    """Requests per second per client address, over every token and endpoint."""
    rate_limit_per_token_per_second: int | None = Field(default=None, ge=1)
    rate_limit_reset_format: ResetFormat = "epoch"
    rate_limit_retry_after: bool = True
    """Send `Retry-After` with a 429 (not documented by Faria; today's clients read it)."""
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

    @field_validator("tokens")
    @classmethod
    def _known_rights(cls, value: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
        for token, rights in value.items():
            if not token:
                raise ValueError("tokens must not be empty strings")
            unknown = unknown_rights(rights)
            if unknown:
                raise ValueError(f"unknown rights for a token: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _cohorts_fit_programs(self) -> SimConfig:
        codes = [program.code for program in self.school_programs()]
        if len(set(codes)) != len(codes):
            raise ValueError(f"program codes must be distinct: {codes}")
        by_code = {program.code: program for program in self.school_programs()}
        for spec in self.cohort_specs():
            find_grade(by_code, spec.grade)
        ids = [spec.id for spec in self.cohort_specs()]
        if len(set(ids)) != len(ids):
            raise ValueError("year group ids must be distinct (year_groups and cohorts)")
        return self

    def school_programs(self) -> tuple[Program, ...]:
        """Return every program: Secondary (when `year_groups` has any), then `programs`."""
        secondary = (secondary_program(self.year_groups),) if self.year_groups else ()
        return secondary + self.programs

    def cohort_specs(self) -> tuple[CohortSpec, ...]:
        """Return every starting cohort: those of `year_groups`, then `cohorts`."""
        legacy = tuple(
            CohortSpec(id=group_id, grade=f"{SECONDARY_CODE};{year}")
            for year, group_id in sorted(self.year_groups.items())
        )
        return legacy + self.cohorts
