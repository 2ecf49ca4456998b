"""ManageBac+ v2 client: rate-limited, retrying, translating errors at the boundary.

Takes an `httpx.AsyncClient` so tests can point it at the simulator or a MockTransport.
Returns plain domain values (ids, field dicts), never `httpx.Response`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson
import stamina
from aiolimiter import AsyncLimiter

Resource = Literal["students", "parents", "teachers"]
_SINGULAR: dict[Resource, str] = {"students": "student", "parents": "parent", "teachers": "teacher"}
_MAX_429_WAIT = 60.0


class ManagebacError(Exception):
    """Base class of ManageBac+ failures."""


class ManagebacRejectedError(ManagebacError):
    """ManageBac+ refused the request for good (a 4xx other than 429); retrying won't help."""

    def __init__(self, status: int, body: str, method: str, path: str) -> None:
        super().__init__(f"ManageBac+ answered {status} to {method} {path}: {body[:500]}")
        self.status = status
        self.body = body

    @property
    def already_taken(self) -> bool:
        """Tell whether the refusal is a uniqueness clash ("has already been taken")."""
        return self.status == 422 and "already been taken" in self.body


class ManagebacUnavailableError(ManagebacError):
    """ManageBac+ kept failing (5xx, timeouts, connection errors) after bounded retries."""


class _TransientError(Exception):
    """A failure worth retrying; `wait` is the server's requested delay, if any."""

    def __init__(self, detail: str, wait: float | None = None) -> None:
        super().__init__(detail)
        self.wait = wait


@dataclass(frozen=True)
class RemoteUser:
    """A ManageBac+ user as far as the sync cares: its id, archive flag and fields."""

    id: int
    archived: bool
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on a call; tests shrink it."""

    attempts: int = 5
    timeout: float = 30.0
    wait_initial: float = 0.2
    wait_max: float = 5.0


def _backoff(exc: Exception) -> bool | float:
    """Tell stamina whether to retry, and how long to wait when the server said so."""
    if isinstance(exc, _TransientError):
        return exc.wait if exc.wait is not None else True
    return False


def _retry_wait(response: httpx.Response) -> float:
    """Read how long a 429 asks us to wait: Retry-After, else X-RateLimit-Reset (epoch)."""
    retry_after = response.headers.get("retry-after")
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), _MAX_429_WAIT)
        except ValueError:
            pass
    reset = response.headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            return min(max(float(reset) - time.time(), 0.0), _MAX_429_WAIT)
        except ValueError:
            pass
    return 1.0


class ManagebacClient:
    """Talk to one school's ManageBac+ API."""

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
        self._paused_until = 0.0

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
        try:
            async for attempt in stamina.retry_context(
                on=_backoff,
                attempts=policy.attempts,
                timeout=policy.timeout,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
            ):
                with attempt:
                    return await self._call_once(method, path, payload, params)
        except _TransientError as exc:
            raise ManagebacUnavailableError(f"gave up after retries: {exc}") from exc
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    async def _call_once(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        pause = self._paused_until - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        async with self._limiter:
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
            wait = _retry_wait(response)
            self._paused_until = time.monotonic() + wait
            raise _TransientError(f"{method} {path}: 429 rate limited", wait=wait)
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
