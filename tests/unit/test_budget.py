"""A school's request budget: its rate, its share among replicas, live before bulk, 429 pauses."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from consumers.adapters.budget import (
    CATCH_UP,
    HEADROOM,
    HEADROOM_ALONE,
    MIN_RATE,
    RequestBudget,
    bulk_lane,
)


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
    assert budget.rate == pytest.approx(20.0 * HEADROOM_ALONE)
    granted = await grant_times(budget, 11)
    # The first goes at once; the other ten evenly spaced at 19/s: about 0.53 s.
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
    assert budget.rate == pytest.approx(10.0 * HEADROOM_ALONE)


def test_replicas_sharing_a_school_leave_more_headroom_than_one_process_alone() -> None:
    budget = RequestBudget(50.0)
    budget.set_share(1.0)  # all the school's partitions: no other replica's requests
    assert budget.rate == pytest.approx(50.0 * HEADROOM_ALONE)
    budget.set_share(0.5)  # two replicas: their requests interleave in ManageBac+'s windows
    assert budget.rate == pytest.approx(25.0 * HEADROOM)
    assert HEADROOM < HEADROOM_ALONE < 1.0


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def granted_now(budget: RequestBudget) -> bool:
    """Tell whether a request is granted without the clock moving on."""
    try:
        await asyncio.wait_for(budget.acquire(), timeout=0.1)
    except TimeoutError:
        return False
    return True


async def test_a_late_grant_is_made_up_by_the_next_coming_sooner_up_to_a_quarter() -> None:
    clock = ManualClock()
    budget = RequestBudget(10.0, clock=clock)
    spacing = 1 / budget.rate
    assert await granted_now(budget)  # the first at once
    clock.now += spacing * 1.2  # the loop was busy: this grant comes a fifth late
    assert await granted_now(budget)
    clock.now += spacing * 0.81  # so the next may come (nearly) a fifth sooner
    assert await granted_now(budget)


async def test_lateness_beyond_a_quarter_is_not_kept_so_there_is_no_burst() -> None:
    clock = ManualClock()
    budget = RequestBudget(10.0, clock=clock)
    spacing = 1 / budget.rate
    assert await granted_now(budget)
    clock.now += spacing * 5  # idle for five requests' time
    assert await granted_now(budget)
    clock.now += spacing * (1 - CATCH_UP) * 0.9  # sooner than the catch-up allows
    assert not await granted_now(budget)


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
