"""`isams-sync dlq list|replay`: what support staff run to see and retry parked changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.cli.common import checked_settings
from consumers.adapters.kafka.dlq import DeadLetter, DeadLetterFilter
from consumers.ops.dlq import list_letters, replay_letters

dlq = typer.Typer(help="See and replay changes parked in the dead-letter queue.")

School = Annotated[str | None, typer.Option(help="Only this school.")]
Record = Annotated[
    str | None, typer.Option(help="Only this record, as school:kind:id (the Kafka key).")
]
Since = Annotated[datetime | None, typer.Option(help="Only letters parked at or after this time.")]
Until = Annotated[datetime | None, typer.Option(help="Only letters parked at or before this time.")]


def _filter(
    school: str | None, record: str | None, since: datetime | None, until: datetime | None
) -> DeadLetterFilter:
    def aware(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    return DeadLetterFilter(school=school, key=record, since=aware(since), until=aware(until))


def render(letters: list[DeadLetter]) -> Table:
    """Show dead letters as a table: ids and reasons, never record contents."""
    table = Table(title=f"{len(letters)} parked change(s)")
    for column in ("position", "key", "type", "error", "attempts", "parked at", "detail"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            letter.position,
            letter.key,
            letter.type or "?",
            letter.error_class,
            str(letter.attempts),
            letter.failed_at.isoformat(timespec="seconds") if letter.failed_at else "?",
            letter.error_detail[:120],
        )
    return table


def register(cli: typer.Typer) -> None:
    """Attach the `dlq` commands to the main CLI."""

    @dlq.command("list")
    def list_command(
        school: School = None, record: Record = None, since: Since = None, until: Until = None
    ) -> None:
        """List parked changes that were not replayed yet."""
        settings, _ = checked_settings()
        selection = _filter(school, record, since, until)
        letters = asyncio.run(list_letters(settings.kafka, settings.topics, selection))
        Console().print(render(letters))

    @dlq.command("replay")
    def replay_command(
        school: School = None,
        record: Record = None,
        since: Since = None,
        until: Until = None,
        dry_run: Annotated[bool, typer.Option(help="Only show what would be replayed.")] = False,
    ) -> None:
        """Send parked changes back to isams.changes; each is replayed once."""
        settings, _ = checked_settings()
        selection = _filter(school, record, since, until)
        letters, replayed = asyncio.run(
            replay_letters(settings.kafka, settings.topics, selection, dry_run=dry_run)
        )
        console = Console()
        console.print(render(letters))
        console.print("dry run: nothing replayed" if dry_run else f"replayed {replayed} change(s)")

    cli.add_typer(dlq, name="dlq")
