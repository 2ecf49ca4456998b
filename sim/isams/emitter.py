"""Send Standard Webhooks-signed change events for the simulated school (docs/design.md §2.2).

Plays the part of iSAMS (or its connector): builds events in the shape of `consumers.events`,
signs each request with `standardwebhooks`, and retries 503/429 answers within a bound.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook

from sim.isams.school import EMAIL_DOMAIN, Record, SchoolData, ascii_fold, expand_record

Event = dict[str, Any]

MAX_EVENTS_PER_REQUEST = 500
RETRY_STATUSES = frozenset({429, 503})
_logger = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def make_event(event_type: str, data: Mapping[str, Any], moment: datetime | None = None) -> Event:
    """Build one event in the Standard Webhooks payload shape of `consumers.events.ChangeEvent`."""
    when = (moment or _utc_now()).astimezone(UTC)
    return {
        "type": event_type,
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": {k: v for k, v in data.items() if v is not None},
    }


@dataclass
class EmitterStats:
    """What an emitter has done, for demo progress and test assertions."""

    requests: int = 0  # HTTP requests made, retries included
    events: int = 0  # events in requests that got a final answer
    retries: int = 0
    accepted: int = 0  # events in requests answered 2xx


class WebhookEmitter:
    """Send change events for one simulated school to the sync service's webhook endpoint."""

    def __init__(
        self,
        school: SchoolData,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        school_id: str,
        secret: str | Sequence[str],
        fat: bool = True,
        expand: bool = True,
        batch_size: int = 1,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        max_retry_wait: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not 1 <= batch_size <= MAX_EVENTS_PER_REQUEST:
            raise ValueError(f"batch_size must be between 1 and {MAX_EVENTS_PER_REQUEST}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be 1 or more")
        secrets = [secret] if isinstance(secret, str) else list(secret)
        if not secrets:
            raise ValueError("at least one webhook secret is needed")
        self.school = school
        self.url = f"{base_url.rstrip('/')}/v1/webhooks/isams/{school_id}"
        self.fat = fat
        self.expand = expand
        self.batch_size = batch_size
        self.stats = EmitterStats()
        self._client = client
        self._signers = [Webhook(s) for s in secrets]
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._max_wait = max_retry_wait
        self._sleep = sleep
        self._clock = clock
        self._edits = 0

    # Events ------------------------------------------------------------------------------

    def student_event(
        self, school_id: str, action: str = "updated", fat: bool | None = None
    ) -> Event:
        """Build an event for one student; fat events carry the record as REST returns it."""
        data: dict[str, Any] = {"schoolId": school_id}
        if action != "deleted" or school_id in self.school.students:
            record = self.school.student(school_id)  # raises UnknownRecordError if absent
            data["schoolCode"] = record.get("schoolCode") or None
            if self._fat(fat) and action != "deleted":
                data["record"] = self._expanded("student", record)
        return make_event(f"student.{action}", data, self._clock())

    def contact_event(
        self,
        contact_id: int,
        action: str = "updated",
        fat: bool | None = None,
        school_id: str | None = None,
    ) -> Event:
        """Build an event for one contact; a deleted one needs `school_id` once it is gone."""
        data: dict[str, Any] = {"id": contact_id, "schoolId": school_id}
        if contact_id in self.school.contacts:
            record = self.school.contact(contact_id)
            data["schoolId"] = record["schoolId"]
            if self._fat(fat) and action != "deleted":
                data["record"] = self._expanded("contact", record)
        elif school_id is None:
            raise KeyError(f"no contact with id {contact_id}: pass school_id")
        return make_event(f"contact.{action}", data, self._clock())

    def staff_event(
        self,
        employee_id: int,
        action: str = "updated",
        fat: bool | None = None,
        managebac_access: bool | None = None,
    ) -> Event:
        """Build an event for one employee, with the user's current ManageBac+ access."""
        access = managebac_access
        if access is None:
            access = self.school.managebac_access.get(employee_id)
        data: dict[str, Any] = {"id": employee_id, "managebacAccess": access}
        if self._fat(fat) and action != "deleted" and employee_id in self.school.employees:
            data["record"] = self._expanded("employee", self.school.employee(employee_id))
        return make_event(f"staff.{action}", data, self._clock())

    def events_for_all_students(
        self, fat: bool | None = None, action: str = "updated"
    ) -> list[Event]:
        return [self.student_event(i, action, fat) for i in list(self.school.students)]

    def events_for_all_contacts(
        self, fat: bool | None = None, action: str = "updated"
    ) -> list[Event]:
        return [self.contact_event(i, action, fat) for i in list(self.school.contacts)]

    def events_for_all_staff(self, fat: bool | None = None, action: str = "updated") -> list[Event]:
        return [self.staff_event(i, action, fat) for i in list(self.school.employees)]

    def random_edits(self, n: int, rng: random.Random) -> Iterator[Event]:
        """Change `n` random students in the shared SchoolData, yielding an event after each.

        Changes: names, mobile number, school e-mail (set, replaced or removed), year group,
        and status (a current student leaves; a leaver or future pupil becomes current).
        """
        ids = list(self.school.students)
        if not ids:
            return
        for _ in range(n):
            school_id = rng.choice(ids)
            record = self.school.student(school_id)
            patch = self._random_patch(record, rng)
            self.school.edit_student(school_id, patch)
            yield self.student_event(school_id, "updated")

    # Sending -----------------------------------------------------------------------------

    def batches(self, events: Iterable[Event]) -> Iterator[list[Event]]:
        """Split events into request-sized lists of at most `batch_size`."""
        batch: list[Event] = []
        for event in events:
            batch.append(event)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def signed_headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        """Return the Standard Webhooks headers for a body (one signature per secret)."""
        moment = self._clock().astimezone(UTC)
        text = body.decode("utf-8")
        signatures = " ".join(signer.sign(msg_id, moment, text) for signer in self._signers)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signatures,
            "content-type": "application/json",
        }

    async def send(self, events: Event | Sequence[Event]) -> httpx.Response:
        """POST one request: a single event as an object, several as a JSON array.

        Retries 503/429 (honouring `Retry-After`) and connection errors, at most
        `max_attempts` tries in all, keeping the webhook-id and re-signing each try; returns
        the last answer, or raises the last connection error.
        """
        batch = [events] if isinstance(events, Mapping) else list(events)
        if not 1 <= len(batch) <= MAX_EVENTS_PER_REQUEST:
            raise ValueError(f"send takes 1 to {MAX_EVENTS_PER_REQUEST} events")
        body = orjson.dumps(batch[0] if len(batch) == 1 else batch)
        msg_id = f"msg_{uuid.uuid4().hex}"
        attempt = 1
        while True:
            self.stats.requests += 1
            try:
                response = await self._client.post(
                    self.url, content=body, headers=self.signed_headers(msg_id, body)
                )
            except httpx.TransportError as exc:
                if attempt >= self._max_attempts:
                    raise
                delay = self._backoff_delay(attempt)
                _logger.warning("webhook send failed (%s); retrying in %.1fs", exc, delay)
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self._max_attempts:
                    self.stats.events += len(batch)
                    if response.is_success:
                        self.stats.accepted += len(batch)
                    return response
                delay = self._retry_delay(response, attempt)
                _logger.info("webhook answered %s; retrying in %.1fs", response.status_code, delay)
            self.stats.retries += 1
            attempt += 1
            await self._sleep(delay)

    async def send_all(self, events: Iterable[Event]) -> list[httpx.Response]:
        """Send events in batches of `batch_size`, one request after another."""
        return [await self.send(batch) for batch in self.batches(events)]

    # Internals ---------------------------------------------------------------------------

    def _fat(self, fat: bool | None) -> bool:
        return self.fat if fat is None else fat

    def _expanded(self, kind: str, record: Record) -> Record:
        return expand_record(kind, record, _ALL_EXPANSIONS) if self.expand else record

    def _backoff_delay(self, attempt: int) -> float:
        return float(min(self._max_wait, self._backoff * 2 ** (attempt - 1)))

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float:
        """Wait as `Retry-After` says (seconds or HTTP date), else back off exponentially."""
        header = response.headers.get("retry-after")
        if header is not None:
            try:
                return min(self._max_wait, max(0.0, float(header)))
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(header)
                except (TypeError, ValueError):
                    when = None
                if when is not None:
                    seconds = (when - self._clock()).total_seconds()
                    return min(self._max_wait, max(0.0, seconds))
        return self._backoff_delay(attempt)

    def _random_patch(self, record: Record, rng: random.Random) -> dict[str, Any]:
        change = rng.choice(("name", "mobile", "email", "yearGroup", "status"))
        if change == "name":
            if rng.random() < 0.5:
                return {"preferredName": None if record.get("preferredName") else "Sam"}
            surname = str(record["surname"])
            new = surname.split("-")[0] if "-" in surname else f"{surname}-{rng.choice(_NAMES)}"
            return {"surname": new}
        if change == "mobile":
            if record.get("mobileNumber") and rng.random() < 0.2:
                return {"mobileNumber": None}
            return {"mobileNumber": f"07700 900{rng.randrange(1000):03d}"}
        if change == "email":
            if record.get("schoolEmailAddress") and rng.random() < 0.3:
                return {"schoolEmailAddress": None}
            self._edits += 1
            local = ascii_fold(f"{record['forename']}.{record['surname']}")
            address = f"{local}.e{self._edits}x{rng.randrange(10_000)}@{EMAIL_DOMAIN}"
            return {"schoolEmailAddress": address}
        if change == "yearGroup":
            year = int(record.get("yearGroup") or 7)
            return {"yearGroup": year + 1 if year < 13 else year - 1}
        if str(record.get("systemStatus", "")).lower() == "current":
            today = self._clock().astimezone(UTC).date().isoformat()
            return {"systemStatus": "Leaver", "leavingDate": f"{today}T00:00:00"}
        return {"systemStatus": "Current", "leavingDate": None}


_NAMES = ("Hughes", "Edwards", "Murphy", "Clarke", "Patel", "Rossi")
_ALL_EXPANSIONS = ("nationalityIsoMappings", "languageIsoMappings", "countryIsoMappings")
