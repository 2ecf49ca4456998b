"""`isams-sync reconcile`: compare a school's ManageBac+ with iSAMS and repair the drift.

Exit 0 when it ran (drift found or not), 3 when the removals guard held archives, 2 on bad
arguments (an unknown school, named), 1 on errors (a system did not answer, or ManageBac+
refused a repair). The report goes to stdout (tables, or `--json`); progress to stderr.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from app.cli.common import (
    ForceOption,
    JsonOption,
    SchoolOption,
    checked_settings,
    known_school,
    progress_bars,
)

if TYPE_CHECKING:
    from consumers.capture.reconcile import ReconcileReport
    from consumers.settings import SchoolsFile, Settings

RAN, ERROR, GUARD_HELD = 0, 1, 3


def register(cli: typer.Typer) -> None:
    """Attach the command to the main CLI."""
    cli.command()(reconcile)


def reconcile(
    school: SchoolOption,
    dry_run: Annotated[
        bool, typer.Option(help="Read both systems and print the plan; write nothing.")
    ] = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Repair what differs between ManageBac+ and iSAMS (iSAMS wins); report look-alikes."""
    settings, schools = checked_settings()
    known_school("reconcile", schools, school)
    raise typer.Exit(asyncio.run(_run(settings, schools, school, dry_run, force, as_json)))


async def _run(
    settings: Settings,
    schools: SchoolsFile,
    school_id: str,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> int:
    from app.cli.plan_view import print_json, reconcile_view
    from consumers.bootstrap import open_services
    from consumers.capture.reconcile import ReconcileError, run_reconcile

    out, err = Console(), Console(stderr=True)
    async with open_services(settings, schools, client_id="isams-sync-reconcile") as services:
        await services.ledger.create_schema()
        ports = services.ports_of(school_id)
        assert ports is not None  # checked by known_school
        with progress_bars(err, quiet=as_json) as progress:
            try:
                report = await run_reconcile(
                    ports, services.ledger, dry_run=dry_run, force=force, progress=progress
                )
            except ReconcileError as exc:
                if as_json:
                    print_json(
                        out, {"command": "reconcile", "school": school_id, "error": str(exc)}
                    )
                err.print(f"[red]reconcile stopped: {exc}[/red]", highlight=False)
                if exc.plan.items and not dry_run:
                    err.print(f"{exc.plan.writes()} write(s) were made before it stopped.")
                return ERROR
    if as_json:
        print_json(out, report.to_json())
    else:
        out.print(reconcile_view(report))
    return exit_code(report)


def exit_code(report: ReconcileReport) -> int:
    """1 when ManageBac+ refused a repair, else 3 when the guard held removals, else 0."""
    if report.failures:
        return ERROR
    return GUARD_HELD if report.held else RAN
