"""iSAMS REST client: OAuth2 client credentials with a cached token, retrying reads.

Returns raw iSAMS records (dicts exactly as the REST API sends them); parsing them is the
pure domain's job. What iSAMS answers is translated here, once (docs/design.md §6):
- 401: the cached token expired or was revoked early; a new one is fetched and the request
  tried again (within the attempts).
- 403 (`{"message": "The user is not authorised for this request"}`: the REST client lacks
  a module): `IsamsForbiddenError` with iSAMS's message, for single reads and lists alike.
  Never "nothing there".
- 404: a single record is gone (None); on a list it is `IsamsListNotFoundError`, never "the
  end of the list" nor "everyone left".
- 429 and 5xx (iSAMS's SQL deadlocks are transient), timeouts, connection errors: retried
  with jittered exponential backoff, or after the `Retry-After` iSAMS asked for, within a
  bounded number of attempts and time (`IsamsRetryPolicy`); then `IsamsUnavailableError`.
  A `Retry-After` longer than one request may wait gives up at once: a 429 with
  `IsamsThrottledError`, carrying how long iSAMS asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import stamina

from consumers.adapters.http import retry_after_seconds
from consumers.ports import (
    IsamsAuthError,
    IsamsError,
    IsamsForbiddenError,
    IsamsListNotFoundError,
    IsamsThrottledError,
    IsamsUnavailableError,
)

STUDENT_EXPAND = "nationalityIsoMappings,languageIsoMappings"
CONTACT_EXPAND = "countryIsoMappings"  # only the paged /api/students/contacts has it
# The collection key of /api/alumni: from one public client (nacht29/isams-pipeline), not
# confirmed by iSAMS; kept here, in one place, so it is easy to change.
ALUMNI_COLLECTION = "alumni"
PAGE_SIZE = 500
_TOKEN_MARGIN = 30.0
_MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class IsamsRetryPolicy:
    """How hard one iSAMS request tries before giving up; tests shrink it.

    At most `attempts` tries within about `timeout` s (plus the last wait), each wait at
    most `wait_max` s, or what `Retry-After` asks if that is at most `retry_after_max` s
    (longer: give up at once). The default suits the consumer, which parks a change on its
    retry topic rather than hold it; the poller waits longer (`POLL_RETRY`), as a cycle
    has nowhere better to wait.
    """

    attempts: int = 5
    timeout: float = 30.0
    wait_initial: float = 0.1
    wait_max: float = 5.0
    wait_jitter: float = 1.0
    retry_after_max: float = 5.0


# A poll cycle waits out a throttle or an outage of up to 20 s in place; longer ones end
# the list for this cycle (and, throttled, delay the school's next one).
POLL_RETRY = IsamsRetryPolicy(retry_after_max=20.0)


class _TransientError(Exception):
    """A failure worth retrying; `wait` is what iSAMS asked for (Retry-After), if anything."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


def _backoff(exc: Exception) -> bool | float:
    """Tell stamina whether to retry, and after how long when iSAMS said (Retry-After)."""
    if isinstance(exc, _TransientError):
        return exc.wait if exc.wait is not None else True
    return False


@dataclass
class _Token:
    value: str
    expires_at: float


