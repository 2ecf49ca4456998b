"""Alembic's entry point for the ledger's migrations (Alembic runs it; nothing imports it).

Online, migrations run inside one transaction on a connection whose owner commits it: the
ledger's (`Ledger.create_schema`) or, from the `alembic` command line, one opened here on
`SYNC_DATABASE_URL`. First the transaction takes a lock that processes starting together
(a web process and its consumers) queue on, so one of them migrates and the others then
find the schema at head.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON, inspect, text
from sqlalchemy.engine import Connection

from consumers.adapters.ledger import engine_from_url, metadata
from consumers.adapters.migrations import BASELINE, UnversionedSchemaError
from consumers.settings import Settings

# Any fixed number, the same in every process: the key of PostgreSQL's advisory lock.
_LOCK_KEY = 0x15A5_5CEC
# The columns revision 0001 creates, frozen: the models may grow columns in later revisions.
_BASELINE_COLUMNS = frozenset(
    {
        "school", "kind", "isams_id", "status", "managebac_id", "related_id", "person_key",
        "pushed", "content_hash", "archived", "reason", "warnings", "source_updated_at",
        "last_received_at", "last_applied_at", "latency_ms",
    }
)  # fmt: skip


def _lock(connection: Connection) -> None:
    """Hold the database's migration lock until the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    elif connection.dialect.name == "sqlite" and not _sqlite_in_transaction(connection):
        # SQLite's write lock now rather than at the first write: a second process waits
        # here (busy timeout) instead of failing halfway on "table already exists".
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_in_transaction(connection: Connection) -> bool:
    """Tell whether SQLite itself has begun a transaction (SQLAlchemy's view may differ)."""
    driver = connection.connection.driver_connection
    return driver is not None and bool(driver.in_transaction)


def _adopt_unversioned(connection: Connection) -> None:
    """Stamp a ledger that `create_all` made, before migrations existed, as revision 0001."""
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    if "alembic_version" in tables or "sync_records" not in tables:
        return
    columns = {column["name"] for column in inspector.get_columns("sync_records")}
    missing = _BASELINE_COLUMNS - columns
    if missing:
        raise UnversionedSchemaError(
            f"sync_records has no alembic_version and lacks {sorted(missing)}: it predates "
            f"revision {BASELINE}; move it aside and let a backfill rebuild the ledger"
        )
    context.get_context().stamp(context.script, BASELINE)


def _render_item(kind: str, item: object, autogen: AutogenContext) -> str | Literal[False]:
    """Write our JSON-or-JSONB type in new revisions as 0001 does.

    Alembic's own rendering of it names `Text` without importing it.
    """
    if kind == "type" and isinstance(item, JSON) and "postgresql" in _variants(item):
        autogen.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    return False


def _variants(item: JSON) -> dict[str, object]:
    variants: dict[str, object] = getattr(item, "_variant_mapping", {})
    return variants


def _migrate(connection: Connection) -> None:
    """Run the command Alembic was given (upgrade, check, …) on `connection`."""
    _lock(connection)
    context.configure(connection=connection, target_metadata=metadata, render_item=_render_item)
    with context.begin_transaction():
        _adopt_unversioned(connection)
        context.run_migrations()


async def _migrate_configured_database() -> None:
    """Run the command on `SYNC_DATABASE_URL` in one transaction (the command line)."""
    engine = engine_from_url(Settings().database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


def _print_sql() -> None:
    """Write the SQL for `SYNC_DATABASE_URL`'s dialect to stdout (`alembic upgrade --sql`)."""
    context.configure(
        url=Settings().database_url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _migrate(given)
    elif context.is_offline_mode():
        _print_sql()
    else:
        asyncio.run(_migrate_configured_database())


_main()
