"""The long-running processes: `serve` (webhooks, admin API) and `consume` (the workers)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.cli.common import checked_settings


def register(cli: typer.Typer) -> None:
    """Attach the commands to the main CLI."""
    cli.command()(serve)
    cli.command()(consume)


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
    health_port: Annotated[
        int, typer.Option(help="Port for /healthz, /readyz and /metrics.")
    ] = 8090,
    health_host: Annotated[str, typer.Option(help="Interface for the health port.")] = "0.0.0.0",  # noqa: S104  (probes come from the cluster)
) -> None:
    """Run the workers: take changes off Kafka and apply them to ManageBac+."""
    from consumers.consume import run_worker
    from consumers.gc_tuning import prepare_gc_for_serving
    from consumers.logs import configure_logging

    settings, schools = checked_settings()
    configure_logging(settings.log_level)
    prepare_gc_for_serving()
    asyncio.run(run_worker(settings, schools, health_host, health_port))
