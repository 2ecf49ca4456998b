"""CPU accounting for one measured run: the server, the load generator, Kafka, and the rest.

On a 2-core machine a benchmark is only as good as its knowledge of who used the CPU. Each
run records the CPU seconds of the server process and of the Kafka broker (from /proc), of
the load generator (the children's rusage), and of the whole machine (/proc/stat), so the
report can show that the server, not the client, was the bottleneck, and how much other
work (another test run, say) shared the machine.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Return the CPU seconds (user + system, all threads) that `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def machine_busy() -> float:
    """Return the CPU seconds all cores have spent busy (not idle, not iowait) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / _TICKS


def children_cpu() -> float:
    """Return the CPU seconds used by this process's waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuSnapshot:
    """Cumulative CPU seconds at one moment."""

    server: float
    kafka: float
    client: float
    machine: float


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds used during one run, by whom."""

    server: float
    kafka: float
    client: float
    other: float  # everything else on the machine


def snapshot(server_pid: int, kafka_pid: int | None) -> CpuSnapshot:
    return CpuSnapshot(
        server=process_cpu(server_pid),
        kafka=_safe_cpu(kafka_pid),
        client=children_cpu(),
        machine=machine_busy(),
    )


def used(before: CpuSnapshot, after: CpuSnapshot) -> CpuUse:
    server = after.server - before.server
    kafka = after.kafka - before.kafka
    client = after.client - before.client
    machine = after.machine - before.machine
    return CpuUse(server, kafka, client, max(0.0, machine - server - kafka - client))


def _safe_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        return process_cpu(pid)
    except OSError:  # the broker went away: its share is then unknown, counted as 0
        return 0.0
