"""Start and stop the local stack's processes: Kafka, the ManageBac+ simulator, `serve` and
`consume`. Used by the demo and by end-to-end tests, so both run the same thing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = REPO / "scripts" / "kafka.sh"


class StackError(Exception):
    """A part of the local stack did not start."""


def kafka_answers() -> bool:
    """Tell whether a local broker answers a metadata request."""
    result = subprocess.run(  # noqa: S603  (our own script, fixed arguments)
        [str(KAFKA_SCRIPT), "status"], capture_output=True, check=False
    )
    return result.returncode == 0


def start_kafka() -> bool:
    """Start the local broker unless one answers; return whether we started it."""
    if kafka_answers():
        return False
    result = subprocess.run([str(KAFKA_SCRIPT), "start"], check=False)  # noqa: S603
    if result.returncode != 0:
        raise StackError("the local Kafka broker did not start (see var/kafka/broker.log)")
    return True


def stop_kafka() -> None:
    """Stop the local broker started by `start_kafka`."""
    subprocess.run([str(KAFKA_SCRIPT), "stop"], check=False)  # noqa: S603


@dataclass
class ManagedProcess:
    """A child process with its log file; stopped with SIGTERM, then SIGKILL."""

    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603  (our own commands)
            self.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=REPO,
        )
        log.close()

    def stop(self, timeout: float = 20.0) -> int | None:
        """Send SIGTERM, wait, then SIGKILL; return the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def python_module(module: str, *args: str) -> list[str]:
    """Return the command that runs a module with this interpreter."""
    return [sys.executable, "-m", module, *args]


def sync_command(*args: str) -> list[str]:
    """Return the command that runs `isams-sync` with this interpreter."""
    return python_module("app.cli", *args)


async def wait_ready(url: str, process: ManagedProcess, timeout: float = 60.0) -> None:
    """Poll `url` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if not process.alive():
                raise StackError(f"{process.name} exited:\n{process.log_tail()}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise StackError(
        f"{process.name} not ready at {url} after {timeout:.0f}s:\n{process.log_tail()}"
    )
