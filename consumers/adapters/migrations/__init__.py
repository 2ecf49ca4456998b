"""The ledger's schema migrations (Alembic), shipped inside the package.

They live here rather than beside an `alembic.ini` at the repository root so that an
installed service (a wheel, a container image) can migrate its own database with no file
from the source tree. The service builds Alembic's configuration in code (`config()`):
the database is whatever connection the ledger hands over, never a URL from a file. For
developers, `[tool.alembic]` in pyproject.toml points the `alembic` command at this folder,
and `env.py` then reads `SYNC_DATABASE_URL` like the service does:

    alembic upgrade head                                  # migrate the configured ledger
    alembic upgrade head --sql                            # print the SQL for a DBA instead
    alembic check                                         # models and migrations agree?
    alembic revision --autogenerate --rev-id 0002 -m "…"  # a new revision, numbered in order
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

SCRIPT_LOCATION = Path(__file__).resolve().parent

# The revision that creates `sync_records` as it stood before migrations existed; a ledger
# made then (by `create_all`) is stamped with it, not created again (see env.py).
BASELINE = "0001"


class UnversionedSchemaError(Exception):
    """Raised when `sync_records` exists without Alembic's version table and is not 0001."""


def config(connection: Connection | None = None) -> Config:
    """Return Alembic's configuration for this folder, bound to `connection` if given."""
    alembic_config = Config()
    alembic_config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        alembic_config.attributes["connection"] = connection
    return alembic_config


# Alembic keeps the running migration's context in module globals: one migration at a time
# in a process, whatever loop or thread asks (the database's lock, in env.py, is for
# processes). A coroutine waits on its loop's lock, so it never blocks its own loop's thread
# while another coroutine of that loop migrates.
_THREAD_LOCK = threading.Lock()
_LOOP_LOCKS: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = WeakKeyDictionary()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind `connection` to `revision`, in its open transaction."""
    with _THREAD_LOCK:
        command.upgrade(config(connection), revision)


async def upgrade_async(connection: AsyncConnection, revision: str = "head") -> None:
    """Migrate like `upgrade`, from a coroutine; safe for any number of callers at once."""
    lock = _LOOP_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        await connection.run_sync(upgrade, revision)
