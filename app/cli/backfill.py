"""`isams-sync backfill`: a school's whole iSAMS export queued, with progress bars and a
plain-words result (exit 3 when the removals guard stopped it)."""

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
    from consumers.settings import SchoolsFile, Settings

GUARD_HELD = 3


def register(cli: typer.Typer) -> None:
    """Attach the command to the main CLI."""
    cli.command()(backfill)


def backfill(
    school: SchoolOption,
    dry_run: Annotated[bool, typer.Option(help="Read iSAMS and report; queue nothing.")] = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Queue every iSAMS record of a school for sync (no iSAMS lock, no downtime)."""
    settings, schools = checked_settings()
    known_school("backfill", schools, school)
    raise typer.Exit(asyncio.run(_run(settings, schools, school, dry_run, force, as_json)))


async def _run(
    settings: Settings,
    schools: SchoolsFile,
    school_id: str,
    dry_run: bool,
    force: bool,
    as_json: bool = False,
) -> int:
    from app.cli.plan_view import backfill_json, backfill_plan_view, print_json
    from consumers.bootstrap import open_services
    from consumers.capture.backfill import run_backfill

    console = Console(stderr=True)
    async with open_services(
        settings, schools, client_id="isams-sync-backfill", publish_timeout=30.0
    ) as services:
        await services.ledger.create_schema()
        if not dry_run:
            await services.start_publisher()
            if not await services.publisher.ping():
                console.print(f"[red]Kafka does not answer at {settings.kafka}[/red]")
                return 1
        ports = services.ports_of(school_id)
        assert ports is not None  # checked by known_school
        with progress_bars(console, quiet=as_json, other="changes queued") as progress:
            report = await run_backfill(
                ports,
                services.ledger,
                None if dry_run else services.publisher,
                services.topics,
                dry_run=dry_run,
                force=force,
                progress=progress,
            )
    if as_json:
        print_json(Console(), backfill_json(report))
    elif dry_run:
        Console().print(backfill_plan_view(report))
    else:
        console.print(report.summary())
    return 0 if report.decision.allowed else GUARD_HELD
