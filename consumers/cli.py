"""The `isams-sync` command (DESIGN §2.4). Each command only translates arguments into a
call; the work lives in the modules it imports (lazily, so `--help` stays fast)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.gc_tuning import prepare_gc_for_serving
from app.settings import ConfigError, Settings, load_schools, load_settings
from consumers import dlq_commands

cli = typer.Typer(
    help="Sync iSAMS students, parents and staff to ManageBac+ within seconds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _settings() -> Settings:
    try:
        settings = load_settings()
        # Read the schools file now so a bad one stops start-up with its message.
        load_schools(settings.schools_file)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Run the webhook ingest, the admin API and /healthz, /readyz, /metrics."""
    import uvicorn

    from app.logs import configure_logging
    from app.main import create_app

    settings = _settings()
    configure_logging(settings.log_level)
    app = create_app(settings, load_schools(settings.schools_file))
    prepare_gc_for_serving()
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


@cli.command()
def consume(
    health_port: Annotated[
        int, typer.Option(help="Port for /healthz, /readyz and /metrics.")
    ] = 8090,
    health_host: Annotated[str, typer.Option(help="Interface for the health port.")] = "0.0.0.0",  # noqa: S104  (probes come from the cluster)
) -> None:
    """Run the workers: take changes off Kafka and apply them to ManageBac+."""
    from app.logs import configure_logging
    from consumers.worker import run_worker

    settings = _settings()
    configure_logging(settings.log_level)
    prepare_gc_for_serving()
    asyncio.run(run_worker(settings, health_host, health_port))


@cli.command()
def explain(
    school: Annotated[str, typer.Option(help="School id from the schools file.")],
    kind: Annotated[str, typer.Argument(help="student, contact, staff or parent")],
    isams_id: Annotated[
        str,
        typer.Argument(help="The iSAMS id (a student's schoolId; a parent's personGuid)."),
    ],
) -> None:
    """Say why a record is, or is not, in ManageBac+."""
    from consumers.explain import ExplainRequestError, check_explain_request, explain_record

    settings = _settings()
    schools = load_schools(settings.schools_file).by_id()
    try:
        check_explain_request(schools, school, kind)
    except ExplainRequestError as exc:
        typer.echo(f"explain: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(asyncio.run(explain_record(settings, school, kind, isams_id)))


@cli.command()
def backfill(
    school: Annotated[str, typer.Option(help="School id from the schools file.")],
    dry_run: Annotated[bool, typer.Option(help="Read iSAMS and report; queue nothing.")] = False,
    force: Annotated[
        bool, typer.Option(help="Go ahead even if more than 10% of synced users would go.")
    ] = False,
) -> None:
    """Queue every iSAMS record of a school for sync (no iSAMS lock, no downtime)."""
    from consumers.backfill_command import run_backfill_command

    settings = _settings()
    raise typer.Exit(asyncio.run(run_backfill_command(settings, school, dry_run, force)))


@cli.command()
def demo(
    students: Annotated[int, typer.Option(help="Size of the generated school.")] = 600,
    edits: Annotated[int, typer.Option(help="Live edits after the initial sync.")] = 200,
    edits_per_second: Annotated[float, typer.Option(help="Pace of the live edits.")] = 20.0,
) -> None:
    """Run the whole local stack and visibly sync a generated school."""
    from sim.demo import run_demo

    raise typer.Exit(asyncio.run(run_demo(students=students, edits=edits, rate=edits_per_second)))


dlq_commands.register(cli, _settings)


def main() -> None:
    """Entry point of the console script."""
    cli()


if __name__ == "__main__":
    main()
