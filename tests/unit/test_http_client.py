"""The shared HTTP client honours proxy variables only when one is set (see its module)."""

from __future__ import annotations

import pytest

from consumers.adapters.http import new_session

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def test_without_proxy_variables_the_environment_is_not_read_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _clear_proxies(monkeypatch)
    session = new_session(10)
    try:
        assert session.trust_env is False
    finally:
        await session.close()


async def test_a_proxy_variable_makes_requests_go_through_the_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.school.example:3128")
    session = new_session(10)
    try:
        assert session.trust_env is True
    finally:
        await session.close()
