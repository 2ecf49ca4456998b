"""Process settings (environment) and per-school settings (YAML), per docs/design.md §2.1.

Nothing here is built at import time: entrypoints call `load_settings()` and `load_schools()`
and hand the results down, so tests can build their own.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from consumers.domain.year_groups import GradeCode


class ConfigError(Exception):
    """Raised when a setting is missing or invalid; the message names the setting."""


@dataclass(frozen=True)
class KafkaConnection:
    """How every Kafka client of ours connects: bootstrap servers plus TLS/SASL settings.

    Turned into aiokafka's keyword options by consumers/adapters/kafka/connection.py.
    """

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: Path | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    def __str__(self) -> str:
        return self.bootstrap  # never the credentials


class UnknownSchoolError(LookupError):
    """Raised when a command or request names a school the schools file does not have."""


class Settings(BaseSettings):
    """Environment settings shared by `serve` and `consume`."""

    model_config = SettingsConfigDict(env_prefix="SYNC_", extra="ignore", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = ""
    consumer_group: str = "isams-sync"
    database_url: str = "sqlite+aiosqlite:///./var/sync.db"
    schools_file: Path = Path("./schools.yaml")
    admin_token: SecretStr | None = None
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_create_topics: bool = True
    kafka_topic_partitions: int = Field(default=6, ge=1, le=1000)
    kafka_replication_factor: int = Field(default=1, ge=-1, le=10)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # How often a blocked school's ManageBac+ token is checked again (docs/design.md §4: at
    # least every 30 s); its waiting changes look again after half of it.
    token_recheck_seconds: float = Field(default=30.0, gt=0, le=30)
    # Waits (s) before each retry of a parked change, then the DLQ; unset = the runner's
    # own schedule. Comma-separated in the environment: SYNC_RETRY_DELAYS=2,10,30.
    retry_delays: Annotated[tuple[float, ...] | None, NoDecode] = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("admin_token")
    @classmethod
    def _refuse_short_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("retry_delays", mode="before")
    @classmethod
    def _comma_separated_delays(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",")) if value.strip() else None
        return value

    @field_validator("retry_delays")
    @classmethod
    def _positive_delays(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None and (
            not value or not all(math.isfinite(delay) and delay > 0 for delay in value)
        ):
            raise ValueError("must be one or more positive numbers of seconds, comma-separated")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [
                name
                for name, value in (
                    ("SYNC_KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
                    ("SYNC_KAFKA_SASL_USERNAME", self.kafka_sasl_username),
                    ("SYNC_KAFKA_SASL_PASSWORD", self.kafka_sasl_password),
                )
                if not value
            ]
            if missing:
                raise ValueError(
                    f"SYNC_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                    + ", ".join(missing)
                )
        if self.kafka_ssl_cafile is not None and not self.kafka_ssl_cafile.is_file():
            raise ValueError(f"SYNC_KAFKA_SSL_CAFILE: no such file {self.kafka_ssl_cafile}")
        return self

    @property
    def kafka(self) -> KafkaConnection:
        """Return how to connect to Kafka, with the TLS/SASL settings when set."""
        sasl = self.kafka_security_protocol.startswith("SASL_") and self.kafka_sasl_password
        return KafkaConnection(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            ssl_cafile=self.kafka_ssl_cafile,
            sasl_mechanism=self.kafka_sasl_mechanism if sasl else None,
            sasl_username=self.kafka_sasl_username if sasl else None,
            sasl_password=self.kafka_sasl_password if sasl else None,
        )

    @property
    def topics(self) -> Topics:
        """Return the topic names with the configured prefix."""
        return Topics.with_prefix(self.kafka_topic_prefix)


class Topics(BaseModel):
    """Kafka topic names (docs/design.md §2.3); the prefix is prepended as is."""

    model_config = ConfigDict(frozen=True)

    changes: str
    retry: str
    dlq: str
    bulk: str
    """First syncs (backfill): consumed beside the live changes, with lower priority."""

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(
            changes=f"{prefix}isams.changes",
            retry=f"{prefix}isams.changes.retry",
            dlq=f"{prefix}isams.changes.dlq",
            bulk=f"{prefix}isams.changes.bulk",
        )

    def all(self) -> tuple[str, str, str, str]:
        return (self.changes, self.retry, self.dlq, self.bulk)


SchoolSlug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


MAX_POLL_INTERVAL_S = 86_400.0
MIN_POLL_INTERVAL_S = 1.0


class IsamsConnection(BaseModel):
    """How to reach one school's iSAMS REST API (OAuth2 client credentials), and how often
    `isams-sync poll` reads it (docs/design.md §6)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: AnyHttpUrl
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    # Seconds between the starts of two poll cycles; 0 = webhooks only (not polled).
    poll_interval_s: float = Field(default=0.0, ge=0.0, le=MAX_POLL_INTERVAL_S, allow_inf_nan=False)

    @field_validator("poll_interval_s")
    @classmethod
    def _off_or_at_least_a_second(cls, value: float) -> float:
        # Sub-second polling would spend a throttled iSAMS key's budget in moments.
        if 0 < value < MIN_POLL_INTERVAL_S:
            raise ValueError(f"must be 0 (not polled) or at least {MIN_POLL_INTERVAL_S:g} s")
        return value

    @property
    def polled(self) -> bool:
        """Tell whether `isams-sync poll` reads this school on its own schedule."""
        return self.poll_interval_s > 0