class IsamsClient:
    """Read one school's records from iSAMS (the `IsamsPort` adapter)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        client_id: str,
        client_secret: str,
        retry: IsamsRetryPolicy | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._retry = retry or IsamsRetryPolicy()
        self._page_size = page_size
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self._requests = 0

    @property
    def requests_sent(self) -> int:
        """Count the HTTP requests sent so far (retries and token requests included)."""
        return self._requests

    async def student(self, school_id: str) -> dict[str, Any] | None:
        """Return a student's current record; a leaver's from `/api/alumni`; else None.

        `/api/students` holds current pupils only: a pupil who left answers 404 there and is
        found in `/api/alumni` with their `leavingDate`.
        """
        found = await self._get_one(f"/api/students/{school_id}", {"expand": STUDENT_EXPAND})
        if found is not None:
            return found
        return await self.alumnus(school_id)

    async def alumnus(self, school_id: str) -> dict[str, Any] | None:
        """Return a former pupil's record from `/api/alumni`, or None when it has none."""
        return await self._get_one(f"/api/alumni/{school_id}", {"expand": STUDENT_EXPAND})

    async def student_contacts(self, school_id: str) -> list[dict[str, Any]] | None:
        """Return a student's contacts, or None when iSAMS no longer has the student.

        This list is not paged and has no ISO expansion (countries are then looked up by
        name). Deceased contacts are asked for too, so they are skipped with that reason
        rather than taken for removed.
        """
        body = await self._get_json(
            f"/api/students/{school_id}/contacts", {"includeDeceased": "true"}
        )
        if body is None:
            return None
        contacts = body.get("contacts", [])
        return [item for item in contacts if isinstance(item, dict)]

    async def employee(self, employee_id: str) -> dict[str, Any] | None:
        """Return a staff record, or None when iSAMS no longer has it."""
        return await self._get_one(f"/api/humanresources/employees/{employee_id}", {})

    async def all_students(self) -> AsyncIterator[dict[str, Any]]:
        """Yield every current student, page by page, with their ISO mappings."""
        async for item in self._all("/api/students", "students", {"expand": STUDENT_EXPAND}):
            yield item

    async def all_alumni(self) -> AsyncIterator[dict[str, Any]]:
        """Yield every former pupil (leavers, with their `leavingDate`), page by page."""
        params = {"expand": STUDENT_EXPAND}
        async for item in self._all("/api/alumni", ALUMNI_COLLECTION, params):
            yield item

    async def all_employees(self) -> AsyncIterator[dict[str, Any]]:
        """Yield every member of staff, page by page."""
        async for item in self._all("/api/humanresources/employees", "employees", {}):
            yield item

    async def all_contacts(self) -> AsyncIterator[dict[str, Any]]:
        """Yield every current pupil's contacts, page by page (`schoolId` names the pupil).

        Only this paged list has `countryIsoMappings`. Deceased contacts are asked for, so a
        contact who died is known as deceased (and skipped for that reason), not as removed.
        """
        params = {"expand": CONTACT_EXPAND, "includeDeceased": "true"}
        async for item in self._all("/api/students/contacts", "contacts", params):
            yield item

    async def _all(
        self, path: str, collection: str, extra: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "pageSize": self._page_size, **extra}
            body = await self._get_json(path, params)
            if body is None:
                raise IsamsListNotFoundError(path, "the list was not found (404)")
            items = body.get(collection)
            if not isinstance(items, list):
                raise IsamsError(f"iSAMS GET {path}: the answer has no {collection!r} list")
            for item in items:
                if isinstance(item, dict):
                    yield item
            if page >= _int(body.get("totalPages"), default=1):
                return
            page += 1

    async def _get_one(self, path: str, params: dict[str, Any]) -> dict[str, Any] | None:
        body = await self._get_json(path, params)
        if body is None:
            return None
        # Some iSAMS endpoints wrap a single record, others return it bare.
        for wrapper in ("student", "employee", "contact"):
            inner = body.get(wrapper)
            if isinstance(inner, dict):
                return inner
        return body

    async def _get_json(self, path: str, params: dict[str, Any]) -> dict[str, Any] | None:
        policy = self._retry
        try:
            async for attempt in stamina.retry_context(
                on=_backoff,
                attempts=policy.attempts,
                timeout=policy.timeout,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with attempt:
                    return await self._get_once(path, params)
        except _TransientError as exc:
            raise IsamsUnavailableError(f"iSAMS GET {path}: gave up after retries: {exc}") from exc
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    async def _get_once(self, path: str, params: dict[str, Any]) -> dict[str, Any] | None:
        token = await self._access_token()
        self._requests += 1
        try:
            response = await self._http.get(
                self._base_url + path,
                params=params,
                headers={"authorization": f"Bearer {token}", "accept": "application/json"},
            )
        except httpx.TransportError as exc:
            raise _TransientError(type(exc).__name__) from exc
        status = response.status_code
        if status == 401:
            self._token = None  # expired or revoked early: fetch a new one next attempt
            raise _TransientError("401 with a cached token")
        if status == 403:
            raise IsamsForbiddenError(path, _message(response))
        if status == 404:
            return None
        if status == 429 or status >= 500:
            raise self._retry_later(path, response)
        if status >= 400:
            raise IsamsError(f"iSAMS GET {path} answered {status}: {_message(response)}")
        try:
            decoded = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise IsamsError(f"iSAMS GET {path} answered {status} with no JSON") from exc
        return decoded if isinstance(decoded, dict) else None

    def _retry_later(self, path: str, response: httpx.Response) -> Exception:
        """Turn a 429 or 5xx into the retry it asks for, or, when iSAMS asks for a longer
        wait than one request takes, into giving up at once (the caller has a better place
        to wait: the consumer its retry topic, the poller its next cycle)."""
        asked = retry_after_seconds(response.headers.get("retry-after", ""))
        wait = None if asked is None else max(asked, 0.0)
        cap = self._retry.retry_after_max
        status = response.status_code
        if wait is not None and wait > cap:
            said = f"asked to wait {wait:.0f} s, more than the {cap:g} s one request waits"
            if status == 429:
                return IsamsThrottledError(
                    f"iSAMS GET {path}: throttled (429), {said}: {_message(response)}",
                    retry_after=wait,
                )
            return IsamsUnavailableError(
                f"iSAMS GET {path}: {status}, {said}: {_message(response)}"
            )
        return _TransientError(f"{status}: {_message(response)}", wait)

    async def _access_token(self) -> str:
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._token.expires_at:
                return self._token.value
            self._requests += 1
            try:
                response = await self._http.post(
                    self._base_url + "/auth/connect/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self._client_id,
                        "client_secret": self._client_secret,
                        "scope": "restapi",
                    },
                )
            except httpx.TransportError as exc:
                raise _TransientError(f"token: {type(exc).__name__}") from exc
            if response.status_code == 429 or response.status_code >= 500:
                raise self._retry_later("/auth/connect/token", response)
            if response.status_code >= 400:
                raise IsamsAuthError(
                    f"iSAMS refused the client credentials ({response.status_code}); "
                    "check isams.client_id and isams.client_secret in the schools file"
                )
            body = orjson.loads(response.content)
            lifetime = float(body.get("expires_in") or 3600)
            self._token = _Token(
                value=str(body["access_token"]),
                expires_at=time.monotonic() + max(lifetime - _TOKEN_MARGIN, 1.0),
            )
            return self._token.value


def _message(response: httpx.Response) -> str:
    """Return iSAMS's error `message` (its words for the operator), else the body's start."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:_MESSAGE_LIMIT]
    text = response.text.strip()
    return text[:_MESSAGE_LIMIT] if text else "(no message)"


def _int(value: object, default: int) -> int:
    """Read a paging number iSAMS sends as an integer (or its text); else `default`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return default
