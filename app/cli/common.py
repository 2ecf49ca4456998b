"""What every command shares: checked settings, and refusing bad arguments with exit 2."""

from __future__ import annotations

from typing import NoReturn

import typer

from consumers.settings import (
    ConfigError,
    SchoolsFile,
    Settings,
    UnknownSchoolError,
    load_schools,
    load_settings,
)


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
