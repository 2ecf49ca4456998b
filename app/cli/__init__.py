"""The `isams-sync` command (docs/design.md §2.4): one Typer app, one module per group of
commands. Each command only translates arguments into a call on the services built by the
composition root; the work lives in `consumers` (imported lazily, so `--help` stays fast).
"""

from __future__ import annotations

import typer

from app.cli import backfill, demo, dlq, explain, processes, reconcile

cli = typer.Typer(
    help="Sync iSAMS students, parents and staff to ManageBac+ within seconds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for commands in (processes, explain, backfill, reconcile, dlq, demo):
    commands.register(cli)


def main() -> None:
    """Entry point of the console script."""
    cli()
