"""The ledger's contract: every test body of `LedgerPort` runs on the fake (tests/fakes.py),
on SQLite (a file) and on PostgreSQL, so the fake the sync tests run on is held to what the
real ledger does. The migration and engine tests are about SQL and run on the real two.

On PostgreSQL each test gets its own schema, first on the search path, so each starts from
an empty database as a fresh install does. The migration tests also hold the models and the
migrations together: `alembic check` fails as soon as `_RecordRow` changes without a revision.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from consumers.adapters import migrations
from consumers.adapters.ledger import Ledger, engine_from_url, metadata
from consumers.domain.changes import PolledHash
from consumers.domain.records import LinkState, SourceState, Status, SyncRecord
from consumers.ports import LedgerPort
from tests.fakes import FakeLedger

SCHOOL = "contract-school"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
LEDGERS = [pytest.param("fake", id="fake"), *BACKENDS]


@dataclass(frozen=True)
class Database:
    """An empty database on one backend; each `ledger()` is a new client of it."""

    url: str
    schema: str | None = None  # PostgreSQL: this test's own schema

    def engine(self) -> AsyncEngine:
        if self.schema is None:
            return engine_from_url(self.url)
        settings = {"search_path": self.schema}
        return create_async_engine(self.url, connect_args={"server_settings": settings})

    def ledger(self) -> Ledger:
        return Ledger(self.engine())


def _empty_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if backend == "sqlite":
        return Database(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    return Database(request.getfixturevalue("postgres"), f"ledger_{uuid.uuid4().hex[:12]}")


@asynccontextmanager
async def _schema_of(empty: Database) -> AsyncIterator[Database]:
    """Give the test its database, and drop its PostgreSQL schema afterwards."""
    schema = empty.schema
    if schema is None:
        yield empty
        return
    admin = create_async_engine(empty.url)
    try:
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield empty
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return _empty_database(request.param, request, tmp_path)


@pytest.fixture
async def database(empty_database: Database) -> AsyncIterator[Database]:
    async with _schema_of(empty_database) as database:
        yield database


@pytest.fixture(params=LEDGERS)
def ledger_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Database | None:
    """The real backend's empty database (resolved here, outside the event loop), or None
    for the fake."""
    return None if request.param == "fake" else _empty_database(request.param, request, tmp_path)


@pytest.fixture
async def ledger(ledger_backend: Database | None) -> AsyncIterator[LedgerPort]:
    if ledger_backend is None:
        fake = FakeLedger()
        await fake.create_schema()
        yield fake
        await fake.close()
        return
    async with _schema_of(ledger_backend) as database:
        real = database.ledger()
        await real.create_schema()
        yield real
        await real.close()


def a_record(isams_id: str = "1001", **changes: object) -> SyncRecord:
    record = SyncRecord(
        school=SCHOOL,
        kind="student",
        isams_id=isams_id,
        status=Status.SYNCED,
        managebac_id=3_000_000_001,  # past 2**31: ManageBac's ids are not ours to bound
        pushed={"first_name": "Zoë", "year_group_id": 10209272},
        content_hash="a" * 64,
        warnings=("gender: not sent",),
        source_updated_at="2026-11-28T10:00:00.1234567+00:00",
        last_received_at=datetime(2026, 11, 28, 10, 0, 0, 250_000, tzinfo=UTC),
        last_applied_at=datetime(2026, 11, 28, 10, 0, 1, 500_000, tzinfo=UTC),
        latency_ms=1250.5,
    )
    return replace(record, **changes)  # type: ignore[arg-type]  # test data, any field


def contact(isams_id: str, student: str, person: str) -> SyncRecord:
    return SyncRecord(
        school=SCHOOL,
        kind="contact",
        isams_id=isams_id,
        status=Status.SYNCED,
        related_id=student,
        person_key=person,
        source=SourceState(record={"id": isams_id, "surname": "Łukasz"}),
    )


# --- reads and writes ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["student", "contact", "staff", "parent"])
async def test_get_answers_none_for_a_record_never_seen(ledger: LedgerPort, kind: str) -> None:
    assert await ledger.get(SCHOOL, kind, "never-seen") is None


async def test_put_inserts_a_record_that_get_returns_whole(ledger: LedgerPort) -> None:
    record = a_record(related_id="S1", person_key="P1", reason="why", archived=True)

    await ledger.put(record)

    assert await ledger.get(SCHOOL, "student", "1001") == record
    assert await ledger.get("other-school", "student", "1001") is None
    assert await ledger.get(SCHOOL, "contact", "1001") is None


async def test_put_replaces_every_field_of_the_same_record(ledger: LedgerPort) -> None:
    await ledger.put(a_record(related_id="S1", person_key="P1", reason="first"))
    replacement = SyncRecord(
        school=SCHOOL, kind="student", isams_id="1001", status=Status.SKIPPED, reason="second"
    )

    await ledger.put(replacement)

    assert await ledger.get(SCHOOL, "student", "1001") == replacement
    assert len(await ledger.records(SCHOOL)) == 1


async def test_records_are_a_schools_optionally_of_one_kind(ledger: LedgerPort) -> None:
    mine = [a_record("1"), a_record("2"), contact("c1", "1", "p1")]
    for record in [*mine, a_record("3", school="other-school")]:
        await ledger.put(record)

    everything = await ledger.records(SCHOOL)
    students = await ledger.records(SCHOOL, "student")

    assert sorted(everything, key=lambda r: (r.kind, r.isams_id)) == [mine[2], mine[0], mine[1]]
    assert sorted(r.isams_id for r in students) == ["1", "2"]
    assert await ledger.records(SCHOOL, "staff") == []
    assert await ledger.records("nobody") == []


async def test_related_finds_a_students_contacts(ledger: LedgerPort) -> None:
    for record in [
        contact("c1", student="S1", person="P1"),
        contact("c2", student="S1", person="P2"),
        contact("c3", student="S2", person="P1"),
        a_record("S1", related_id="S1"),  # another kind pointing at S1
    ]:
        await ledger.put(record)

    found = await ledger.related(SCHOOL, "contact", "S1")

    assert sorted(r.isams_id for r in found) == ["c1", "c2"]
    assert await ledger.related(SCHOOL, "contact", "S3") == []
    assert await ledger.related("other-school", "contact", "S1") == []


async def test_of_person_finds_a_persons_contact_rows(ledger: LedgerPort) -> None:
    for record in [
        contact("c1", student="S1", person="P1"),
        contact("c2", student="S1", person="P2"),
        contact("c3", student="S2", person="P1"),
    ]:
        await ledger.put(record)

    found = await ledger.of_person(SCHOOL, "contact", "P1")

    assert sorted(r.isams_id for r in found) == ["c1", "c3"]
    assert await ledger.of_person(SCHOOL, "parent", "P1") == []


async def test_status_counts_count_by_kind_and_status(ledger: LedgerPort) -> None:
    for record in [
        a_record("1"),
        a_record("2"),
        a_record("3", status=Status.SKIPPED),
        contact("c1", "1", "p1"),
        a_record("4", school="other-school"),
    ]:
        await ledger.put(record)

    counts = await ledger.status_counts(SCHOOL)

    assert counts == {"student/synced": 2, "student/skipped": 1, "contact/synced": 1}
    assert await ledger.status_counts("nobody") == {}


# --- the poller's hashes --------------------------------------------------------------------


def a_hash(n: int) -> str:
    return f"{n:064x}"


@pytest.mark.parametrize("kind", ["student", "contact", "staff"])
async def test_poll_hashes_are_empty_for_a_school_never_polled(ledger: Ledger, kind: str) -> None:
    assert await ledger.poll_hashes(SCHOOL, kind) == {}


async def test_stored_poll_hashes_come_back_per_school_and_kind(ledger: Ledger) -> None:
    students = {"1001": PolledHash(a_hash(1)), "1002": PolledHash(a_hash(2))}
    contacts = {"77": PolledHash(a_hash(3), related_id="1001")}

    await ledger.store_poll_hashes(SCHOOL, "student", students)
    await ledger.store_poll_hashes(SCHOOL, "contact", contacts)
    await ledger.store_poll_hashes("other-school", "student", {"1001": PolledHash(a_hash(9))})

    assert await ledger.poll_hashes(SCHOOL, "student") == students
    assert await ledger.poll_hashes(SCHOOL, "contact") == contacts
    assert await ledger.poll_hashes(SCHOOL, "staff") == {}
    assert await ledger.poll_hashes("other-school", "student") == {"1001": PolledHash(a_hash(9))}


async def test_storing_a_hash_again_replaces_it_and_none_forgets_the_record(
    ledger: Ledger,
) -> None:
    await ledger.store_poll_hashes(
        SCHOOL, "contact", {"1": PolledHash(a_hash(1), "S1"), "2": PolledHash(a_hash(2), "S1")}
    )

    await ledger.store_poll_hashes(
        SCHOOL, "contact", {"1": PolledHash(a_hash(5), "S2"), "2": None, "never-stored": None}
    )

    assert await ledger.poll_hashes(SCHOOL, "contact") == {"1": PolledHash(a_hash(5), "S2")}
    assert await ledger.records(SCHOOL) == []  # the sync records are another table


async def test_a_school_sized_batch_is_stored_and_forgotten_in_one_call(ledger: Ledger) -> None:
    many = {str(n): PolledHash(a_hash(n)) for n in range(1, 2501)}
    await ledger.store_poll_hashes(SCHOOL, "student", many)
    assert await ledger.poll_hashes(SCHOOL, "student") == many

    await ledger.store_poll_hashes(SCHOOL, "student", dict.fromkeys(list(many)[:2400]))

    assert await ledger.poll_hashes(SCHOOL, "student") == dict(list(many.items())[2400:])


async def test_storing_nothing_changes_nothing(ledger: Ledger) -> None:
    await ledger.store_poll_hashes(SCHOOL, "staff", {"5": PolledHash(a_hash(5))})
    await ledger.store_poll_hashes(SCHOOL, "staff", {})
    assert await ledger.poll_hashes(SCHOOL, "staff") == {"5": PolledHash(a_hash(5))}


# --- what the database hands back -----------------------------------------------------------


async def test_json_fields_round_trip(ledger: LedgerPort) -> None:
    pushed = {
        "first_name": "Zoë 李",
        "nationalities": ["GB", "FR"],
        "nested": {"deep": [1, {"deeper": None}], "empty": {}},
        "flag": False,
        "big": 2**53 + 1,
        "ratio": 0.1,
        "quote": 'it\'s "quoted" \\ and\nnewline',
    }
    warnings = ("nationality: 'Narnia' unknown, dropped", "language: ünknown")

    await ledger.put(a_record(pushed=pushed, warnings=warnings))
    found = await ledger.get(SCHOOL, "student", "1001")

    assert found is not None
    assert found.pushed == pushed
    assert found.warnings == warnings
    await ledger.put(a_record(pushed={}, warnings=()))
    emptied = await ledger.get(SCHOOL, "student", "1001")
    assert emptied is not None
    assert (emptied.pushed, emptied.warnings) == ({}, ())


async def test_source_state_round_trips_record_link_and_access(ledger: LedgerPort) -> None:
    source = SourceState(
        record={"id": 3301, "personGuid": "AB-12", "deceased": False, "names": ["Zoë", ""]},
        link=LinkState("Stepmother", linked=False),
        access=False,
    )

    await ledger.put(a_record(source=source))
    found = await ledger.get(SCHOOL, "student", "1001")

    assert found is not None
    assert found.source == source
    await ledger.put(a_record(source=SourceState()))
    cleared = await ledger.get(SCHOOL, "student", "1001")
    assert cleared is not None
    assert cleared.source == SourceState()


async def test_a_row_handed_back_is_a_copy_not_the_stored_row(ledger: LedgerPort) -> None:
    await ledger.put(a_record(pushed={"first_name": "Zoë"}))
    found = await ledger.get(SCHOOL, "student", "1001")
    assert found is not None

    found.pushed["first_name"] = "changed by the caller"

    again = await ledger.get(SCHOOL, "student", "1001")
    assert again is not None
    assert again.pushed == {"first_name": "Zoë"}


async def test_datetimes_come_back_as_the_same_instant_in_utc(ledger: LedgerPort) -> None:
    paris = timezone(timedelta(hours=2))
    applied = datetime(2026, 11, 28, 12, 0, 1, 123_456, tzinfo=paris)
    naive = datetime(2026, 11, 28, 10, 0, 0, 654_321)  # taken as UTC

    await ledger.put(a_record(last_applied_at=applied, last_received_at=naive))
    found = await ledger.get(SCHOOL, "student", "1001")

    assert found is not None
    assert found.last_applied_at == applied
    assert found.last_applied_at.utcoffset() == timedelta(0)
    assert found.last_received_at == naive.replace(tzinfo=UTC)
    assert found.last_received_at.utcoffset() == timedelta(0)


async def test_ping_answers_true_while_the_database_answers(ledger: LedgerPort) -> None:
    assert await ledger.ping() is True


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:////nonexistent-folder/ledger.db",
        "postgresql+asyncpg://isams_sync:wrong@127.0.0.1:1/isams_sync",
    ],
    ids=["sqlite", "postgresql"],
)
async def test_ping_answers_false_when_the_database_does_not(url: str) -> None:
    ledger = Ledger(create_async_engine(url))
    try:
        assert await ledger.ping() is False
    finally:
        await ledger.close()


# --- migrations ------------------------------------------------------------------------------


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _head() -> str | None:
    return ScriptDirectory.from_config(migrations.config()).get_current_head()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _check(connection: Connection) -> None:
    """Raise when the models and the migrated schema differ (`alembic check`)."""
    command.check(migrations.config(connection))


async def test_an_empty_database_migrates_to_head_and_matches_the_models(
    database: Database,
) -> None:
    ledger = database.ledger()
    engine = database.engine()
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == set()

        await ledger.create_schema()

        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == {
                "alembic_version",
                "sync_records",
                "poll_hashes",
            }
            assert await connection.run_sync(_current_revision) == _head() == "0003"
            await connection.run_sync(_check)
    finally:
        await ledger.close()
        await engine.dispose()


async def test_migrating_again_changes_nothing_and_keeps_the_records(database: Database) -> None:
    first, second = database.ledger(), database.ledger()
    try:
        await first.create_schema()
        await first.put(a_record())

        await first.create_schema()
        await second.create_schema()

        assert await second.get(SCHOOL, "student", "1001") == a_record()
    finally:
        await first.close()
        await second.close()


# A process of its own, as the web process and each consumer are.
_MIGRATE_IN_A_CHILD = """
import asyncio, os
from sqlalchemy.ext.asyncio import create_async_engine
from consumers.adapters.ledger import Ledger

