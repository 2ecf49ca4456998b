"""The composition root of the consumer: builds real adapters from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from app.settings import School, SchoolsFile, Settings
from consumers.adapters.http import new_http_client
from consumers.adapters.isams import IsamsClient
from consumers.adapters.ledger import Ledger
from consumers.adapters.managebac import ManagebacClient, RetryPolicy
from consumers.context import SchoolPorts
from consumers.service import SyncService


def school_ports(school: School, http: httpx.AsyncClient, retry: RetryPolicy) -> SchoolPorts:
    """Build the iSAMS and ManageBac+ clients of one school."""
    return SchoolPorts(
        settings=school,
        isams=IsamsClient(
            http,
            str(school.isams.base_url),
            school.isams.client_id,
            school.isams.client_secret.get_secret_value(),
        ),
        managebac=ManagebacClient(
            http,
            str(school.managebac.base_url),
            school.managebac.token.get_secret_value(),
            school.managebac.max_requests_per_second,
            retry,
        ),
    )


@asynccontextmanager
async def build_sync_service(
    settings: Settings,
    schools: SchoolsFile,
    retry: RetryPolicy | None = None,
    ledger: Ledger | None = None,
) -> AsyncIterator[SyncService]:
    """Yield a ready SyncService; close what it opened on the way out.

    A `ledger` passed in is used as is (already migrated) and left open.
    """
    owned = ledger is None
    if ledger is None:
        ledger = Ledger.from_url(settings.database_url)
        await ledger.create_schema()
    async with new_http_client(15.0) as http:
        policy = retry or RetryPolicy()
        ports = {school.id: school_ports(school, http, policy) for school in schools.schools}
        try:
            yield SyncService(ports, ledger)
        finally:
            if owned:
                await ledger.close()
