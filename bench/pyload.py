"""A lean HTTP/1.1 load generator in its own process: the fallback when `wrk` is missing.

Keeps `--connections` keep-alive connections busy with pre-signed requests from a pool file
(bench/pool.py), one request in flight per connection, for `--duration` seconds, and prints
one JSON line with the same fields as wrk_pool.lua. Raw asyncio protocols on uvloop, no
HTTP library: the client must cost the machine as little as possible.

    python -m bench.pyload --port 8080 --pool pool.bin --connections 32 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from bench.pool import read_pool


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending the next request as soon as the answer is whole."""

    def __init__(self, load: _Load, offset: int) -> None:
        self._load = load
        self._next = offset
        self._buffer = bytearray()
        self._sent_at = 0
        self._transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        if self._load.stopping:
            self._transport.close()
            return
        pool = self._load.pool
        self._next = (self._next + 1) % len(pool)
        self._sent_at = time.perf_counter_ns()
        self._transport.write(pool[self._next])

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        size = end + 4 + _content_length(head)
        if len(self._buffer) < size:
            return
        self._load.record(time.perf_counter_ns() - self._sent_at, head[9:12], size)
        del self._buffer[:size]
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._load.stopping:
            self._load.errors_read += 1
        if not self.closed.done():
            self.closed.set_result(None)


def _content_length(head: bytes) -> int:
    """Return the Content-Length of a lower-cased response head (0 when absent)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name == b"content-length":
            return int(value)
    return 0


class _Load:
    """Shared counters of one run."""

    def __init__(self, pool: list[bytes]) -> None:
        self.pool = pool
        self.stopping = False
        self.latencies_ns: list[int] = []
        self.errors_status = 0
        self.errors_read = 0
        self.bytes = 0

    def record(self, latency_ns: int, status: bytes, size: int) -> None:
        self.latencies_ns.append(latency_ns)
        self.bytes += size
        if not status.startswith(b"2"):
            self.errors_status += 1


async def run(
    host: str, port: int, pool: list[bytes], connections: int, duration: float
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    load = _Load(pool)
    started = time.perf_counter()
    protocols = []
    for number in range(connections):
        _, protocol = await loop.create_connection(
            functools.partial(_Connection, load, number * 97), host, port
        )
        protocols.append(protocol)
    await asyncio.sleep(duration)
    load.stopping = True
    elapsed = time.perf_counter() - started
    done = len(load.latencies_ns)
    await asyncio.wait([p.closed for p in protocols], timeout=5)
    latencies = sorted(load.latencies_ns[:done])
    cuts = (
        statistics.quantiles(latencies, n=100, method="inclusive")
        if len(latencies) > 1
        else [0] * 99
    )
    return {
        "requests": done,
        "duration_us": int(elapsed * 1e6),
        "bytes": load.bytes,
        "p50_us": int(cuts[49] / 1000),
        "p90_us": int(cuts[89] / 1000),
        "p99_us": int(cuts[98] / 1000),
        "max_us": int(latencies[-1] / 1000) if latencies else 0,
        "mean_us": statistics.fmean(latencies) / 1000 if latencies else 0.0,
        "errors_connect": 0,
        "errors_read": load.errors_read,
        "errors_write": 0,
        "errors_status": load.errors_status,
        "errors_timeout": 0,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:  # plain asyncio works, it only costs more CPU per request
        runner = asyncio.run
    else:
        runner = uvloop.run
    figures = runner(
        run(args.host, args.port, read_pool(args.pool), args.connections, args.duration)
    )
    print("BENCH-JSON " + json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
