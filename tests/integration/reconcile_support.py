"""The two simulators served over HTTP, a SQLite ledger, and reconcile run with the real
clients: what the reconcile integration tests drive and look at."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from consumers.adapters.ledger import Ledger
from consumers.adapters.managebac import RetryPolicy
from consumers.bootstrap import school_ports
from consumers.capture.reconcile import RUN_KIND, ReconcileReport, run_reconcile
from consumers.domain.drift import observed_fields
from consumers.domain.records import SourceState, Status, SyncRecord
from consumers.settings import SchoolsFile
from sim.isams.app import SimConfig as IsamsConfig
from sim.isams.app import create_app as create_isams_app
from sim.isams.school import SchoolData, generate_school
from sim.managebac import SimConfig as ManagebacConfig
from sim.managebac import create_app as create_managebac_app
from sim.serving import serve_app
from tests.integration.sync_stack import SCHOOL, TOKEN, YEAR_GROUPS, school_entry

TEACHERS_WITH_ACCESS = ("1", "2")  # what staff events would have told the ledger


def schools_file(isams_url: str, managebac_url: str) -> dict[str, Any]:
    """The schools file of the one school, pointing at the simulators."""
    return {"schools": [school_entry(isams_url, managebac_url)]}


@dataclass
class Sims:
    """The simulators, the ledger, and a reconcile over them."""

    school: SchoolData
    schools: SchoolsFile
    managebac: httpx.AsyncClient  # the ManageBac+ simulator, as a client of its API
    ledger: Ledger
    http: httpx.AsyncClient
    database_url: str

    async def reconcile(self, dry_run: bool = False, force: bool = False) -> ReconcileReport:
        ports = school_ports(self.schools.schools[0], self.http, RetryPolicy(attempts=2))
        return await run_reconcile(ports, self.ledger, dry_run=dry_run, force=force)

    async def grant_teachers_access(self) -> None:
        """Remember ManageBac+ access for some staff, as staff events would have."""
        for employee_id in TEACHERS_WITH_ACCESS:
            await self.ledger.put(
                SyncRecord(
                    school=SCHOOL,
                    kind="staff",
                    isams_id=employee_id,
                    status=Status.SKIPPED,
                    source=SourceState(access=True),
                )
            )

    async def state(self) -> dict[str, Any]:
        found: dict[str, Any] = (await self.managebac.get("/_sim/state")).json()
        return found

    async def people(self) -> dict[str, Any]:
        """ManageBac+ as far as this service writes it: each user's sent fields and archive
        flag, and every link."""
        state = await self.state()
        people: dict[str, Any] = {
            resource: {
                user["id"]: (observed_fields(resource, user), user["archived"])
                for user in state[resource]
            }
            for resource in ("students", "parents", "teachers")
        }
        people["links"] = sorted(
            (link["parent_id"], link["child_id"], link["relationship"]) for link in state["links"]
        )
        return people

    async def requests(self) -> Counter[str]:
        """Requests the ManageBac+ simulator answered so far, by `METHOD /route`."""
        return Counter((await self.managebac.get("/_sim/stats")).json()["requests"])

    async def rows(self) -> dict[tuple[str, str], SyncRecord]:
        """The ledger's rows, the runs' own records aside."""
        return {
            (row.kind, row.isams_id): row
            for row in await self.ledger.records(SCHOOL)
            if row.kind not in (RUN_KIND, "backfill")
        }

    async def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        """Change ManageBac+ through its own API, as a school's admin or another tool would."""
        response = await self.managebac.request(
            method, path, json=body, headers={"auth-token": TOKEN}
        )
        assert response.status_code < 300, response.text


def since(before: Counter[str], after: Counter[str]) -> Counter[str]:
    """Requests made between two counts."""
    return Counter(
        {route: after[route] - before[route] for route in after if after[route] > before[route]}
    )


@asynccontextmanager
async def open_sims(tmp_path: Path, students: int = 24) -> AsyncIterator[Sims]:
    """Serve both simulators and open a SQLite ledger."""
    school = generate_school(students, seed=11)
    isams = create_isams_app(IsamsConfig(), school)
    managebac = create_managebac_app(ManagebacConfig(token=TOKEN, year_groups=YEAR_GROUPS))
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.from_url(database_url)
    await ledger.create_schema()
    try:
        async with (
            serve_app(isams, lifespan="off") as isams_url,
            serve_app(managebac, lifespan="off") as managebac_url,
            httpx.AsyncClient(timeout=30) as http,
            httpx.AsyncClient(base_url=managebac_url, timeout=30) as managebac_http,
        ):
            yield Sims(
                school=school,
                schools=SchoolsFile.model_validate(schools_file(isams_url, managebac_url)),
                managebac=managebac_http,
                ledger=ledger,
                http=http,
                database_url=database_url,
            )
    finally:
        await ledger.close()
