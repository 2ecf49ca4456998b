"""`isams-sync backfill`: the backfill with progress bars and a plain-words result."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from app.publisher import KafkaPublisher
from app.settings import Settings, load_schools
from consumers.adapters.http import new_http_client
from consumers.adapters.ledger import Ledger
from consumers.adapters.managebac import RetryPolicy
from consumers.backfill import run_backfill
from consumers.bootstrap import school_ports


async def run_backfill_command(
    settings: Settings, school_id: str, dry_run: bool, force: bool
) -> int:
    """Run one school's backfill; return the exit code (3 when the guard stopped it)."""
    console = Console(stderr=True)
    schools = load_schools(settings.schools_file).by_id()
    if school_id not in schools:
        console.print(f"[red]No school {school_id!r} in {settings.schools_file}[/red]")
        return 2
    ledger = Ledger.from_url(settings.database_url)
    publisher = None if dry_run else KafkaPublisher(settings.kafka, timeout=30.0)
    try:
        await ledger.create_schema()
        if publisher is not None:
            await publisher.start()
            if not await publisher.ping():
                console.print(f"[red]Kafka does not answer at {settings.kafka}[/red]")
                return 1
        async with new_http_client(30.0) as http:
            ports = school_ports(schools[school_id], http, RetryPolicy())
            with Progress(
                TextColumn("{task.description:<18}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
            ) as bars:
                tasks: dict[str, TaskID] = {}

                def progress(name: str, done: int, total: int) -> None:
                    if name not in tasks:
                        label = {"students": "iSAMS students", "staff": "iSAMS staff"}
                        tasks[name] = bars.add_task(label.get(name, "changes queued"), total=None)
                    bars.update(tasks[name], completed=done, total=total or None)

                report = await run_backfill(
                    ports,
                    ledger,
                    publisher,
                    settings.topics,
                    dry_run=dry_run,
                    force=force,
                    progress=progress,
                )
    finally:
        if publisher is not None:
            await publisher.stop()
        await ledger.close()
    console.print(report.summary())
    return 0 if report.decision.allowed else 3
