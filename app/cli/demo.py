"""`isams-sync demo`: what `make demo` runs, from a source checkout.

The simulators and the demo live in `sim/`, which the production image does not ship and
this package never imports: the command runs the demo's own program (`python -m sim.demo`)
and says plainly when there is none.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from typing import Annotated

import typer

from app.cli.common import refuse

DEMO_MODULE = "sim.demo"


def register(cli: typer.Typer) -> None:
    """Attach the command to the main CLI."""
    cli.command()(demo)


def demo(
    students: Annotated[int, typer.Option(help="Size of the generated school.")] = 600,
    edits: Annotated[int, typer.Option(help="Live edits after the initial sync.")] = 200,
    edits_per_second: Annotated[float, typer.Option(help="Pace of the live edits.")] = 20.0,
) -> None:
    """Run the whole local stack and visibly sync a generated school."""
    if importlib.util.find_spec("sim") is None:
        refuse("demo", "the demo needs a source checkout (sim/ is not part of this install)")
    command = [sys.executable, "-m", DEMO_MODULE, "--students", str(students)]
    command += ["--edits", str(edits), "--edits-per-second", str(edits_per_second)]
    raise typer.Exit(subprocess.run(command, check=False).returncode)  # noqa: S603  (fixed argv)
