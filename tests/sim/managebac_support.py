"""Helpers shared by the ManageBac+ simulator tests: a settable clock and in-process clients."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from sim.managebac import SimConfig, create_app

TOKEN = "test-token"
YEAR_7, YEAR_8 = 10209272, 10209273
LOCAL = "127.0.0.1"


class FakeClock:
    """A settable clock so rate-limit windows and timestamps are deterministic."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sim_app(config: SimConfig | None = None, clock: FakeClock | None = None) -> FastAPI:
    """Return a fresh in-process simulator (default: two year groups, one token)."""
    config = config or SimConfig(token=TOKEN, year_groups={7: YEAR_7, 8: YEAR_8})
    return create_app(config, clock=clock) if clock else create_app(config)


def client_on(app: FastAPI, token: str = TOKEN, address: str = LOCAL) -> httpx.AsyncClient:
    """Return a client of `app` sending `token`, as if from the client address `address`."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app, client=(address, 50_000)),
        base_url="http://managebac.test",
        headers={"auth-token": token},
    )


def client_for(
    config: SimConfig | None = None, clock: FakeClock | None = None
) -> httpx.AsyncClient:
    """Return a client talking to a fresh in-process simulator."""
    return client_on(sim_app(config, clock))
