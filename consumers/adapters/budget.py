"""One school's ManageBac+ request budget in this process: a token bucket with two lanes.

ManageBac+ limits requests per client address and token (docs/reference/managebac-notes.md),
so a school's `max_requests_per_second` is its budget for the whole deployment
(docs/design.md §4). Each process holds one `RequestBudget` per school and runs at its
share of the budget (`set_share`: the consumer's part of the partitions, recomputed on
every rebalance), so N replicas together stay within it.

Two lanes, one bucket: a live change's request is granted before any waiting bulk one (a
first sync), so live edits keep their latency while a whole school is being backfilled.
A 429 pauses the bucket until the time ManageBac+ named (`pause_until`): every request of
the school waits, none of another school's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar

MIN_RATE = 0.05  # requests/s: a share never starves a school completely
# ManageBac+ counts requests in its own windows, on its own clock, over every replica: part
# of the budget is left unused as headroom, so evenly spaced requests do not spill over a
# window's limit. Replicas sharing a school leave a tenth (their requests interleave, and
# each may catch up a little: tests/integration/test_shared_budget.py measures it); one
# process holding all of the school's work leaves a twentieth (bench.full_sync measures it).
HEADROOM = 0.9
HEADROOM_ALONE = 0.95
# A grant that comes late (the event loop was busy) may be made up by the next one coming
# that much sooner, up to a quarter of a request: without it each late wake-up is lost for
# good (bench.full_sync: 42.8/s of 45). A window then holds at most rate + 1.25 requests.
CATCH_UP = 0.25

# Set by the consume loop for a record of the bulk lane; read where a request is made.
bulk_lane: ContextVar[bool] = ContextVar("bulk_lane", default=False)


class RequestBudget:
    """Grant requests at `rate`/s, evenly spaced (no bursts), live ones first."""

    def __init__(self, budget: float, clock: Callable[[], float] = time.monotonic) -> None:
        if budget <= 0:
            raise ValueError("a request budget is a positive number of requests per second")
        self._budget = budget
        self._rate = budget * HEADROOM_ALONE
        self._clock = clock
        self._tokens = 1.0
        self._stamp = clock()
        self._paused_until = 0.0
        self._live: deque[asyncio.Future[None]] = deque()
        self._bulk: deque[asyncio.Future[None]] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def rate(self) -> float:
        """Requests per second this process may send now."""
        return self._rate

    @property
    def paused_for(self) -> float:
        """Seconds the school's requests still wait after a 429 (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def set_share(self, share: float) -> None:
        """Run at `share` (0..1) of the school's budget: this process's part of the work."""
        self._refill()
        share = min(1.0, max(0.0, share))
        headroom = HEADROOM_ALONE if share >= 1.0 else HEADROOM
        self._rate = max(MIN_RATE, self._budget * headroom * share)
        self._tokens = min(self._tokens, self._capacity)
        self._wake.set()

    def pause_until(self, moment: float) -> None:
        """Hold every request until `moment` (monotonic), as a 429 asked."""
        self._paused_until = max(self._paused_until, moment)
        # The server's window starts again after the pause: one request then, the rest at
        # the rate.
        self._tokens = min(self._tokens, 1.0)
        self._stamp = max(self._stamp, self._paused_until)
        self._wake.set()

    async def acquire(self) -> None:
        """Wait for a request's turn: live before bulk (`bulk_lane`), then first come."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._bulk if bulk_lane.get() else self._live).append(waiter)
        self._wake.set()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._grant(), name="managebac-budget")
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._tokens += 1.0  # granted just as it was cancelled: give it back
            raise

    @property
    def _capacity(self) -> float:
        # No bursts: ManageBac+ counts requests per second per client address, over every
        # replica, so a burst of one replica's idle time would spill over the others' share.
        # Only a late grant's lateness (CATCH_UP) is kept.
        return 1.0 + CATCH_UP

    def _refill(self) -> None:
        now = self._clock()
        if now > self._stamp:
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now

    def _next_waiter(self) -> asyncio.Future[None] | None:
        for queue in (self._live, self._bulk):
            while queue and queue[0].done():  # cancelled while waiting
                queue.popleft()
            if queue:
                return queue.popleft()
        return None

    async def _grant(self) -> None:
        """Hand out tokens while anyone waits; sleep until the next token or a change."""
        while self._live or self._bulk:
            self._wake.clear()
            pause = self._paused_until - self._clock()
            if pause <= 0:
                self._refill()
                if self._tokens >= 1.0:
                    waiter = self._next_waiter()
                    if waiter is not None:
                        self._tokens -= 1.0
                        waiter.set_result(None)
                    continue
                pause = (1.0 - self._tokens) / self._rate
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=pause)
