"""ManageBac+ v2 client: rate-limited, retrying, translating errors at the boundary.

Takes an `httpx.AsyncClient` so tests can point it at the simulator or a MockTransport.
Returns plain domain values (ids, field dicts), never `httpx.Response`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import stamina

from consumers.adapters.budget import RequestBudget
from consumers.adapters.http import http_date, retry_after_seconds
from consumers.ports import (
    ManagebacBlockedError,
    ManagebacRejectedError,
    ManagebacUnavailableError,
    Record,
    RemoteUser,
    Resource,
)

_SINGULAR: dict[Resource, str] = {"students": "student", "parents": "parent", "teachers": "teacher"}
_MAX_429_WAIT = 60.0
PAGE_SIZE = 50  # Faria asks integrations for pages of about 50 (managebac-notes.md)


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

    def start(self) -> None:
        """Start the clock at a hold-up (a 429, or a pause another call's 429 left)."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self._budget

    def allows(self, wait: float) -> bool:
        """Tell whether waiting `wait` s more stays in budget. No wait before any hold-up
        starts nothing: time spent on 5xx retries is not counted against 429 waits."""
        if wait > 0:
            self.start()
        if self._deadline is None:
            return True
        return time.monotonic() + wait <= self._deadline


def _retry_wait(response: httpx.Response, cap: float, now: float | None = None) -> float:
    """Read how long a 429 asks us to wait, in seconds (at most `cap`).

    `X-RateLimit-Reset` is "the exact time (in UTC)" a retry will succeed, in whichever
    form it comes: epoch seconds, an HTTP-date or ISO 8601 (UTC when it has no offset); a
    small number there is read as seconds to wait. `Retry-After` (seconds or an HTTP-date,
    RFC 9110 §10.2.3) is not documented by ManageBac+ and is in whole seconds: with both,
    the earlier is taken. With neither, 1 s.
    """
    clock = time.time() if now is None else now
    waits = [
        wait
        for wait in (
            retry_after_seconds(response.headers.get("retry-after", ""), clock),
            _seconds_until_reset(response.headers.get("x-ratelimit-reset", ""), clock),
        )
        if wait is not None
    ]
    return min(max(min(waits) if waits else 1.0, 0.0), cap)


_EPOCH_FLOOR = 1_000_000_000  # 2001-09-09: below it a number is a delay, not a time


def _seconds_until_reset(value: str, now: float) -> float | None:
    """X-RateLimit-Reset as epoch seconds (or a delay), an HTTP-date, or ISO 8601."""
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number - now if number >= _EPOCH_FLOOR else number
    return _seconds_until(http_date(text) or _iso_moment(text), now)


def _iso_moment(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _seconds_until(when: datetime | None, now: float) -> float | None:
    return None if when is None else when.timestamp() - now


class ManagebacClient:
    """Talk to one school's ManageBac+ API (the `ManagebacPort` adapter).

    Every request waits for the school's `RequestBudget` (its share of the school's
    requests per second, live before bulk); a 429 pauses the school's budget as long as
    ManageBac+ asks. Answers are translated here: 401/403 → `ManagebacBlockedError` (the
    school waits for a working token), 5xx/409/timeouts and odd answers (a redirect, an HTML
    page with a 2xx) → retried, then `ManagebacUnavailableError`, other 4xx →
    `ManagebacRejectedError` with ManageBac+'s body.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: str,
        max_requests_per_second: float,
        retry: RetryPolicy | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._headers = {"auth-token": token, "accept": "application/json"}
        self.budget = budget or RequestBudget(max_requests_per_second)
        self._retry = retry or RetryPolicy()

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

    async def link_child(
        self, parent_id: int, child_id: int, relationship: str, *, likely_new: bool = False
    ) -> None:
        """Link a parent to a student, or write the relationship of an existing link.

        ManageBac+'s refusal of an existing link is not documented beyond its status
        (docs/reference/managebac-notes.md), so by default the link is written with
        `PUT …/children/{id}` and posted when that says 404. `likely_new` (the parent was
        created by this service and the ledger made none of this link, or ManageBac+'s own
        list lacks it) posts first, one request; a 422 is then checked with the PUT: found,
        it was there after all; 404, the POST's refusal was real and is raised
        (docs/architecture.md, "ManageBac+ as the client meets it").
        """
        if not likely_new:
            try:
                await self.relink_child(parent_id, child_id, relationship)
                return
            except ManagebacRejectedError as exc:
                if exc.status != 404:
                    raise
        try:
            await self._call(
                "POST",
                f"/v2/parents/{parent_id}/children",
                {"child": {"id": child_id, "relationship": relationship}},
            )
        except ManagebacRejectedError as refused:
            if refused.status != 422 or not likely_new:
                raise
            try:
                await self.relink_child(parent_id, child_id, relationship)  # linked after all
            except ManagebacRejectedError as missing:
                if missing.status != 404:
                    raise
                raise refused from None

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

    async def permissions(self) -> frozenset[str]:
        """Return the rights of the school's token (`GET /v2/auth/permissions`)."""
        body = await self._call("GET", "/v2/auth/permissions", None)
        rights = body.get("permissions")
        return (
            frozenset(str(right) for right in rights) if isinstance(rights, list) else frozenset()
        )

    async def users(self, resource: Resource) -> AsyncIterator[RemoteUser]:
        """Yield every user of `resource`, archived ones too, page by page."""
        for archived in ("false", "true"):
            async for item in self._pages(f"/v2/{resource}", resource, {"archived": archived}):
                yield _user(item)

    async def children(self, parent_id: int) -> dict[int, str | None]:
        """Return a parent's links: child (student) id to relationship."""
        found: dict[int, str | None] = {}
        async for item in self._pages(f"/v2/parents/{parent_id}/children", "children", {}):
            relationship = item.get("relationship")
            found[int(item["id"])] = relationship if isinstance(relationship, str) else None
        return found

    async def year_groups(self, modified_since: datetime | None = None) -> list[Record]:
        """Return the year groups (cohorts), active and archived, changed since a time."""
        groups: list[Record] = []
        for archived in ("false", "true"):
            params: dict[str, Any] = {"archived": archived}
            if modified_since is not None:
                params["modified_since"] = modified_since.astimezone(UTC).isoformat()
            async for item in self._pages("/v2/year-groups", "year_groups", params):
                groups.append(dict(item))
        return groups

    async def _pages(
        self, path: str, collection: str, params: Mapping[str, Any]
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Yield a list's items, `PAGE_SIZE` at a time (Faria asks for pages of about 50)."""
        page = 1
        while True:
            body = await self._call(
                "GET", path, None, params={**params, "page": page, "per_page": PAGE_SIZE}
            )
            for item in body.get(collection, []):
                if isinstance(item, Mapping):
                    yield item
            meta = body.get("meta") or {}
            if page >= int(meta.get("total_pages") or 1):
                return
            page += 1

    async def _find(
        self, resource: Resource, field: str, value: str, case_sensitive: bool
    ) -> RemoteUser | None:
        wanted = value if case_sensitive else value.casefold()
        async for item in self._pages(f"/v2/{resource}", resource, {"q": value}):
            found = item.get(field)
            if isinstance(found, str) and (found if case_sensitive else found.casefold()) == (
                wanted
            ):
                return _user(item)
        return None

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
                hold.start()
                if not hold.allows(0.0):
                    raise self._rate_limited_too_long(method, path) from None

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
        if not hold.allows(self.budget.paused_for):  # a 429 pause longer than this call has
            raise self._rate_limited_too_long(method, path)
        await self.budget.acquire()
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
        return self._answer(response, method, path)

    def _answer(self, response: httpx.Response, method: str, path: str) -> dict[str, Any]:
        """Translate one answer: the body of a success, else the error it means."""
        status = response.status_code
        if status == 429:
            wait = _retry_wait(response, self._retry.rate_limit_wait_max)
            self.budget.pause_until(time.monotonic() + wait)
            raise _RateLimitedError(f"{method} {path}: 429 rate limited")
        if status in (401, 403):
            raise ManagebacBlockedError(status, _refusal(response, status))
        if status >= 500 or status == 409:  # 409: a concurrent change; the next try sees it
            raise _TransientError(f"{method} {path}: {status}")
        if 300 <= status < 400:  # a login or maintenance page behind a redirect, never success
            raise _TransientError(f"{method} {path}: redirected ({status})")
        if status >= 400:
            raise ManagebacRejectedError(status, response.text, method, path)
        if not response.content:
            return {}
        try:
            decoded = orjson.loads(response.content)
        except orjson.JSONDecodeError:  # an HTML maintenance page answered with a 2xx
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise _TransientError(f"{method} {path}: {status} but not JSON ({kind})") from None
        return decoded if isinstance(decoded, dict) else {}


def _refusal(response: httpx.Response, status: int) -> str:
    """Say why ManageBac+ refused the token, from its body where it says (no secrets)."""
    what = "the token was refused (401)" if status == 401 else "the token lacks a right (403)"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return what
    detail = body.get("reason") or body.get("error") if isinstance(body, dict) else None
    return f"{what}: {str(detail)[:200]}" if detail else what


def _user(item: Mapping[str, Any]) -> RemoteUser:
    return RemoteUser(id=int(item["id"]), archived=bool(item.get("archived")), fields=item)
