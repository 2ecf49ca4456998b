"""The long-running processes: `serve` (webhooks, admin API), `consume` (the workers) and
`poll` (change capture from the iSAMS REST API)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.cli.common import checked_settings, known_school, refuse

HealthPort = Annotated[int, typer.Option(help="Port for /healthz, /readyz and /metrics.")]
HealthHost = Annotated[str, typer.Option(help="Interface for the health port.")]


def register(cli: typer.Typer) -> None:
    """Attach the commands to the main CLI."""
    cli.command()(serve)
    cli.command()(consume)
    cli.command()(poll)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Run the webhook ingest, the admin API and /healthz, /readyz, /metrics."""
    import uvicorn

    from app.main import create_app
    from consumers.bootstrap import open_services
    from consumers.gc_tuning import prepare_gc_for_serving
    from consumers.logs import configure_logging

    settings, schools = checked_settings()
    configure_logging(settings.log_level)

    async def run() -> None:
        async with open_services(settings, schools, client_id="isams-sync-ingest") as services:
            config = uvicorn.Config(
                create_app(services), host=host, port=port, log_config=None, access_log=False
            )
            prepare_gc_for_serving()
            await uvicorn.Server(config).serve()

    asyncio.run(run())


def consume(
    health_port: HealthPort = 8090,
    health_host: HealthHost = "0.0.0.0",  # noqa: S104  (probes come from the cluster)
) -> None:
    """Run the workers: take changes off Kafka and apply them to ManageBac+."""
    from consumers.consume import run_worker
    from consumers.gc_tuning import prepare_gc_for_serving
    from consumers.logs import configure_logging

    settings, schools = checked_settings()
    configure_logging(settings.log_level)
    prepare_gc_for_serving()
    asyncio.run(run_worker(settings, schools, health_host, health_port))


def poll(
    school: Annotated[
        list[str] | None,
        typer.Option(
            help="Only this school (repeat for several); default: every school "
            "with isams.poll_interval_s > 0."
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option(help="One cycle per school, then exit (0 ran, 3 held, 1 errors).")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(help="Publish removals the guard holds, once (needs --school)."),
    ] = False,
    health_port: HealthPort = 8091,
    health_host: HealthHost = "0.0.0.0",  # noqa: S104  (probes come from the cluster)
) -> None:
    """Poll iSAMS for every change and publish it (no webhooks needed)."""
    from consumers.logs import configure_logging
    from consumers.poller import PollRequestError, run_poller, schools_to_poll

    settings, schools = checked_settings()
    named = school or []
    for school_id in named:
        known_school("poll", schools, school_id)
    if force and not named:
        refuse("poll", "--force releases held removals of the schools named with --school only")
    try:
        chosen = schools_to_poll(schools, named, once)
    except PollRequestError as exc:
        refuse("poll", str(exc))
    configure_logging(settings.log_level)
    raise typer.Exit(
        asyncio.run(
            run_poller(
                settings,
                schools,
                chosen,
                once=once,
                force=force,
                health_host=health_host,
                health_port=health_port,
            )
        )
    )
