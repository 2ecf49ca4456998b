"""Shared by the poll tests: the sync stack's iSAMS simulator (over HTTP) and broker, poll
cycles run through the composition root, and what they put on the topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from consumers.adapters.isams import IsamsRetryPolicy
from consumers.adapters.kafka.reader import read_to_end
from consumers.bootstrap import Services, open_services
from consumers.capture.poll import poll_school
from consumers.capture.poll_report import PollReport
from consumers.events import QueuedChange
from sim.isams.store import roll_of
from tests.integration.sync_stack import SCHOOL, Stack

# Quick retries, and 429 waits as the simulator asks (its Retry-After is whole seconds).
FAST_ISAMS = IsamsRetryPolicy(
    attempts=6, timeout=30, wait_initial=0.05, wait_max=0.5, wait_jitter=0.05, retry_after_max=5
)


@dataclass
class PollRig:
    """Poll the stack's school and read back what each cycle published."""

    stack: Stack
    services: Services
    sim: httpx.AsyncClient
    seen: set[tuple[str, int, int]] = field(default_factory=set)

    async def cycle(self, force: bool = False) -> PollReport:
        ports = self.services.ports_of(SCHOOL)
        assert ports is not None
        return await poll_school(
            SCHOOL,
            ports.isams,
            self.services.ledger,
            self.services.publisher,
            self.services.topics,
            force=force,
        )

    async def published(self) -> list[QueuedChange]:
        """Return what reached the topics since the last call (each message once): the live
        one, and the bulk lane where a school's first cycle goes."""
        topics = self.services.topics
        records = [
            record
            for topic in (topics.changes, topics.bulk)
            for record in await read_to_end(self.stack.settings.kafka, topic)
        ]
        new = [r for r in records if (r.topic, r.partition, r.offset) not in self.seen]
        self.seen |= {(r.topic, r.partition, r.offset) for r in new}
        return [QueuedChange.from_bytes(r.value) for r in new]

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the simulator's control API (`/_sim/...`)."""
        response = await self.sim.request(method, f"/_sim{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def current_pupils(self) -> list[str]:
        return [s["schoolId"] for s in self.stack.school.all_students() if roll_of(s) == "current"]

    def listed_records(self) -> int:
        """Count what the poller reads: current pupils, alumni, their contacts, staff."""
        school = self.stack.school
        pupils = [s for s in school.all_students() if roll_of(s) != "applicants"]
        contacts = school.listed_contacts(0, 10**6, include_deceased=True)[0]
        return len(pupils) + contacts + len(school.all_employees())


def isams_url(stack: Stack) -> str:
    return str(stack.schools.schools[0].isams.base_url).rstrip("/")


@asynccontextmanager
async def poll_rig(stack: Stack) -> AsyncIterator[PollRig]:
    """Build the services as the poll process does, connected, over the stack's parts."""
    async with (
        open_services(stack.settings, stack.schools, isams_retry=FAST_ISAMS) as services,
        httpx.AsyncClient(base_url=isams_url(stack), timeout=10) as sim,
    ):
        await services.ledger.create_schema()
        await services.start_publisher()
        yield PollRig(stack, services, sim)


def kinds(changes: list[QueuedChange]) -> set[tuple[str, str]]:
    return {(c.type, c.event.record_id) for c in changes}
