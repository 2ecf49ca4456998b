"""ManageBac+ v2 resources (Student, Parent, Teacher, year group, child relation).

Field names mirror `tests/fixtures/managebac-v2-subset.yaml`. `*Fields` classes hold what a
client may write; the record classes add what ManageBac+ owns (id, archived, timestamps, links);
the `*Write` classes are the request bodies, strict about unknown fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

UserKind = Literal["student", "parent", "teacher"]
USER_KINDS: tuple[UserKind, ...] = ("student", "parent", "teacher")

RELATIONSHIPS: tuple[str, ...] = (
    "Mother",
    "Father",
    "Stepmother",
    "Stepfather",
    "Legal Guardian",
    "Grandmother",
    "Grandfather",
    "Sister",
    "Brother",
    "Uncle",
    "Aunt",
    "Other Guardian",
    "Consultant Recruiter",
)
SALUTATIONS: tuple[str, ...] = ("Mr.", "Ms.", "Mrs.", "Dr.")


def format_timestamp(value: datetime) -> str:
    """Format like ManageBac+ does: `2021-06-28T12:40:05.000Z`."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


class PersonalInformation(BaseModel):
    """Personal and contact fields shared by students, parents and teachers."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    email: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name: str | None = None
    nickname: str | None = None
    other_name: str | None = None
    identifier: str | None = None
    gender: str | None = None
    birthday: str | None = None
    phone_number: str | None = None
    mobile_phone_number: str | None = None
    street_address: str | None = None
    street_address_ii: str | None = None
    city: str | None = None
    state: str | None = None
    zipcode: str | None = None
    country: str | None = None
    nationalities: list[str] | None = None
    languages: list[str] | None = None
    timezone: str | None = None


class StudentFields(PersonalInformation):
    """Writable student fields; `attendance_start_date` exists in real data, not in the schema."""

    student_id: str | None = None
    year_group_id: int | None = None
    homeroom_advisor_id: int | None = None
    graduating_year: int | None = None
    sb_id: str | None = None
    oa_id: str | None = None
    attendance_start_date: str | None = None


class ParentFields(PersonalInformation):
    """Writable parent fields."""

    salutation: str | None = None
    title: str | None = None
    employer: str | None = None
    work_email: str | None = None
    work_phone: str | None = None
    work_address: str | None = None
    work_address_ii: str | None = None
    work_fax: str | None = None
    work_city: str | None = None
    work_state: str | None = None
    work_postal_code: str | None = None
    work_country: str | None = None
    sb_id: str | None = None
    oa_id: str | None = None


class TeacherFields(PersonalInformation):
    """Writable teacher fields."""

    programs: list[str] | None = None


class StudentWrite(StudentFields):
    """Body of `POST`/`PATCH /v2/students` inside `{"student": ...}`."""

    password: str | None = None


class ParentWrite(ParentFields):
    """Body of `POST`/`PATCH /v2/parents` inside `{"parent": ...}`; `child_ids` on create only."""

    password: str | None = None
    child_ids: list[int] | None = None


class TeacherWrite(TeacherFields):
    """Body of `POST`/`PATCH /v2/teachers` inside `{"teacher": ...}`."""

    password: str | None = None


class UserRecord(PersonalInformation):
    """What ManageBac+ adds to every user; records are replaced, never mutated in place."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    archived: bool = False
    ui_language: str = "en"
    created_at: Timestamp
    updated_at: Timestamp
    nationalities: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)


class Student(UserRecord, StudentFields):
    """A stored student; `parent_ids` is filled from the links when rendered."""

    graduated_on: str | None = None
    withdrawn_on: str | None = None
    parent_ids: list[int] = Field(default_factory=list)
    role: Literal["Student"] = "Student"


class ChildRelation(BaseModel):
    """A parent's link to one student, with the relationship (null if not given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    relationship: str | None = None


class Parent(UserRecord, ParentFields):
    """A stored parent; `child_ids` and `children` are filled from the links when rendered."""

    child_ids: list[int] = Field(default_factory=list)
    children: list[ChildRelation] = Field(default_factory=list)
    role: Literal["Parent"] = "Parent"


class Teacher(UserRecord, TeacherFields):
    """A stored teacher."""

    programs: list[str] = Field(default_factory=list)
    role: Literal["Teacher"] = "Teacher"


class YearGroup(BaseModel):
    """One year group as `GET /v2/year-groups` lists it."""

    id: int
    name: str
    short_name: str
    program: str
    program_code: str
    grade: str
    archived: bool = False
    grade_number: int
    graduation_year: int
    student_ids: list[int] = Field(default_factory=list)


class Meta(BaseModel):
    """Pagination metadata of every list answer."""

    current_page: int
    total_pages: int
    total_count: int
    per_page: int


WRITE_MODELS: dict[UserKind, type[PersonalInformation]] = {
    "student": StudentWrite,
    "parent": ParentWrite,
    "teacher": TeacherWrite,
}
RECORD_MODELS: dict[UserKind, type[UserRecord]] = {
    "student": Student,
    "parent": Parent,
    "teacher": Teacher,
}
MODEL_NAMES: dict[UserKind, str] = {"student": "Student", "parent": "Parent", "teacher": "Teacher"}
CREATE_ONLY_FIELDS: frozenset[str] = frozenset({"child_ids"})
INT_FIELDS: frozenset[str] = frozenset({"year_group_id", "homeroom_advisor_id", "graduating_year"})
LIST_FIELDS: frozenset[str] = frozenset({"nationalities", "languages", "programs", "child_ids"})
