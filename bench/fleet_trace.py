"""`isams-sync consume`, timing where each change's time goes (for `bench.fleet --trace`).

    BENCH_FLEET_TRACE=/tmp/trace.jsonl .venv/bin/python -m bench.fleet_trace consume ...

The real CLI, with a few methods of the consume loop wrapped (from here: the product's code
is unchanged) so that every change of `isams.changes` and its retry topic writes one JSON
line when it is finished:
- `key`, `topic`, `offset`;
- `dispatched`: the wall time its task first ran (the record fetched and handed out);
- `started`: when it held its school's slot, its topic's slot and its key's lock;
- `done`: when it was applied, parked or dead-lettered;
- `budget`: seconds waiting for the school's `RequestBudget` (429 pauses included);
- `http`: seconds in ManageBac+ calls once granted; `ledger`: seconds in ledger calls;
- `calls`: ManageBac+ calls made.
The wrappers cost a few microseconds a change; the figures without `--trace` are the
plain CLI's.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any, ParamSpec, TextIO, TypeVar

import orjson

from consumers.adapters.budget import RequestBudget
from consumers.adapters.ledger import Ledger
from consumers.adapters.managebac import ManagebacClient
from consumers.runner import ChangeRunner

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Trace:
    """Where one change's time went."""

    key: str
    topic: str
    offset: int
    dispatched: float
    started: float = 0.0
    done: float = 0.0
    budget: float = 0.0
    http: float = 0.0
    ledger: float = 0.0
    calls: int = 0


_current: ContextVar[Trace | None] = ContextVar("bench_fleet_trace", default=None)
_out: list[TextIO] = []


def _write(trace: Trace) -> None:
    if _out:
        _out[0].write(orjson.dumps(asdict(trace)).decode() + "\n")


def _timed(
    method: Callable[P, Coroutine[Any, Any, T]], add: Callable[[Trace, float], None]
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Wrap an async method: add the seconds it took to the current change's trace."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        start = time.monotonic()
        try:
            return await method(*args, **kwargs)
        finally:
            trace = _current.get()
            if trace is not None:
                add(trace, time.monotonic() - start)

    return wrapper


def _add_budget(trace: Trace, seconds: float) -> None:
    trace.budget += seconds
    trace.http -= seconds  # the budget wait happens inside the call; counted once


def _add_call(trace: Trace, seconds: float) -> None:
    trace.http += seconds
    trace.calls += 1


def _add_ledger(trace: Trace, seconds: float) -> None:
    trace.ledger += seconds


def install() -> None:
    """Wrap the consume loop's methods (once, before the CLI starts)."""
    run = ChangeRunner._run
    handle = ChangeRunner._handle

    async def traced_run(self: ChangeRunner, partition: Any, record: Any, school: str) -> None:
        key = (record.key or b"").decode("utf-8", "replace")
        trace = Trace(key, record.topic, record.offset, time.time())
        _current.set(trace)  # this task's own context: its change only
        try:
            await run(self, partition, record, school)
        finally:
            trace.done = time.time()
            _write(trace)

    async def traced_handle(self: ChangeRunner, record: Any) -> None:
        trace = _current.get()
        if trace is not None:
            trace.started = time.time()
        await handle(self, record)

    ChangeRunner._run = traced_run  # type: ignore[method-assign]
    ChangeRunner._handle = traced_handle  # type: ignore[method-assign]
    RequestBudget.acquire = _timed(RequestBudget.acquire, _add_budget)  # type: ignore[method-assign]
    ManagebacClient._call_once = _timed(ManagebacClient._call_once, _add_call)  # type: ignore[method-assign]
    for name in ("get", "put", "records", "related", "of_person"):
        setattr(Ledger, name, _timed(getattr(Ledger, name), _add_ledger))


def main() -> None:
    path = os.environ.get("BENCH_FLEET_TRACE")
    if path:
        _out.append(open(path, "a", buffering=1, encoding="utf-8"))  # noqa: SIM115  (process-long)
    install()
    from app.cli import main as cli

    sys.argv = ["isams-sync", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
