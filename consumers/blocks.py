"""Which schools are blocked, and why: a refused ManageBac+ token pauses the school.

docs/design.md §4: a 401, or a 403 for a missing right, means the school's token must be
fixed; until then its affected changes wait on the retry topic (none is dead-lettered),
`isams_sync_school_blocked{school,reason}` says so, and `explain` shows the reason. The
token is checked again at least every `recheck` seconds (`GET /v2/auth/permissions`), and
once it works the school is unblocked: the parked changes come back within their short
delay, so they flow again well within 2 minutes.

A 401 blocks every change of the school; a missing right blocks only the kinds that need
it (a staff change needs the teachers' rights, a student change the students' and
parents' ones). The state is kept in memory for the hot path and written to the ledger (a
row of kind `school`), so `explain`, the admin API and the console of another process see
it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from consumers.domain.records import SCHOOL_KIND, Status, SyncRecord
from consumers.ports import LedgerPort, ManagebacBlockedError, ManagebacError, ManagebacPort

if TYPE_CHECKING:
    from consumers.sync.context import SchoolPorts

log = logging.getLogger(__name__)

MANAGEBAC = "managebac"
RECHECK_SECONDS = 30.0
# The rights each kind of change needs (the simulator's names, after the v2 spec's
# `students/excusals/index` pattern; docs/reference/managebac-notes.md: per-endpoint rights).
NEEDED: Mapping[str, frozenset[str]] = {
    "student": frozenset(
        f"{area}/{action}"
        for area in ("students", "parents")
        for action in ("index", "create", "update", "archive", "unarchive")
    )
    | frozenset({"parents/children/update", "parents/children/create"}),
    "contact": frozenset(
        f"parents/{action}" for action in ("index", "create", "update", "archive", "unarchive")
    )
    | frozenset({"parents/children/update", "parents/children/create", "parents/children/destroy"}),
    "staff": frozenset(
        f"teachers/{action}" for action in ("index", "create", "update", "archive", "unarchive")
    ),
}


@dataclass(frozen=True)
class Block:
    """Why a school's changes wait: a refused token (all kinds) or missing rights (some)."""

    reason: str
    code: str  # metric label: "token_refused" or "missing_rights"
    kinds: frozenset[str]


# A school that maps grades (`mappings.grades`) reads the year groups for its students.
GRADES_NEED = frozenset({"year_groups/index"})


def needed_rights(uses_grades: bool) -> Mapping[str, frozenset[str]]:
    """Return the rights each kind of change needs, for a school that maps grades or not."""
    if not uses_grades:
        return NEEDED
    return {**NEEDED, "student": NEEDED["student"] | GRADES_NEED}


def block_for(
    error: ManagebacBlockedError,
    rights: frozenset[str] | None,
    needed: Mapping[str, frozenset[str]] = NEEDED,
) -> Block:
    """Describe a refusal; with the token's rights known, name the missing ones."""
    if error.status == 401 or rights is None:
        return Block(f"ManageBac+ {error.reason}", "token_refused", frozenset(needed))
    return missing_rights_block(rights, needed) or Block(
        f"ManageBac+ {error.reason}", "missing_rights", frozenset(needed)
    )


def missing_rights_block(
    rights: frozenset[str], needed_by_kind: Mapping[str, frozenset[str]] = NEEDED
) -> Block | None:
    """Return the block the token's rights call for, or None when it has all it needs."""
    missing = {kind: needed - rights for kind, needed in needed_by_kind.items() if needed - rights}
    if not missing:
        return None
    names = sorted(set().union(*missing.values()))
    return Block(
        f"the ManageBac+ token lacks the right(s) {', '.join(names)} "
        "(GET /v2/auth/permissions); give them to the token in ManageBac+",
        "missing_rights",
        frozenset(missing),
    )