async def main() -> None:
    schema = os.environ["LEDGER_SCHEMA"]
    connect_args = {"server_settings": {"search_path": schema}} if schema else {}
    ledger = Ledger(create_async_engine(os.environ["LEDGER_URL"], connect_args=connect_args))
    try:
        await ledger.create_schema()
    finally:
        await ledger.close()

asyncio.run(main())
"""


async def test_processes_starting_together_migrate_once(database: Database) -> None:
    env = {**os.environ, "LEDGER_URL": database.url, "LEDGER_SCHEMA": database.schema or ""}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _MIGRATE_IN_A_CHILD, env=env, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = [await child.communicate() for child in children]

    assert [child.returncode for child in children] == [0, 0, 0], [err for _, err in results]
    ledger = database.ledger()
    try:
        await ledger.put(a_record())
        assert await ledger.get(SCHOOL, "student", "1001") == a_record()
    finally:
        await ledger.close()


async def test_ledgers_in_one_process_migrate_one_at_a_time(database: Database) -> None:
    ledgers = [database.ledger() for _ in range(4)]
    try:
        await asyncio.gather(*(ledger.create_schema() for ledger in ledgers))

        await ledgers[0].put(a_record())
        assert await ledgers[3].get(SCHOOL, "student", "1001") == a_record()
    finally:
        for ledger in ledgers:
            await ledger.close()


async def test_downgrade_to_base_removes_the_table_and_upgrade_restores_it(
    database: Database,
) -> None:
    engine = database.engine()
    try:
        async with engine.begin() as connection:
            await connection.run_sync(migrations.upgrade)
        async with engine.begin() as connection:
            await connection.run_sync(lambda c: command.downgrade(migrations.config(c), "base"))
            assert await connection.run_sync(_tables) == {"alembic_version"}
        async with engine.begin() as connection:
            await connection.run_sync(migrations.upgrade)
            await connection.run_sync(_check)
    finally:
        await engine.dispose()


async def test_a_ledger_made_before_migrations_is_adopted_with_its_records(
    database: Database,
) -> None:
    engine = database.engine()
    ledger = Ledger(engine)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)  # what create_schema used to do
        await ledger.put(a_record())
        async with engine.begin() as connection:  # back to the shape of those days (0001)
            await connection.execute(text("ALTER TABLE sync_records DROP COLUMN source"))
            await connection.execute(text("DROP TABLE poll_hashes"))

        await ledger.create_schema()

        assert await ledger.get(SCHOOL, "student", "1001") == a_record()
        async with engine.connect() as connection:
            assert await connection.run_sync(_current_revision) == _head()
            await connection.run_sync(_check)
    finally:
        await ledger.close()


async def test_a_table_older_than_revision_0001_is_refused_not_adopted(
    database: Database,
) -> None:
    ledger = database.ledger()
    engine = database.engine()
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("CREATE TABLE sync_records (school VARCHAR(64), kind VARCHAR(16))")
            )

        with pytest.raises(migrations.UnversionedSchemaError, match="person_key"):
            await ledger.create_schema()

        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == {"sync_records"}
    finally:
        await ledger.close()
        await engine.dispose()
