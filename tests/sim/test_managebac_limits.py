"""The rate limit counts per client address over every token, optionally per token too."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

import pytest

from sim.managebac import SimConfig
from sim.managebac.ratelimit import RateDecision, ResetFormat, tightest
from tests.sim.managebac_support import TOKEN, FakeClock, client_on, sim_app

OTHER = "other-token"
SCHOOL_A, SCHOOL_B = "10.0.0.1", "10.0.0.2"


def limited(**changes: object) -> SimConfig:
    return SimConfig(token=TOKEN, tokens={OTHER: frozenset({"students/index"})}, **changes)


async def test_the_limit_is_per_client_address_whatever_the_token() -> None:
    clock = FakeClock(1_000.25)
    app = sim_app(limited(rate_limit_per_second=2), clock)
    async with (
        client_on(app, TOKEN, SCHOOL_A) as first,
        client_on(app, OTHER, SCHOOL_A) as same_machine,
        client_on(app, TOKEN, SCHOOL_B) as elsewhere,
    ):
        assert (await first.get("/v2/students")).status_code == 200
        assert (await same_machine.get("/v2/students")).status_code == 200
        refused = await same_machine.get("/v2/students")
        assert refused.status_code == 429
        assert refused.json() == {"error": "Too Many Requests"}
        assert (await first.get("/v2/students")).status_code == 429
        assert (await elsewhere.get("/v2/students")).status_code == 200  # its own budget
        clock.now = 1_001.0
        assert (await first.get("/v2/students")).status_code == 200
        stats = (await first.get("/_sim/stats")).json()
    assert stats["by_client"][SCHOOL_A]["statuses"] == {"200": 3, "429": 2}
    assert stats["by_client"][SCHOOL_B]["statuses"] == {"200": 1}
    assert stats["by_token"][TOKEN]["statuses"] == {"200": 3, "429": 1}
    assert stats["by_token"][OTHER]["statuses"] == {"200": 1, "429": 1}
    assert (stats["by_client"][SCHOOL_A]["first_at"], stats["by_client"][SCHOOL_A]["last_at"]) == (
        1_000.25,
        1_001.0,
    )


async def test_requests_with_a_bad_token_use_up_the_address_budget_too() -> None:
    app = sim_app(limited(rate_limit_per_second=2), FakeClock(1_000.25))
    async with client_on(app, "wrong") as forged, client_on(app) as good:
        assert [(await forged.get("/v2/students")).status_code for _ in range(2)] == [401, 401]
        assert (await good.get("/v2/students")).status_code == 429


async def test_a_per_token_limit_counts_across_addresses() -> None:
    app = sim_app(limited(rate_limit_per_token_per_second=1), FakeClock(1_000.25))
    async with (
        client_on(app, TOKEN, SCHOOL_A) as replica_1,
        client_on(app, TOKEN, SCHOOL_B) as replica_2,
        client_on(app, OTHER, SCHOOL_B) as other_school,
    ):
        assert (await replica_1.get("/v2/students")).status_code == 200
        refused = await replica_2.get("/v2/students")
        assert refused.status_code == 429
        assert refused.headers["X-RateLimit-Limit"] == "1"
        assert (await other_school.get("/v2/students")).status_code == 200


async def test_the_headers_show_the_tighter_of_the_two_limits() -> None:
    app = sim_app(
        limited(rate_limit_per_second=10, rate_limit_per_token_per_second=3), FakeClock(1_000.25)
    )
    async with client_on(app) as client:
        first = await client.get("/v2/students")
        assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == (
            "3",
            "2",
        )
        assert first.headers["X-RateLimit-Period"] == "1"
        statuses = [(await client.get("/v2/students")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]


def test_tightest_prefers_a_refusal_then_the_fewest_remaining() -> None:
    roomy, tight = RateDecision(True, 10, 8, 1, 0), RateDecision(True, 3, 1, 1, 0)
    refused = RateDecision(False, 10, 0, 1, 1)
    assert tightest(roomy, tight) is tight
    assert tightest(tight, roomy) is tight
    assert tightest(refused, tight) is refused
    assert tightest(tight, refused) is refused
    assert tightest(None, roomy) is roomy
    assert tightest(None, None) is None


@pytest.mark.parametrize(
    ("style", "reset"),
    [
        ("epoch", "1001"),
        ("http-date", "Thu, 01 Jan 1970 00:16:41 GMT"),
        ("iso8601", "1970-01-01T00:16:41+00:00"),
        ("iso8601-z", "1970-01-01T00:16:41Z"),
        ("iso8601-no-offset", "1970-01-01T00:16:41"),
    ],
)
async def test_the_reset_time_comes_in_the_configured_format(
    style: ResetFormat, reset: str
) -> None:
    app = sim_app(
        limited(rate_limit_per_second=1, rate_limit_reset_format=style), FakeClock(1000.25)
    )
    async with client_on(app) as client:
        await client.get("/v2/students")
        refused = await client.get("/v2/students")
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Reset"] == reset
    assert refused.headers["X-RateLimit-Limit"] == "1"
    assert refused.headers["X-RateLimit-Period"] == "1"
    assert refused.headers["Retry-After"] == "1"
    # Every format names the same instant, the start of the next window.
    if style == "epoch":
        moment = datetime.fromtimestamp(int(reset), UTC)
    elif style == "http-date":
        moment = email.utils.parsedate_to_datetime(reset)
    else:
        parsed = datetime.fromisoformat(reset.replace("Z", "+00:00"))
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    assert moment.timestamp() == 1001


async def test_retry_after_can_be_switched_off() -> None:
    app = sim_app(limited(rate_limit_per_second=1, rate_limit_retry_after=False), FakeClock(5.5))
    async with client_on(app) as client:
        await client.get("/v2/students")
        refused = await client.get("/v2/students")
        assert refused.status_code == 429
        assert "Retry-After" not in refused.headers
        assert refused.headers["X-RateLimit-Reset"] == "6"
        switched = await client.put("/_sim/limits", json={"retry_after": True})
        assert switched.json()["retry_after"] is True
        assert (await client.get("/v2/students")).headers["Retry-After"] == "1"


async def test_limits_change_at_run_time() -> None:
    app = sim_app(limited(), FakeClock(1_000.25))
    async with client_on(app) as client:
        assert (await client.get("/_sim/limits")).json() == {
            "per_client_per_second": None,
            "per_token_per_second": None,
            "period_seconds": 1,
            "reset_format": "epoch",
            "retry_after": True,
        }
        changed = await client.put(
            "/_sim/limits",
            json={"per_client_per_second": 1, "reset_format": "iso8601-z", "retry_after": False},
        )
        assert changed.json()["per_client_per_second"] == 1
        # One limit, two views: `/_sim/faults` shows the per-client limit too.
        assert (await client.get("/_sim/faults")).json()["rate_limit_per_second"] == 1
        await client.get("/v2/students")
        refused = await client.get("/v2/students")
        assert refused.headers["X-RateLimit-Reset"] == "1970-01-01T00:16:41Z"
        assert "Retry-After" not in refused.headers
        bad = await client.put("/_sim/limits", json={"reset_format": "rfc850"})
        assert bad.status_code == 422
        null = await client.put("/_sim/limits", json={"retry_after": None})
        assert null.json() == {"errors": {"retry_after": ["cannot be null"]}}
        off = await client.put("/_sim/limits", json={"per_client_per_second": None})
        assert off.json()["per_client_per_second"] is None
        assert (await client.get("/v2/students")).status_code == 200
        await client.put("/_sim/limits", json={"per_token_per_second": 1, "retry_after": False})
        await client.post("/_sim/reset")
        assert (await client.get("/_sim/limits")).json()["retry_after"] is True
        assert (await client.get("/_sim/limits")).json()["per_token_per_second"] is None
