"""What every kind's sync needs: the school's ports, the ledger, per-person locks, and the
school's year-group directory when it maps grades."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from consumers.ports import IsamsPort, LedgerPort, ManagebacPort
from consumers.settings import School
from consumers.sync.year_groups import YearGroupDirectory


@dataclass(frozen=True)
class SchoolPorts:
    """One school's settings and the ports that reach its two systems."""

    settings: School
    isams: IsamsPort
    managebac: ManagebacPort


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]


@dataclass(frozen=True)
class SyncContext:
    """The ports of the change's school, with the shared ledger and locks; `year_groups` is
    the school's directory of cohorts when it maps `mappings.grades` (None: fixed ids)."""

    ports: SchoolPorts
    ledger: LedgerPort
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    year_groups: YearGroupDirectory | None = None

    @property
    def school(self) -> str:
        return self.ports.settings.id
