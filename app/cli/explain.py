"""`isams-sync explain`: why one record is, or is not, in ManageBac+."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.cli.common import SchoolOption, checked_settings, refuse


def register(cli: typer.Typer) -> None:
    """Attach the command to the main CLI."""
    cli.command()(explain)


def explain(
    school: SchoolOption,
    kind: Annotated[str, typer.Argument(help="student, contact, staff, parent, or poll")],
    isams_id: Annotated[
        str,
        typer.Argument(
            help="The iSAMS id (a student's schoolId; a parent's personGuid); for poll, "
            "the list: students, alumni, contacts or employees."
        ),
    ],
) -> None:
    """Say why a record is, or is not, in ManageBac+ (or how the poller stands with a list)."""
    from consumers.bootstrap import open_services
    from consumers.ops.explain import ExplainRequestError, check_explain_request, explain_record

    settings, schools = checked_settings()
    try:
        check_explain_request(schools, school, kind, isams_id)
    except ExplainRequestError as exc:
        refuse("explain", str(exc))

    async def run() -> str:
        async with open_services(settings, schools) as services:
            return await explain_record(services.ledger, school, kind, isams_id)

    typer.echo(asyncio.run(run()))
