"""The school's programs and their grades, as `GET /v2/school/grades` lists them.

A grade's code is `program_code;grade_number` (`myp;8`). Grade numbers follow the scale of the
reference spec's examples, which is the UK NC year: MYP Year 1 ("Grade 6") is 7, IB Diploma
Grade 12 is 13, Nursery is -1. The grade uid pattern (program uid * 1000 + grade number + 3)
is read off those examples too; it is assumed, not documented.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

SECONDARY_CODE = "secondary"
"""Code of the UK-style program that the `year_groups` config (NC year -> id) describes."""


class Grade(BaseModel):
    """One grade of a program."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    grade_number: int
    name: str = Field(min_length=1)
    label: str | None = None
    """The school's display name; None = the name."""


class Program(BaseModel):
    """One enabled program; its grades run from the entry grade to the graduating grade."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    code: str = Field(min_length=1, pattern=r"^[a-z0-9_]+$")
    short_name: str = Field(min_length=1)
    """Start of its cohorts' names: "IB MYP" gives "IB MYP Group of 2019 (Year 4)"."""
    uid: int
    grades: tuple[Grade, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ascending(self) -> Program:
        numbers = [grade.grade_number for grade in self.grades]
        if numbers != sorted(set(numbers)):
            raise ValueError(f"program {self.code}: grade numbers must be distinct and ascending")
        return self

    @property
    def entry(self) -> Grade:
        """Return the grade a new cohort starts in."""
        return self.grades[0]

    def grade(self, grade_number: int) -> Grade | None:
        """Return the grade with this number, None when the program has none."""
        return next((g for g in self.grades if g.grade_number == grade_number), None)

    def next_grade(self, grade: Grade) -> Grade | None:
        """Return the grade after `grade`; None for the graduating grade."""
        index = self.grades.index(grade)
        return self.grades[index + 1] if index + 1 < len(self.grades) else None

    def years_left(self, grade: Grade) -> int:
        """Return how many transitions a cohort in `grade` has before it graduates."""
        return len(self.grades) - 1 - self.grades.index(grade)

    def code_of(self, grade: Grade) -> str:
        """Return the grade code, e.g. `myp;8`."""
        return f"{self.code};{grade.grade_number}"

    def uid_of(self, grade: Grade) -> int:
        """Return the grade uid (pattern of the spec's examples, assumed)."""
        return self.uid * 1000 + grade.grade_number + 3


def parse_grade_code(code: str) -> tuple[str, int] | None:
    """Split `myp;8` into ("myp", 8); None when it is not `program;integer`."""
    program, sep, number = code.partition(";")
    if not sep or not program or not number.lstrip("-").isdigit():
        return None
    return program, int(number)


def find_grade(programs: Mapping[str, Program], code: str) -> tuple[Program, Grade]:
    """Return the program and grade of a grade code; ValueError when the school has none."""
    parsed = parse_grade_code(code)
    program = programs.get(parsed[0]) if parsed else None
    grade = program.grade(parsed[1]) if program and parsed else None
    if program is None or grade is None:
        raise ValueError(f"no grade {code!r} in the programs {sorted(programs)}")
    return program, grade


def _uk_year_name(year: int) -> str:
    if year == 0:
        return "Reception"
    if year == -1:
        return "Nursery"
    return f"Year {year}"


def secondary_program(years: Iterable[int] = ()) -> Program:
    """Return the UK-style program of the `year_groups` config: Year 7 to Year 13.

    The range widens to any configured NC year outside it, so an old `year_groups` map with,
    say, Year 6 keeps working. The name and code are the simulator's choice (ManageBac+ lets a
    school name its programs); grade numbers are the NC years, as on the spec's scale.
    """
    wanted = list(years)
    low, high = min([7, *wanted]), max([13, *wanted])
    grades = tuple(Grade(grade_number=n, name=_uk_year_name(n)) for n in range(low, high + 1))
    return Program(
        name="Secondary", code=SECONDARY_CODE, short_name="Secondary", uid=100200, grades=grades
    )


IB_MYP = Program(
    name="IB Middle Years",
    code="myp",
    short_name="IB MYP",
    uid=100110,
    grades=tuple(
        Grade(grade_number=year + 6, name=f"Year {year}", label=f"Grade {year + 5}")
        for year in range(1, 6)
    ),
)
"""MYP Years 1-5 (grade numbers 7-11), as in the spec's grades example."""

IB_DIPLOMA = Program(
    name="IB Diploma",
    code="diploma",
    short_name="IB Diploma",
    uid=100120,
    grades=(Grade(grade_number=12, name="Grade 11"), Grade(grade_number=13, name="Grade 12")),
)
"""DP Grades 11-12 (grade numbers 12-13): "IB Diploma Group of 2019 (Grade 12)" is 13."""

PRESETS: dict[str, Program] = {IB_MYP.code: IB_MYP, IB_DIPLOMA.code: IB_DIPLOMA}
"""Programs the command line can enable by code."""