class ManagebacConnection(BaseModel):
    """How to reach one school's ManageBac+ API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: AnyHttpUrl
    token: SecretStr
    max_requests_per_second: float = Field(default=10, gt=0, le=1000)


class Mappings(BaseModel):
    """School-specific translation tables.

    A pupil's year group comes from one of two maps: `grades` (NC year -> ManageBac+ grade
    code such as `myp;8`, resolved at run time to the cohort now in that grade, so the
    academic-year transition needs no change here) or the fixed `year_groups` (NC year ->
    year_group_id, right only until the cohorts move up). Both at once is refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    grades: dict[int, str] = Field(default_factory=dict)
    year_groups: dict[int, int] = Field(default_factory=dict)
    contact_types: list[str] = Field(default_factory=lambda: ["Parents", "Guardian"])
    relationships: dict[str, str] = Field(default_factory=dict)

    @field_validator("grades")
    @classmethod
    def _grade_codes(cls, value: dict[int, str]) -> dict[int, str]:
        bad = sorted(year for year, code in value.items() if GradeCode.parse(code) is None)
        if bad:
            years = ", ".join(str(year) for year in bad)
            raise ValueError(
                f"NC year(s) {years}: a grade code is <program code>;<grade number>, "
                'e.g. "myp;8" or "secondary;7" (GET /v2/school/grades)'
            )
        return {year: str(GradeCode.parse(code)) for year, code in value.items()}

    def grade_codes(self) -> dict[int, GradeCode]:
        """Return `grades` as parsed grade codes (validated when the file was read)."""
        parsed = {year: GradeCode.parse(code) for year, code in self.grades.items()}
        return {year: code for year, code in parsed.items() if code is not None}


class StaffSettings(BaseModel):
    """Whether staff sync as ManageBac+ teachers, and what a revoked access does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # Where a teacher's ManageBac+ access comes from (docs/design.md §3 Teachers): `event`
    # (the `managebacAccess` of staff events), `all_current` or `teaching_staff`.
    access_from: Literal["event", "all_current", "teaching_staff"] = "event"
    on_access_revoked: Literal["archive", "ignore"] = "archive"


class School(BaseModel):
    """One school's settings from the schools file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SchoolSlug
    webhook_secrets: list[SecretStr] = Field(min_length=1)
    isams: IsamsConnection
    managebac: ManagebacConnection
    mappings: Mappings = Field(default_factory=Mappings)
    staff: StaffSettings = Field(default_factory=StaffSettings)
    placeholder_email_domain: str = "placeholder.invalid"

    @model_validator(mode="after")
    def _one_year_group_map(self) -> School:
        if self.mappings.grades and self.mappings.year_groups:
            raise ValueError(
                f"school {self.id}: mappings.grades and mappings.year_groups are both set; "
                "keep one (grades follows the cohorts through the academic-year transition)"
            )
        return self

    @field_validator("webhook_secrets")
    @classmethod
    def _standard_webhooks_secrets(cls, value: list[SecretStr]) -> list[SecretStr]:
        for secret in value:
            if not secret.get_secret_value().startswith("whsec_"):
                raise ValueError("each secret must be a Standard Webhooks secret (whsec_…)")
        return value


class SchoolsFile(BaseModel):
    """The whole schools file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schools: list[School] = Field(min_length=1)

    @field_validator("schools")
    @classmethod
    def _unique_ids(cls, value: list[School]) -> list[School]:
        ids = [school.id for school in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"school ids must be unique; repeated: {', '.join(duplicates)}")
        return value

    def by_id(self) -> dict[str, School]:
        return {school.id: school for school in self.schools}

    def school(self, school_id: str) -> School:
        """Return one school; an unknown id is an `UnknownSchoolError` naming the known ones."""
        for school in self.schools:
            if school.id == school_id:
                return school
        known = ", ".join(sorted(school.id for school in self.schools))
        raise UnknownSchoolError(
            f"no school {school_id!r} in the schools file (known: {known or 'none'})"
        )


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_variables(text: str, environ: dict[str, str] | os._Environ[str]) -> str:
    """Replace each `${VAR}` with its value; a missing variable is an error naming it."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise ConfigError(f"schools file: environment variable {name} is not set")
        return environ[name]

    return _VARIABLE.sub(replace, text)


def _expand_values(node: object, environ: dict[str, str] | os._Environ[str]) -> object:
    """Expand `${VAR}` inside the parsed document's strings only (never comments or keys),
    so a secret's quotes, colons or hashes cannot change the YAML's structure."""
    if isinstance(node, str):
        return expand_variables(node, environ)
    if isinstance(node, list):
        return [_expand_values(item, environ) for item in node]
    if isinstance(node, dict):
        return {key: _expand_values(value, environ) for key, value in node.items()}
    return node


def load_settings() -> Settings:
    """Read the environment; an invalid value is an error naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, prefix="SYNC_", upper=True)) from None


def load_schools(path: Path, environ: dict[str, str] | None = None) -> SchoolsFile:
    """Read and validate the schools file; errors name the file and the setting."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"SYNC_SCHOOLS_FILE: cannot read {path}: {exc.strerror or exc}") from None
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"schools file {path}: not valid YAML: {exc}") from None
    document = _expand_values(parsed, os.environ if environ is None else environ)
    try:
        return SchoolsFile.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"schools file {path}: " + _describe(exc)) from None


def _describe(exc: ValidationError, prefix: str = "", upper: bool = False) -> str:
    """Name each failing setting without echoing its value (it may be a secret)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        if not error["loc"]:  # a check across settings names them in its message
            parts.append(error["msg"].removeprefix("Value error, "))
            continue
        location = ".".join(str(item) for item in error["loc"])
        name = prefix + (location.upper() if upper else location)
        parts.append(f"{name}: {error['msg']}")
    return "; ".join(parts)
