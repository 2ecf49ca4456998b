"""A school's request budget: its rate, its share among replicas, live before bulk, 429 pauses."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from consumers.adapters.budget import HEADROOM, MIN_RATE, RequestBudget, bulk_lane


async def grant_times(budget: RequestBudget, count: int, bulk: bool = False) -> list[float]:
    """Acquire `count` requests one after another; return when each was granted."""
    token = bulk_lane.set(bulk)
    try:
        started = time.monotonic()
        granted = []
        for _ in range(count):
            await budget.acquire()
            granted.append(time.monotonic() - started)
        return granted
    finally:
        bulk_lane.reset(token)


async def test_requests_go_at_the_budgets_rate_less_the_headroom() -> None:
    budget = RequestBudget(20.0)
    assert budget.rate == pytest.approx(20.0 * HEADROOM)
    granted = await grant_times(budget, 11)
    # The first goes at once; the other ten evenly spaced at 18/s: about 0.56 s.
    assert 0.45 <= granted[-1] <= 0.85
    gaps = [later - earlier for earlier, later in itertools.pairwise(granted)]
    assert min(gaps) > 0.03  # no burst: ManageBac+ counts per second over every replica


async def test_after_an_idle_while_requests_are_spaced_not_sent_in_a_crowd() -> None:
    # ManageBac+ counts fixed one-second windows: a second saved up and sent at once, plus
    # the next second's refill, would land up to twice the limit in one window.
    budget = RequestBudget(20.0)
    await asyncio.sleep(0.3)  # idle: at most one request is saved up meanwhile
    granted = await grant_times(budget, 6)
    assert granted[0] <= 0.05  # the first goes at once
    assert granted[-1] >= 0.2  # the other five evenly spaced, none in a crowd


async def test_a_share_of_the_budget_is_that_share_of_the_rate() -> None:
    budget = RequestBudget(40.0)
    budget.set_share(0.25)  # one replica of four
    assert budget.rate == pytest.approx(10.0 * HEADROOM)
    granted = await grant_times(budget, 6)
    assert 0.45 <= granted[-1] <= 0.85  # five more at 9/s


def test_a_share_never_starves_the_school() -> None:
    budget = RequestBudget(10.0)
    budget.set_share(0.0)
    assert budget.rate == MIN_RATE
    budget.set_share(3.0)  # more than all of it: the whole budget, no more
    assert budget.rate == pytest.approx(10.0 * HEADROOM)


async def test_live_requests_are_granted_before_waiting_bulk_ones() -> None:
    budget = RequestBudget(20.0)
    order: list[str] = []

    async def one(name: str, bulk: bool) -> None:
        token = bulk_lane.set(bulk)
        try:
            await budget.acquire()
            order.append(name)
        finally:
            bulk_lane.reset(token)

    bulk = [asyncio.create_task(one(f"bulk{n}", True)) for n in range(6)]
    await asyncio.sleep(0.06)  # the bulk lane is queued and being served
    live = [asyncio.create_task(one(f"live{n}", False)) for n in range(2)]
    await asyncio.gather(*bulk, *live)
    served_before_live = order.index("live0")
    assert order.index("live1") == served_before_live + 1
    assert served_before_live <= 3, order  # not behind the whole bulk queue


async def test_a_pause_holds_every_request_until_it_ends() -> None:
    budget = RequestBudget(100.0)
    await budget.acquire()
    budget.pause_until(time.monotonic() + 0.3)
    assert 0.2 < budget.paused_for <= 0.3
    granted = await grant_times(budget, 2)
    assert granted[0] >= 0.25


async def test_a_cancelled_waiter_does_not_use_up_a_request() -> None:
    budget = RequestBudget(5.0)
    await budget.acquire()  # the bucket is empty now
    waiting = asyncio.create_task(budget.acquire())
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    granted = await grant_times(budget, 1)
    assert granted[0] <= 0.3  # the next one goes at the next token, not one later


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RequestBudget(0)
