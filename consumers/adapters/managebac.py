"""ManageBac+ v2 client: rate-limited, retrying, translating errors at the boundary.

Takes an `httpx.AsyncClient` so tests can point it at the simulator or a MockTransport.
Returns plain domain values (ids, field dicts), never `httpx.Response`.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import httpx
import orjson
import stamina
from aiolimiter import AsyncLimiter

from consumers.ports import (
    ManagebacRejectedError,
    ManagebacUnavailableError,
    RemoteUser,
    Resource,
)

_SINGULAR: dict[Resource, str] = {"students": "student", "parents": "parent", "teachers": "teacher"}
_MAX_429_WAIT = 60.0


class _TransientError(Exception):
    """A failure worth retrying with backoff (5xx, 409, timeouts, connection errors)."""


class _RateLimitedError(Exception):
    """ManageBac+ answered 429: wait as asked and try again, without using up an attempt."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on a call; tests shrink it."""

    attempts: int = 5
    """Tries against 5xx, 409, timeouts and connection errors; 429s don't count."""
    timeout: float = 30.0
    """Time for those tries; time spent waiting out 429s comes on top of it."""
    wait_initial: float = 0.2
    wait_max: float = 5.0
    rate_limit_wait_max: float = _MAX_429_WAIT
    """The longest single wait a 429 may ask for; a longer one is cut to this."""
    rate_limit_budget: float = 120.0
    """How long one call may be held back by 429s before it gives up as unavailable.

    429s don't use up `attempts` (the server only asked us to wait), so without this bound a
    server answering 429 for ever would hold the record, and the later changes of the same
    record queued behind it, for ever; past it the change is parked on the retry topic.
    120 s is two of the longest waits we honour, and stays well inside Kafka's
    max.poll.interval (300 s), which a rebalance (it waits for in-flight records) and a fetch
    loop whose in-flight slots are all held up both run into.
    """


class _RateLimitHold:
    """One call's clock for 429 waits: it starts at the call's first hold-up."""

    def __init__(self, budget: float) -> None:
        self._budget = budget
        self._deadline: float | None = None

    def allows(self, wait: float) -> bool:
        """Start the clock if need be; tell whether waiting `wait` s more stays in budget."""
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self._budget
        return now + wait <= self._deadline


def _retry_wait(response: httpx.Response, cap: float) -> float:
    """Read how long a 429 asks us to wait: Retry-After, else X-RateLimit-Reset (epoch)."""
    retry_after = _seconds_from_retry_after(response.headers.get("retry-after", ""))
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    reset = response.headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            return min(max(float(reset) - time.time(), 0.0), cap)
        except ValueError:
            pass
    return min(1.0, cap)


