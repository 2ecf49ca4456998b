"""Year groups as ManageBac+ has them: cohorts that move up a grade each academic year.

A cohort keeps its id for life. At the academic-year transition the cohort in a program's
graduating grade is archived, every other active cohort moves up one grade (same id, new grade,
`updated_at` bumped) and a new cohort (new id) starts in the entry grade. Students are not
touched: they stay in their cohort, which moved (assumed: the notes say nothing of students).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from sim.managebac.grades import Grade, Program, find_grade
from sim.managebac.models import YearGroup

Clock = Callable[[], float]


class CohortSpec(BaseModel):
    """A cohort the simulator starts with, beyond the `year_groups` map."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int = Field(ge=1)
    grade: str = Field(pattern=r"^[a-z0-9_]+;-?\d+$")
    """The grade code it is in now (`myp;8`); archived cohorts: the grade they left from."""
    archived: bool = False
    graduation_year: int | None = None
    """None: worked out from the academic year and the grades left (archived: a year less)."""


@dataclass(frozen=True)
class Cohort:
    """One stored year group."""

    id: int
    program: Program
    grade: Grade
    graduation_year: int
    archived: bool
    updated_at: datetime

    def render(self, student_ids: Iterable[int]) -> YearGroup:
        """Return the cohort as `GET /v2/year-groups` lists it."""
        short_name = f"{self.program.short_name} Group of {self.graduation_year}"
        return YearGroup(
            id=self.id,
            name=f"{short_name} ({self.grade.name})",
            short_name=short_name,
            program=self.program.name,
            program_code=self.program.code,
            grade=self.grade.name,
            archived=self.archived,
            grade_number=self.grade.grade_number,
            graduation_year=self.graduation_year,
            student_ids=sorted(student_ids),
        )


@dataclass(frozen=True)
class YearGroupQuery:
    """Filters of `GET /v2/year-groups`; None means "not filtered"."""

    archived: bool | None = None
    modified_since: datetime | None = None
    student_ids: frozenset[int] | None = None


@dataclass(frozen=True)
class Transition:
    """What one academic-year transition did."""

    academic_year: int
    archived: list[int]
    moved: list[int]
    created: list[int]

    def as_dict(self) -> dict[str, object]:
        """Return the answer of `POST /_sim/transition`."""
        return {
            "academic_year": self.academic_year,
            "archived": self.archived,
            "moved": self.moved,
            "created": self.created,
        }


def academic_year_of(moment: datetime) -> int:
    """Return the calendar year the academic year of `moment` ends in.

    Assumed: the academic year starts on 1 August (schools choose their own dates).
    """
    return moment.year + 1 if moment.month >= 8 else moment.year


class Cohorts:
    """The school's programs and year groups."""

    def __init__(
        self,
        programs: Iterable[Program],
        specs: Iterable[CohortSpec],
        clock: Clock,
        academic_year: int | None = None,
    ) -> None:
        self.programs = {program.code: program for program in programs}
        self._specs = tuple(specs)
        self._clock = clock
        self._configured_year = academic_year
        self.academic_year = 0
        self._cohorts: dict[int, Cohort] = {}
        self.reset()

    def reset(self) -> None:
        """Return to the configured cohorts and academic year."""
        now = self._now()
        configured = self._configured_year
        self.academic_year = configured if configured is not None else academic_year_of(now)
        self._cohorts = {spec.id: self._from_spec(spec, now) for spec in self._specs}

    # Reading

    def get(self, cohort_id: int) -> Cohort | None:
        """Return one cohort, None when the id is unknown."""
        return self._cohorts.get(cohort_id)

    def all(self) -> list[Cohort]:
        """Return every cohort, archived too, by program order then grade then id."""
        order = {code: index for index, code in enumerate(self.programs)}
        return sorted(
            self._cohorts.values(),
            key=lambda c: (order[c.program.code], c.grade.grade_number, c.id),
        )

    def query(self, query: YearGroupQuery, members: Mapping[int, list[int]]) -> list[Cohort]:
        """Return the cohorts matching `query`; `members` maps cohort id to student ids."""
        return [c for c in self.all() if _matches(c, query, members.get(c.id, []))]

    # Writing

    def add(self, spec: CohortSpec) -> Cohort:
        """Add a cohort at run time (`POST /_sim/year-groups`); its id must be new."""
        if spec.id in self._cohorts:
            raise ValueError(f"year group {spec.id} exists")
        cohort = self._from_spec(spec, self._now())
        self._cohorts[cohort.id] = cohort
        return cohort

    def transition(self) -> Transition:
        """Run the academic-year transition for every program."""
        now = self._now()
        self.academic_year += 1
        archived: list[int] = []
        moved: list[int] = []
        for cohort in self.all():
            if cohort.archived:
                continue
            following = cohort.program.next_grade(cohort.grade)
            if following is None:
                self._cohorts[cohort.id] = replace(cohort, archived=True, updated_at=now)
                archived.append(cohort.id)
            else:
                self._cohorts[cohort.id] = replace(cohort, grade=following, updated_at=now)
                moved.append(cohort.id)
        created: list[int] = []
        for program in self.programs.values():
            cohort_id = max(self._cohorts, default=0) + 1
            self._cohorts[cohort_id] = Cohort(
                id=cohort_id,
                program=program,
                grade=program.entry,
                graduation_year=self.academic_year + program.years_left(program.entry),
                archived=False,
                updated_at=now,
            )
            created.append(cohort_id)
        return Transition(self.academic_year, archived, moved, created)

    # Internals

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _from_spec(self, spec: CohortSpec, now: datetime) -> Cohort:
        program, grade = find_grade(self.programs, spec.grade)
        graduation_year = spec.graduation_year
        if graduation_year is None:
            # An archived cohort left before this academic year began (assumed).
            graduation_year = (
                self.academic_year + program.years_left(grade) - (1 if spec.archived else 0)
            )
        return Cohort(spec.id, program, grade, graduation_year, spec.archived, now)


def _matches(cohort: Cohort, query: YearGroupQuery, members: list[int]) -> bool:
    if query.archived is not None and cohort.archived != query.archived:
        return False
    if query.modified_since is not None and cohort.updated_at < query.modified_since:
        return False
    return query.student_ids is None or not query.student_ids.isdisjoint(members)
