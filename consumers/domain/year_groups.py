"""Year groups as ManageBac+ has them: cohorts, and which one each mapped NC year is in now.

docs/design.md §3 (Precise semantics) and docs/reference/managebac-notes.md ("Year groups
are cohorts"): a ManageBac+ year group is a cohort that keeps its id for life and moves up a
grade at the academic-year transition. So a school maps each iSAMS NC year to a grade code
(`myp;8`: program code and grade number, `mappings.grades`), and the year group is found at
run time: the one active (not archived) cohort of that program and grade number. None, or
two, and the pupils of that year are skipped with the reason: guessing would put a class in
the wrong year. Pure: the directory (consumers/sync/year_groups.py) reads the cohorts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from consumers.domain.isams import whole_number
from consumers.domain.records import Status, SyncRecord

_GRADE_CODE = re.compile(r"^([^;\s]+);(-?\d+)$")
_YEAR_GROUP = "year_group_id"
NOT_READ = "ManageBac+ year groups have not been read yet"


@dataclass(frozen=True, slots=True, order=True)
class GradeCode:
    """A ManageBac+ grade code, `<program code>;<grade number>` (`GET /v2/school/grades`)."""

    program: str
    number: int

    @classmethod
    def parse(cls, text: str) -> GradeCode | None:
        """Read `myp;8`; None when the text is not `<program>;<integer>`."""
        match = _GRADE_CODE.fullmatch(text.strip())
        return cls(match.group(1), int(match.group(2))) if match else None

    def __str__(self) -> str:
        return f"{self.program};{self.number}"


@dataclass(frozen=True, slots=True)
class Cohort:
    """One ManageBac+ year group as far as resolution cares."""

    id: int
    grade: GradeCode
    archived: bool


def read_cohort(raw: Mapping[str, Any]) -> Cohort | None:
    """Read one item of `GET /v2/year-groups`; None when it lacks an id, program or grade."""
    cohort_id = whole_number(raw.get("id"))
    number = whole_number(raw.get("grade_number"))
    program = raw.get("program_code")
    if cohort_id is None or number is None or not isinstance(program, str) or not program:
        return None
    return Cohort(cohort_id, GradeCode(program, number), archived=raw.get("archived") is True)


def merge(view: Mapping[int, Cohort], changed: Iterable[Cohort]) -> dict[int, Cohort]:
    """Return the view with the changed cohorts put in (a `modified_since` read)."""
    merged = dict(view)
    merged.update((cohort.id, cohort) for cohort in changed)
    return merged


ProblemKind = Literal["unknown_program", "unknown_grade", "no_active", "several_active"]


@dataclass(frozen=True, slots=True)
class GradeProblem:
    """Why a grade has no single active cohort now, in words for the school's support desk."""

    grade: GradeCode
    kind: ProblemKind
    cohort_ids: tuple[int, ...] = ()

    @property
    def reason(self) -> str:
        """Say what is wrong with the grade and what would fix it."""
        grade = self.grade
        ids = ", ".join(str(i) for i in self.cohort_ids)
        if self.kind == "unknown_program":
            return (
                f"grade {grade}: ManageBac+ has no year group of the program {grade.program!r} "
                "(check the code in GET /v2/school/grades)"
            )
        if self.kind == "unknown_grade":
            return (
                f"grade {grade}: ManageBac+ has no year group of this grade "
                "(check the grade number in GET /v2/school/grades)"
            )
        if self.kind == "no_active":
            return (
                f"grade {grade}: ManageBac+ has no active year group of this grade, only "
                f"archived ones (ids {ids}); the academic-year transition creates the next"
            )
        return (
            f"grade {grade}: ManageBac+ has {len(self.cohort_ids)} active year groups of this "
            f"grade (ids {ids}); archive the extra one(s) in ManageBac+"
        )


@dataclass(frozen=True)
class Resolution:
    """Each mapped NC year's year group now (`ids`), or why there is none (`problems`)."""

    grades: Mapping[int, GradeCode]
    ids: Mapping[int, int] = field(default_factory=dict)
    problems: Mapping[GradeCode, GradeProblem] = field(default_factory=dict)
    read: bool = True

    def reason(self, year: int) -> str | None:
        """Return why a mapped NC year has no year group now; None when it has one (or is
        not mapped)."""
        grade = self.grades.get(year)
        if grade is None or year in self.ids:
            return None
        why = self.problems[grade].reason if grade in self.problems else NOT_READ
        return f"yearGroup {year} maps to grade {grade} (mappings.grades), but {why}"

    def reasons(self) -> dict[int, str]:
        """Return the reason of every mapped NC year without a year group now."""
        found = {year: self.reason(year) for year in self.grades}
        return {year: why for year, why in found.items() if why is not None}

    def described_problems(self) -> dict[str, str]:
        """Return each grade without a single active cohort and why, by grade code."""
        if not self.read:
            return {str(grade): NOT_READ for grade in sorted(set(self.grades.values()))}
        return {str(grade): problem.reason for grade, problem in sorted(self.problems.items())}


def unread(grades: Mapping[int, GradeCode]) -> Resolution:
    """Return the resolution before ManageBac+ was read: no year has a year group yet."""
    return Resolution(grades=dict(grades), read=False)


def resolve(grades: Mapping[int, GradeCode], cohorts: Iterable[Cohort]) -> Resolution:
    """Find each mapped NC year's year group: the one active cohort of its grade.

    A grade whose program no cohort has is an unknown program; a known program without any
    cohort of the grade number is an unknown grade; only archived ones: none active; two
    or more active: ambiguous. Each is a `GradeProblem`, and its NC years get no id.
    """
    every = list(cohorts)
    programs = {cohort.grade.program for cohort in every}
    ids: dict[int, int] = {}
    problems: dict[GradeCode, GradeProblem] = {}
    for year, grade in grades.items():
        of_grade = [cohort for cohort in every if cohort.grade == grade]
        active = sorted(cohort.id for cohort in of_grade if not cohort.archived)
        if len(active) == 1:
            ids[year] = active[0]
        elif active:
            problems[grade] = GradeProblem(grade, "several_active", tuple(active))
        elif of_grade:
            archived = tuple(sorted(cohort.id for cohort in of_grade))
            problems[grade] = GradeProblem(grade, "no_active", archived)
        elif grade.program in programs:
            problems[grade] = GradeProblem(grade, "unknown_grade")
        else:
            problems[grade] = GradeProblem(grade, "unknown_program")
    return Resolution(grades=dict(grades), ids=ids, problems=problems)


def placement_due(row: SyncRecord | None, year: int | None, resolution: Resolution) -> int | None:
    """Return the year group a pupil must be re-planned into, or None to leave them be.

    Due: a pupil ManageBac+ has from us (linked, not archived) whose pushed `year_group_id`
    is not the one their iSAMS year resolves to now (the transition moved their cohort on,
    or iSAMS moved them), and a pupil never created because of a skip, now that their year
    has a year group (their grade may have been the reason). A year without a single
    active cohort moves nobody: the pupil's next change says why.
    """
    if row is None or year is None:
        return None
    target = resolution.ids.get(year)
    if target is None:
        return None
    if row.managebac_id is None:
        return target if row.status is Status.SKIPPED else None
    if row.archived or row.status is not Status.SYNCED:
        return None
    return target if row.pushed.get(_YEAR_GROUP) != target else None
