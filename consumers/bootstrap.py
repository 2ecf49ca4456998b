"""The one composition root: `open_services(settings)` builds every real adapter once.

`serve`, `consume`, every CLI command, the admin API and the integration tests get their
ledger, HTTP client, school clients and Kafka publisher here, so there is one ledger
factory, one HTTP client policy, one Kafka producer factory (with its renewal rule, in
consumers/adapters/kafka/producer.py). Building is cheap and connects to nothing: a
part connects when first used (the publisher when started), and everything is closed when
the context ends. Unit tests build `Services` themselves, with the fakes of tests/fakes.py.
See docs/architecture.md ("The composition root").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from consumers.adapters.budget import RequestBudget
from consumers.adapters.http import HttpPolicy, new_http_client
from consumers.adapters.isams import IsamsClient, IsamsRetryPolicy
from consumers.adapters.kafka.admin import ensure_topics
from consumers.adapters.kafka.connection import Kafka
from consumers.adapters.kafka.publisher import KafkaPublisher
from consumers.adapters.ledger import Ledger
from consumers.adapters.managebac import ManagebacClient, RetryPolicy
from consumers.blocks import SchoolBlocks
from consumers.ports import LedgerPort, PublisherPort
from consumers.settings import School, SchoolsFile, Settings, Topics, load_schools
from consumers.sync.context import SchoolPorts
from consumers.sync.service import SyncService
from consumers.year_groups import INTERVAL, YearGroupWatch

TOPIC_CREATION_TIMEOUT = 10.0


@dataclass
class Services:
    """Everything one process of the service works with, built once."""

    settings: Settings
    schools: SchoolsFile
    ledger: LedgerPort
    publisher: PublisherPort
    school_ports: Mapping[str, SchoolPorts]
    budgets: Mapping[str, RequestBudget] = field(default_factory=dict)
    _owned_publisher: KafkaPublisher | None = field(default=None, repr=False)
    _sync: SyncService | None = field(default=None, repr=False)
    _watch: YearGroupWatch | None = field(default=None, repr=False)

    @property
    def kafka(self) -> Kafka:
        return self.settings.kafka

    @property
    def topics(self) -> Topics:
        return self.settings.topics

    async def start_publisher(self) -> None:
        """Connect the Kafka publisher built here (a publisher passed in is the caller's);
        if Kafka is down it keeps reconnecting in the background."""
        if self._owned_publisher is not None:
            await self._owned_publisher.start()

    def sync_service(self) -> SyncService:
        """Return the one SyncService over every school's ports and the ledger."""
        if self._sync is None:
            blocks = SchoolBlocks.of(
                self.ledger, self.school_ports, recheck=self.settings.token_recheck_seconds
            )
            self._sync = SyncService(self.school_ports, self.ledger, blocks)
        return self._sync

    def set_managebac_share(self, share: float) -> None:
        """Run every school's ManageBac+ budget at `share` of it: this process's part of the
        work (docs/design.md §4: N replicas together stay within each school's budget)."""
        for budget in self.budgets.values():
            budget.set_share(share)

    def year_group_watch(self, interval: float = INTERVAL) -> YearGroupWatch:
        """Return the one watch of the `mappings.grades` schools' year groups (the consume
        process starts it), over the sync service's contexts."""
        if self._watch is None:
            self._watch = YearGroupWatch(
                self.sync_service().contexts, self.ledger, interval=interval
            )
        return self._watch

    def ports_of(self, school_id: str) -> SchoolPorts | None:
        """Return one school's ports, or None for a school not in the schools file."""
        return self.school_ports.get(school_id)


def school_ports(
    school: School,
    http: httpx.AsyncClient,
    retry: RetryPolicy,
    budget: RequestBudget | None = None,
    isams_retry: IsamsRetryPolicy | None = None,
) -> SchoolPorts:
    """Build the iSAMS and ManageBac+ clients of one school."""
    return SchoolPorts(
        settings=school,
        isams=IsamsClient(
            http,
            str(school.isams.base_url),
            school.isams.client_id,
            school.isams.client_secret.get_secret_value(),
            isams_retry,
        ),
        managebac=ManagebacClient(
            http,
            str(school.managebac.base_url),
            school.managebac.token.get_secret_value(),
            school.managebac.max_requests_per_second,
            retry,
            budget,
        ),
    )


def new_publisher(settings: Settings, *, client_id: str, timeout: float = 5.0) -> KafkaPublisher:
    """Build the publisher of `isams.changes`, creating the topics on each connection when
    `SYNC_KAFKA_CREATE_TOPICS` is on (not started: the caller starts it when it needs it)."""

    async def create_topics() -> None:
        await ensure_topics(
            settings.kafka,
            settings.topics.all(),
            settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor,
            timeout=TOPIC_CREATION_TIMEOUT,
        )

    return KafkaPublisher(
        settings.kafka,
        prepare=create_topics if settings.kafka_create_topics else None,
        timeout=timeout,
        client_id=client_id,
    )


def unconnected_services(settings: Settings, schools: SchoolsFile) -> Services:
    """Return services that are never started nor closed, for describing the app (its
    OpenAPI document): an in-memory ledger engine, a publisher that never connects."""
    return Services(
        settings=settings,
        schools=schools,
        ledger=Ledger.from_url("sqlite+aiosqlite:///:memory:"),
        publisher=KafkaPublisher(settings.kafka),
        school_ports={},
    )


@asynccontextmanager
async def open_services(
    settings: Settings,
    schools: SchoolsFile | None = None,
    *,
    client_id: str = "isams-sync",
    publish_timeout: float = 5.0,
    retry: RetryPolicy | None = None,
    isams_retry: IsamsRetryPolicy | None = None,
    http_policy: HttpPolicy | None = None,
    publisher: PublisherPort | None = None,
) -> AsyncIterator[Services]:
    """Build the real services from settings (the schools file unless `schools` is given).

    A `publisher` passed in is used as is and neither started nor stopped here (tests pass
    one that fails on purpose); otherwise the Kafka publisher built here is stopped on exit.
    `retry` and `isams_retry` bound the ManageBac+ and iSAMS clients' retries (tests
    shrink them).
    """
    chosen = schools if schools is not None else load_schools(settings.schools_file)
    ledger = Ledger.from_url(settings.database_url)
    built: KafkaPublisher | None = None
    if publisher is None:
        built = new_publisher(settings, client_id=client_id, timeout=publish_timeout)
        publisher = built
    policy = retry or RetryPolicy()
    budgets = {
        school.id: RequestBudget(school.managebac.max_requests_per_second)
        for school in chosen.schools
    }
    try:
        async with new_http_client(http_policy) as http:
            yield Services(
                settings=settings,
                schools=chosen,
                ledger=ledger,
                publisher=publisher,
                school_ports={
                    school.id: school_ports(school, http, policy, budgets[school.id], isams_retry)
                    for school in chosen.schools
                },
                budgets=budgets,
                _owned_publisher=built,
            )
    finally:
        if built is not None:
            await built.stop()
        await ledger.close()
