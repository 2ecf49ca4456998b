"""The ledger: SQLAlchemy async storage of `SyncRecord`s (SQLite by default, PostgreSQL in
production). The single source of "what did we push, and why".

Its schema is Alembic's (`consumers/adapters/migrations`): a change to `_RecordRow` or
`_PollHashRow` needs a new revision there, and `tests/integration/test_ledger_contract.py`
fails until it has one. Beside the sync records it keeps the poller's per-record hashes
(`poll_hashes`), so a restarted poller knows what it already published.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Select,
    String,
    Table,
    Text,
    bindparam,
    delete,
    event,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from consumers.adapters import migrations
from consumers.domain.changes import PolledHash
from consumers.domain.records import SourceState, Status, SyncRecord

# What "the database is not there (yet)" can look like to a caller that tries again.
LEDGER_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)

# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
_JSON = JSON().with_variant(JSONB(), "postgresql")


class _Base(DeclarativeBase):
    pass


class _RecordRow(_Base):
    __tablename__ = "sync_records"
    __table_args__ = (
        Index("ix_sync_records_related", "school", "kind", "related_id"),
        Index("ix_sync_records_person", "school", "kind", "person_key"),
    )

    school: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    isams_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    managebac_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    related_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    person_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pushed: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)
    source: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict, server_default=text("'{}'"))
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[list[str]] = mapped_column(_JSON, default=list)
    source_updated_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_received_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    last_applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)


class _PollHashRow(_Base):
    """What the poller last published of one record (migration 0003)."""

    __tablename__ = "poll_hashes"

    school: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    isams_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    related_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# The tables as the models describe them: what Alembic's autogenerate compares with.
metadata = _Base.metadata
_TABLE = cast(Table, _RecordRow.__table__)
_HASHES = cast(Table, _PollHashRow.__table__)
_KEY = ("school", "kind", "isams_id")
# Ids per DELETE … IN (…): well inside SQLite's and asyncpg's limits on bound parameters.
_DELETE_CHUNK = 500
# Built once: constructing (and cache-keying) a statement per call cost more CPU than
# running it. Parameters come in as bound values.
_GET = select(_TABLE).where(
    _TABLE.c.school == bindparam("school"),
    _TABLE.c.kind == bindparam("kind"),
    _TABLE.c.isams_id == bindparam("isams_id"),
)


def _upsert(dialect: str, table: Table = _TABLE) -> Any:
    """Insert a row, or on a key conflict overwrite every other column with the new values."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=_KEY,
        set_={
            column.name: statement.excluded[column.name]
            for column in table.columns
            if column.name not in _KEY
        },
    )


