"""Run a load generator against one server and return what it measured.

`wrk` (C, epoll) is the default: it costs the machine ~25 µs of CPU per request against
~35 µs for the lean Python generator (`bench.pyload`), and neither needs more than a fifth
of one core at the baseline's rate. Both replay the same pre-signed pool file, keep
`connections` keep-alive connections busy with one request each, and print one JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

WRK_SCRIPT = Path(__file__).with_name("wrk_pool.lua")
MARKER = "BENCH-JSON "

Generator = Literal["wrk", "python"]


class LoadError(Exception):
    """Raised when the load generator failed or reported no requests."""


@dataclass(frozen=True)
class LoadResult:
    """What one load-generator run measured (latencies in milliseconds)."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    failed: int  # socket errors and non-2xx answers

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def find_wrk(install: bool) -> str | None:
    """Return wrk's path; when missing and `install`, try Debian's package (as root)."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("wrk is missing: apt-get install -y wrk …", flush=True)
    if _quietly("apt-get", "install", "-y", "-q", "wrk") != 0:
        _quietly("apt-get", "update", "-q")
        _quietly("apt-get", "install", "-y", "-q", "wrk")
    return shutil.which("wrk")


def _quietly(*command: str) -> int:
    return subprocess.run(  # noqa: S603  (fixed commands)
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    ).returncode


def run_load(
    generator: Generator,
    *,
    port: int,
    pool: Path,
    connections: int,
    seconds: float,
    wrk: str | None = None,
) -> LoadResult:
    """Load `127.0.0.1:port` for `seconds`; return the figures."""
    if generator == "wrk":
        if wrk is None:
            raise LoadError("wrk is not installed")
        command = [
            wrk,
            "--threads=1",  # one thread copes with 32 connections and keeps to one core
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            "--timeout=10s",
            f"--script={WRK_SCRIPT}",
            f"http://127.0.0.1:{port}",
            "--",
            str(pool),
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "bench.pyload",
            f"--port={port}",
            f"--pool={pool}",
            f"--connections={connections}",
            f"--duration={seconds}",
        ]
    result = subprocess.run(  # noqa: S603  (fixed commands)
        command, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    if result.returncode != 0 or not lines:
        raise LoadError(f"{command[0]} failed ({result.returncode}): {result.stderr[-500:]}")
    figures = json.loads(lines[-1].removeprefix(MARKER))
    if figures["requests"] == 0:
        raise LoadError(f"{command[0]} completed no request")
    failed = sum(int(figures[k]) for k in figures if k.startswith("errors_"))
    return LoadResult(
        requests=int(figures["requests"]),
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        failed=failed,
    )