def _seconds_from_retry_after(value: str) -> float | None:
    """Retry-After holds seconds or an HTTP-date (RFC 9110 §10.2.3); None if neither."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, source unknown
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - time.time()


class ManagebacClient:
    """Talk to one school's ManageBac+ API (the `ManagebacPort` adapter)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: str,
        max_requests_per_second: float,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._headers = {"auth-token": token, "accept": "application/json"}
        self._limiter = AsyncLimiter(max_requests_per_second, 1.0)
        self._retry = retry or RetryPolicy()
        self._paused_until = 0.0  # monotonic; a 429 holds back every call of this client

    async def create(self, resource: Resource, fields: Mapping[str, Any]) -> RemoteUser:
        """Create a user and return it as ManageBac+ stored it."""
        body = await self._call("POST", f"/v2/{resource}", {_SINGULAR[resource]: dict(fields)})
        return _user(body[_SINGULAR[resource]])

    async def update(self, resource: Resource, user_id: int, fields: Mapping[str, Any]) -> None:
        """Write only the given fields (ManageBac+ ignores nulls; "" clears)."""
        await self._call("PATCH", f"/v2/{resource}/{user_id}", {_SINGULAR[resource]: dict(fields)})

    async def archive(
        self, resource: Resource, user_id: int, body: Mapping[str, Any] | None = None
    ) -> None:
        """Archive a user (the API has no delete); students need a withdrawn_on date."""
        await self._call("PUT", f"/v2/{resource}/{user_id}/archive", dict(body or {}))

    async def unarchive(self, resource: Resource, user_id: int) -> None:
        """Restore an archived user."""
        await self._call("PUT", f"/v2/{resource}/{user_id}/unarchive", {})

    async def link_child(self, parent_id: int, child_id: int, relationship: str) -> None:
        """Link a parent to a student; an existing link gets the relationship written."""
        try:
            await self._call(
                "POST",
                f"/v2/parents/{parent_id}/children",
                {"child": {"id": child_id, "relationship": relationship}},
            )
        except ManagebacRejectedError as exc:
            if not exc.already_taken:
                raise
            await self.relink_child(parent_id, child_id, relationship)  # "already linked"

    async def relink_child(self, parent_id: int, child_id: int, relationship: str) -> None:
        """Change the relationship of an existing parent-child link."""
        await self._call(
            "PUT",
            f"/v2/parents/{parent_id}/children/{child_id}",
            {"child": {"relationship": relationship}},
        )

    async def unlink_child(self, parent_id: int, child_id: int) -> None:
        """Remove a parent-child link; a link that is already gone counts as removed."""
        try:
            await self._call("DELETE", f"/v2/parents/{parent_id}/children/{child_id}", None)
        except ManagebacRejectedError as exc:
            if exc.status != 404:
                raise

    async def find_student(self, student_id: str) -> RemoteUser | None:
        """Find a student by the school's own student_id (exact match, archived too)."""
        return await self._find("students", "student_id", student_id, case_sensitive=True)

    async def find_by_email(self, resource: Resource, email: str) -> RemoteUser | None:
        """Find a parent or teacher by exact e-mail, ignoring case."""
        return await self._find(resource, "email", email, case_sensitive=False)

    async def _find(
        self, resource: Resource, field: str, value: str, case_sensitive: bool
    ) -> RemoteUser | None:
        wanted = value if case_sensitive else value.casefold()
        page = 1
        while True:
            body = await self._call(
                "GET", f"/v2/{resource}", None, params={"q": value, "page": page, "per_page": 200}
            )
            for item in body.get(resource, []):
                found = item.get(field)
                if isinstance(found, str) and (found if case_sensitive else found.casefold()) == (
                    wanted
                ):
                    return _user(item)
            meta = body.get("meta") or {}
            if page >= int(meta.get("total_pages") or 1):
                return None
            page += 1

    async def _call(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        policy = self._retry
        hold = _RateLimitHold(policy.rate_limit_budget)
        try:
            async for attempt in stamina.retry_context(
                on=_TransientError,
                attempts=policy.attempts,
                # 429 waits happen inside an attempt; stamina's clock must not count them.
                timeout=policy.timeout + policy.rate_limit_budget,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
            ):
                with attempt:
                    return await self._call_patiently(method, path, payload, params, hold)
        except _TransientError as exc:
            raise ManagebacUnavailableError(f"gave up after retries: {exc}") from exc
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    async def _call_patiently(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        hold: _RateLimitHold,
    ) -> dict[str, Any]:
        """Call once, again after each 429 (waited out before the next request)."""
        while True:
            try:
                return await self._call_once(method, path, payload, params, hold)
            except _RateLimitedError:
                if not hold.allows(0.0):
                    raise self._rate_limited_too_long(method, path) from None

    async def _hold_back(self, method: str, path: str, hold: _RateLimitHold) -> None:
        """Wait until the client's 429 pause is over (set by this call or a concurrent one)."""
        while (pause := self._paused_until - time.monotonic()) > 0:
            if not hold.allows(pause):
                raise self._rate_limited_too_long(method, path)
            await asyncio.sleep(pause)

    def _rate_limited_too_long(self, method: str, path: str) -> ManagebacUnavailableError:
        budget = self._retry.rate_limit_budget
        return ManagebacUnavailableError(
            f"gave up: {method} {path} rate limited (429) beyond the {budget:g} s budget"
        )

    async def _call_once(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        hold: _RateLimitHold,
    ) -> dict[str, Any]:
        await self._hold_back(method, path, hold)
        async with self._limiter:
            await self._hold_back(method, path, hold)  # a 429 may have come while we queued
            try:
                response = await self._http.request(
                    method,
                    self._base_url + path,
                    headers=self._headers,
                    content=orjson.dumps(payload) if payload is not None else None,
                    params=params,
                )
            except httpx.TransportError as exc:
                raise _TransientError(f"{method} {path}: {type(exc).__name__}") from exc
        status = response.status_code
        if status == 429:
            wait = _retry_wait(response, self._retry.rate_limit_wait_max)
            self._paused_until = max(self._paused_until, time.monotonic() + wait)
            raise _RateLimitedError(f"{method} {path}: 429 rate limited")
        if status >= 500 or status == 409:  # 409: a concurrent change; the next try sees it
            raise _TransientError(f"{method} {path}: {status}")
        if status >= 400:
            raise ManagebacRejectedError(status, response.text, method, path)
        if not response.content:
            return {}
        decoded = orjson.loads(response.content)
        return decoded if isinstance(decoded, dict) else {}


def _user(item: Mapping[str, Any]) -> RemoteUser:
    return RemoteUser(id=int(item["id"]), archived=bool(item.get("archived")), fields=item)