def _utc(value: datetime | None) -> datetime | None:
    """Store instants in UTC: SQLite keeps a datetime's wall time and drops its zone."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite drops the zone; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _to_record(row: Any) -> SyncRecord:
    """Build the domain record from a row (an ORM object or a Core row: same names)."""
    return SyncRecord(
        school=row.school,
        kind=row.kind,
        isams_id=row.isams_id,
        status=Status(row.status),
        managebac_id=row.managebac_id,
        related_id=row.related_id,
        person_key=row.person_key,
        pushed=dict(row.pushed or {}),
        source=SourceState.from_json(row.source),
        content_hash=row.content_hash,
        archived=row.archived,
        reason=row.reason,
        warnings=tuple(row.warnings or ()),
        source_updated_at=row.source_updated_at,
        last_received_at=_aware(row.last_received_at),
        last_applied_at=_aware(row.last_applied_at),
        latency_ms=row.latency_ms,
    )


# The consumer runs up to 64 changes at once, each using one connection at a time, only
# while a statement runs. Connections beyond the pool are opened and closed for each use (on
# PostgreSQL a TCP and TLS handshake): SQLAlchemy's default pool of 5 made that a large part
# of the ledger's cost. 16 + 16 stays well inside PostgreSQL's default 100 connections with
# a few replicas. (SQLite keeps SQLAlchemy's defaults: more connections measured no faster.)
POSTGRESQL_POOL: dict[str, Any] = {"pool_size": 16, "max_overflow": 16}


def engine_from_url(database_url: str) -> AsyncEngine:
    """Build the ledger's engine, making the SQLite file's folder when needed."""
    url = make_url(database_url)
    sqlite = url.get_backend_name() == "sqlite"
    in_memory = url.database in (None, "", ":memory:")
    if sqlite and not in_memory:
        Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(database_url, **({} if sqlite else POSTGRESQL_POOL))
    if sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Set WAL (readers never wait for the writer) with synchronous=NORMAL: no fsync per
    commit (a crash can only lose the newest rows, which the next change of the record
    rewrites: processing is state-based), and a busy timeout so that concurrent writers
    wait instead of failing."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA journal_mode")
    mode = cursor.fetchone()
    if mode is None or str(mode[0]).lower() != "wal":
        # Persistent in the file: whichever connection gets the lock first sets it; one
        # that finds the file locked by another process leaves it to that one.
        with contextlib.suppress(sqlite3.OperationalError):
            cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Ledger:
    """Read and write sync records."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._upsert = _upsert(engine.dialect.name)
        self._upsert_hash = _upsert(engine.dialect.name, _HASHES)
        # Every call below is one statement, and one statement is atomic on its own. On
        # PostgreSQL they run in autocommit mode, without the BEGIN and COMMIT (or ROLLBACK)
        # round trips around each: 30% less CPU per statement. On SQLite autocommit costs
        # more than it saves (SQLAlchemy resets the level with a PRAGMA on every return:
        # twice the CPU per statement), so it keeps plain transactions.
        self._statements = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )

    @classmethod
    def from_url(cls, database_url: str) -> Ledger:
        """Build a ledger, making the SQLite file's folder when needed."""
        return cls(engine_from_url(database_url))

    async def create_schema(self) -> None:
        """Migrate the schema to the newest revision (creating it in an empty database).

        Idempotent, and safe in several processes at once: one migrates, the others wait
        and find nothing left to do. A ledger made before migrations existed is adopted.
        """
        async with self._engine.begin() as connection:
            await migrations.upgrade_async(connection)

    async def ping(self) -> bool:
        """Tell whether the database answers (readiness)."""
        try:
            async with self._statements.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any failure at all means "not ready"
            return False
        return True

    async def get(self, school: str, kind: str, isams_id: str) -> SyncRecord | None:
        """Return the record's row, or None when it was never seen."""
        parameters = {"school": school, "kind": kind, "isams_id": isams_id}
        async with self._statements.connect() as connection:
            row = (await connection.execute(_GET, parameters)).first()
        return _to_record(row) if row is not None else None

    async def put(self, record: SyncRecord) -> None:
        """Insert or replace the record's row: one upsert statement, safe when two
        consumers write the same new key at once."""
        values = {
            "school": record.school,
            "kind": record.kind,
            "isams_id": record.isams_id,
            "status": record.status.value,
            "managebac_id": record.managebac_id,
            "related_id": record.related_id,
            "person_key": record.person_key,
            "pushed": record.pushed,
            "source": record.source.to_json(),
            "content_hash": record.content_hash,
            "archived": record.archived,
            "reason": record.reason,
            "warnings": list(record.warnings),
            "source_updated_at": record.source_updated_at,
            "last_received_at": _utc(record.last_received_at),
            "last_applied_at": _utc(record.last_applied_at),
            "latency_ms": record.latency_ms,
        }
        async with self._statements.begin() as connection:  # on PostgreSQL: no BEGIN sent
            await connection.execute(self._upsert, values)

    async def records(self, school: str, kind: str | None = None) -> list[SyncRecord]:
        """Return every record of a school (optionally of one kind)."""
        query = select(_TABLE).where(_TABLE.c.school == school)
        if kind is not None:
            query = query.where(_TABLE.c.kind == kind)
        return await self._select(query)

    async def related(self, school: str, kind: str, related_id: str) -> list[SyncRecord]:
        """Return the records of `kind` that point at `related_id` (a student's contacts)."""
        return await self._select(
            select(_TABLE).where(
                _TABLE.c.school == school,
                _TABLE.c.kind == kind,
                _TABLE.c.related_id == related_id,
            )
        )

    async def of_person(self, school: str, kind: str, person_key: str) -> list[SyncRecord]:
        """Return the records of `kind` that belong to one person (their contact rows)."""
        return await self._select(
            select(_TABLE).where(
                _TABLE.c.school == school,
                _TABLE.c.kind == kind,
                _TABLE.c.person_key == person_key,
            )
        )

    async def _select(self, query: Select[Any]) -> list[SyncRecord]:
        async with self._statements.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_to_record(row) for row in rows]

    async def status_counts(self, school: str) -> Counter[str]:
        """Count a school's records by kind and status, e.g. `student/synced`."""
        return Counter(f"{r.kind}/{r.status.value}" for r in await self.records(school))

    async def poll_hashes(self, school: str, kind: str) -> dict[str, PolledHash]:
        """Return what the poller last published of each record of one kind, by iSAMS id."""
        query = select(_HASHES.c.isams_id, _HASHES.c.hash, _HASHES.c.related_id).where(
            _HASHES.c.school == school, _HASHES.c.kind == kind
        )
        async with self._statements.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {row.isams_id: PolledHash(row.hash, row.related_id) for row in rows}

    async def store_poll_hashes(
        self, school: str, kind: str, hashes: Mapping[str, PolledHash | None]
    ) -> None:
        """Write the given records' hashes (None: forget the record) in one transaction, so
        a poller stopped mid-write finds either all of a batch stored or none of it."""
        now = datetime.now(UTC)
        written = [
            {
                "school": school,
                "kind": kind,
                "isams_id": isams_id,
                "hash": polled.hash,
                "related_id": polled.related_id,
                "stored_at": now,
            }
            for isams_id, polled in hashes.items()
            if polled is not None
        ]
        forgotten = [isams_id for isams_id, polled in hashes.items() if polled is None]
        if not written and not forgotten:
            return
        async with self._engine.begin() as connection:  # one transaction on both backends
            if written:
                await connection.execute(self._upsert_hash, written)
            for start in range(0, len(forgotten), _DELETE_CHUNK):
                chunk = forgotten[start : start + _DELETE_CHUNK]
                await connection.execute(
                    delete(_HASHES).where(
                        _HASHES.c.school == school,
                        _HASHES.c.kind == kind,
                        _HASHES.c.isams_id.in_(chunk),
                    )
                )

    async def close(self) -> None:
        """Release the connection pool."""
        await self._engine.dispose()
