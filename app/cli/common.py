"""What every command shares: checked settings, and refusing bad arguments with exit 2."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from consumers.domain.guard import DEFAULT_THRESHOLD
from consumers.settings import (
    ConfigError,
    SchoolsFile,
    Settings,
    UnknownSchoolError,
    load_schools,
    load_settings,
)

SchoolOption = Annotated[str, typer.Option("--school", help="School id from the schools file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
ForceOption = Annotated[
    bool,
    typer.Option(
        help=f"Archive even if more than {DEFAULT_THRESHOLD:.0%} of the synced users would go "
        "(the removals guard)."
    ),
]


def checked_settings() -> tuple[Settings, SchoolsFile]:
    """Read the environment and the schools file; a bad one stops with its message (exit 2)."""
    try:
        settings = load_settings()
        schools = load_schools(settings.schools_file)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings, schools


def refuse(command: str, message: str) -> NoReturn:
    """Stop a command whose arguments name nothing that exists (exit 2)."""
    typer.echo(f"{command}: {message}", err=True)
    raise typer.Exit(2)


def known_school(command: str, schools: SchoolsFile, school_id: str) -> None:
    """Refuse a school id the schools file does not have, naming the ones it has."""
    try:
        schools.school(school_id)
    except UnknownSchoolError as exc:
        refuse(command, str(exc))


# What the long commands' progress bars are called, by the name the work reports.
PROGRESS_LABELS = {
    "students": "iSAMS students",
    "alumni": "iSAMS alumni",
    "staff": "iSAMS staff",
    "contacts": "iSAMS contacts",
    "managebac students": "ManageBac+ students",
    "managebac parents": "ManageBac+ parents",
    "managebac teachers": "ManageBac+ teachers",
}


@contextmanager
def progress_bars(
    console: Console, *, quiet: bool = False, other: str | None = None
) -> Iterator[Callable[[str, int, int], None]]:
    """Show one bar per kind of work (`progress(name, done, total)`; total 0: unknown),
    labelled from PROGRESS_LABELS, else `other`, else the name; `quiet` shows none
    (for `--json`)."""
    with Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=quiet,
        transient=quiet,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                label = PROGRESS_LABELS.get(name, other if other is not None else name)
                tasks[name] = bars.add_task(label, total=None)
            bars.update(tasks[name], completed=done, total=total or None)

        yield progress