class SchoolBlocks:
    """The blocked schools of this process, their metric and their ledger rows."""

    def __init__(
        self,
        ledger: LedgerPort,
        managebac: Mapping[str, ManagebacPort],
        registry: CollectorRegistry = REGISTRY,
        recheck: float = RECHECK_SECONDS,
        needs: Mapping[str, Mapping[str, frozenset[str]]] | None = None,
    ) -> None:
        self._ledger = ledger
        self._managebac = managebac
        self._needs = dict(needs or {})  # by school; NEEDED for a school not named
        self._recheck = recheck
        self._blocks: dict[str, Block] = {}
        self._checkers: dict[str, asyncio.Task[None]] = {}
        self._gauge = _gauge(registry)

    @classmethod
    def of(
        cls,
        ledger: LedgerPort,
        schools: Mapping[str, SchoolPorts],
        registry: CollectorRegistry = REGISTRY,
        recheck: float = RECHECK_SECONDS,
    ) -> SchoolBlocks:
        """Build the blocks of these schools: each school's ManageBac+ port, and the rights
        its changes need (year groups' too where it maps grades)."""
        return cls(
            ledger,
            {school: ports.managebac for school, ports in schools.items()},
            registry=registry,
            recheck=recheck,
            needs={
                school: needed_rights(bool(ports.settings.mappings.grades))
                for school, ports in schools.items()
            },
        )

    def reason(self, school: str, kind: str) -> str | None:
        """Return why changes of `kind` for `school` wait now, or None when they may go."""
        block = self._blocks.get(school)
        return block.reason if block is not None and kind in block.kinds else None

    def blocked(self) -> dict[str, str]:
        """Return every blocked school and why (for readiness details and the console)."""
        return {school: block.reason for school, block in self._blocks.items()}

    async def check_all(self, schools: Iterable[str]) -> None:
        """Read each school's rights at start-up; block the ones that lack some."""
        for school in schools:
            await self._check(school)

    async def refused(self, school: str, error: ManagebacBlockedError) -> None:
        """ManageBac+ refused the school's token: read its rights, block, keep checking."""
        if school in self._blocks:
            return
        rights: frozenset[str] | None = None
        if error.status == 403:
            with contextlib.suppress(ManagebacError):
                rights = await self._managebac[school].permissions()
        await self._block(school, block_for(error, rights, self._needed(school)))

    def _needed(self, school: str) -> Mapping[str, frozenset[str]]:
        return self._needs.get(school, NEEDED)

    async def stop(self) -> None:
        """Stop checking tokens (the process is going)."""
        for task in self._checkers.values():
            task.cancel()
        for task in self._checkers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._checkers.clear()

    async def _check(self, school: str) -> bool:
        """Read the school's rights; block or unblock; return whether it is usable."""
        try:
            rights = await self._managebac[school].permissions()
        except ManagebacBlockedError as exc:
            await self._block(school, block_for(exc, None, self._needed(school)))
            return False
        except ManagebacError as exc:  # down, not refused: the sync's retries handle that
            log.warning("ManageBac+ rights not read", extra={"school": school, "error": str(exc)})
            return school not in self._blocks
        block = missing_rights_block(rights, self._needed(school))
        if block is not None:
            await self._block(school, block)
            return False
        await self._unblock(school)
        return True

    async def _block(self, school: str, block: Block) -> None:
        previous = self._blocks.get(school)
        self._blocks[school] = block
        if previous is not None and previous.code != block.code:
            self._gauge.labels(school=school, reason=previous.code).set(0)
        self._gauge.labels(school=school, reason=block.code).set(1)
        if previous != block:
            log.error("school blocked", extra={"school": school, "reason": block.reason})
            await self._record(school, Status.FAILED, block.reason)
        if school not in self._checkers or self._checkers[school].done():
            self._checkers[school] = asyncio.create_task(
                self._recheck_until_usable(school), name=f"token-check-{school}"
            )

    async def _unblock(self, school: str) -> None:
        block = self._blocks.pop(school, None)
        if block is None:
            return
        self._gauge.labels(school=school, reason=block.code).set(0)
        log.warning("school unblocked: its ManageBac+ token works", extra={"school": school})
        await self._record(school, Status.SYNCED, None)

    async def _recheck_until_usable(self, school: str) -> None:
        while school in self._blocks:
            await asyncio.sleep(self._recheck)
            with contextlib.suppress(Exception):  # a checker never dies of one bad answer
                if await self._check(school):
                    return

    async def _record(self, school: str, status: Status, reason: str | None) -> None:
        row = await self._ledger.get(school, SCHOOL_KIND, MANAGEBAC) or SyncRecord(
            school=school, kind=SCHOOL_KIND, isams_id=MANAGEBAC, status=status
        )
        await self._ledger.put(
            replace(row, status=status, reason=reason, last_applied_at=datetime.now(UTC))
        )


_GAUGES: dict[int, Gauge] = {}


def _gauge(registry: CollectorRegistry) -> Gauge:
    """One gauge per registry (a process builds one SchoolBlocks; tests build several)."""
    key = id(registry)
    if key not in _GAUGES:
        _GAUGES[key] = Gauge(
            "isams_sync_school_blocked",
            "1 while a school's changes wait because a system refused its credentials.",
            ["school", "reason"],
            registry=registry,
        )
    return _GAUGES[key]
