"""iSAMS REST client: OAuth2 client credentials with a cached token, retrying reads.

Returns raw iSAMS records (dicts exactly as the REST API sends them); parsing them is the
pure domain's job.
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

from consumers.ports import IsamsAuthError, IsamsError, IsamsUnavailableError

STUDENT_EXPAND = "nationalityIsoMappings,languageIsoMappings"
CONTACT_EXPAND = "countryIsoMappings"  # only the paged /api/students/contacts has it
# The collection key of /api/alumni: from one public client (nacht29/isams-pipeline), not
# confirmed by iSAMS; kept here, in one place, so it is easy to change.
ALUMNI_COLLECTION = "alumni"
_TOKEN_MARGIN = 30.0


class _TransientError(Exception):
    """A failure worth retrying."""


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
        attempts: int = 5,
        timeout: float = 30.0,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._attempts = attempts
        self._timeout = timeout
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

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

    async def all_students(self, page_size: int = 500) -> AsyncIterator[dict[str, Any]]:
        """Yield every student, page by page (for backfills)."""
        async for item in self._all("/api/students", "students", page_size, STUDENT_EXPAND):
            yield item

    async def all_alumni(self, page_size: int = 500) -> AsyncIterator[dict[str, Any]]:
        """Yield every former pupil (leavers, with their `leavingDate`), page by page."""
        path = "/api/alumni"
        async for item in self._all(path, ALUMNI_COLLECTION, page_size, STUDENT_EXPAND):
            yield item

    async def all_employees(self, page_size: int = 500) -> AsyncIterator[dict[str, Any]]:
        """Yield every member of staff, page by page (for backfills)."""
        path = "/api/humanresources/employees"
        async for item in self._all(path, "employees", page_size, None):
            yield item

    async def _all(
        self, path: str, collection: str, page_size: int, expand: str | None
    ) -> AsyncIterator[dict[str, Any]]:
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "pageSize": page_size}
            if expand:
                params["expand"] = expand
            body = await self._get_json(path, params)
            if body is None:
                return
            for item in body.get(collection, []):
                if isinstance(item, dict):
                    yield item
            if page >= int(body.get("totalPages") or 1):
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
        try:
            async for attempt in stamina.retry_context(
                on=_TransientError, attempts=self._attempts, timeout=self._timeout
            ):
                with attempt:
                    return await self._get_once(path, params)
        except _TransientError as exc:
            raise IsamsUnavailableError(f"iSAMS GET {path}: {exc}") from exc
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    async def _get_once(self, path: str, params: dict[str, Any]) -> dict[str, Any] | None:
        token = await self._access_token()
        try:
            response = await self._http.get(
                self._base_url + path,
                params=params,
                headers={"authorization": f"Bearer {token}", "accept": "application/json"},
            )
        except httpx.TransportError as exc:
            raise _TransientError(type(exc).__name__) from exc
        if response.status_code == 401:
            self._token = None  # expired or revoked early: fetch a new one next attempt
            raise _TransientError("401 with a cached token")
        if response.status_code == 404:
            return None
        if response.status_code == 429 or response.status_code >= 500:
            raise _TransientError(str(response.status_code))
        if response.status_code >= 400:
            raise IsamsError(f"iSAMS GET {path} answered {response.status_code}")
        decoded = orjson.loads(response.content)
        return decoded if isinstance(decoded, dict) else None

    async def _access_token(self) -> str:
        async with self._token_lock:
            if self._token is not None and time.monotonic() < self._token.expires_at:
                return self._token.value
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
            if response.status_code >= 500:
                raise _TransientError(f"token: {response.status_code}")
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
