"""`isams-sync poll` refuses bad arguments with exit 2, before it opens the ledger or Kafka;
which schools it polls is decided by `schools_to_poll`; `explain … poll LIST` shows how the
poller stands with one of a school's iSAMS lists."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from consumers.adapters.ledger import Ledger
from consumers.domain.records import Status, SyncRecord
from consumers.poller import PollRequestError, schools_to_poll
from consumers.settings import load_schools
from tests.unit.cli_environment import use_schools

SCHOOLS = """\
schools:
  - id: polled-school
    webhook_secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    isams: {base_url: "https://a.isams.cloud", client_id: c, client_secret: s, poll_interval_s: 60}
    managebac: {base_url: "https://api.managebac.com", token: t}
  - id: webhook-school
    webhook_secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    isams: {base_url: "https://b.isams.cloud", client_id: c, client_secret: s}
    managebac: {base_url: "https://api.managebac.com", token: t}
"""


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_schools(tmp_path, monkeypatch, SCHOOLS)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--school", "no-such-school"], "polled-school"),  # names what there is
        (["--force"], "--school"),
        (["--school", "webhook-school"], "--once"),  # no interval: one-off runs only
    ],
    ids=["unknown-school", "force-without-school", "unscheduled-school"],
)
def test_bad_arguments_are_refused_with_2_before_anything_opens(
    environment: Path, args: list[str], said: str
) -> None:
    result = CliRunner().invoke(cli, ["poll", *args])
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert not environment.exists()


def test_a_bad_schools_file_is_refused_with_2(
    environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCHOOLS.replace("poll_interval_s: 60", "poll_interval_s: -5"), "utf-8")
    monkeypatch.setenv("SYNC_SCHOOLS_FILE", str(bad))
    result = CliRunner().invoke(cli, ["poll", "--once"])
    assert result.exit_code == 2
    assert "poll_interval_s" in result.output


def test_schools_with_an_interval_are_polled_unless_some_are_named(tmp_path: Path) -> None:
    path = tmp_path / "schools.yaml"
    path.write_text(SCHOOLS, encoding="utf-8")
    schools = load_schools(path, environ={})

    assert [s.id for s in schools_to_poll(schools, [], once=False)] == ["polled-school"]
    named = schools_to_poll(schools, ["webhook-school", "polled-school"], once=True)
    assert [s.id for s in named] == ["webhook-school", "polled-school"]
    with pytest.raises(PollRequestError, match="webhook-school"):
        schools_to_poll(schools, ["webhook-school"], once=False)


def test_explain_says_a_list_was_never_polled(environment: Path) -> None:
    result = CliRunner().invoke(cli, ["explain", "--school", "polled-school", "poll", "contacts"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("poll contacts: never polled")


def test_explain_refuses_an_unknown_list(environment: Path) -> None:
    result = CliRunner().invoke(cli, ["explain", "--school", "polled-school", "poll", "parents"])
    assert result.exit_code == 2
    assert "'parents'" in result.output
    assert all(name in result.output for name in ("students", "alumni", "contacts", "employees"))
    assert not environment.exists()


def test_explain_shows_a_blocked_list_with_isams_words(environment: Path) -> None:
    reason = "blocked: iSAMS refused the list (forbidden): The user is not authorised"

    async def write_row() -> None:
        ledger = Ledger.from_url(f"sqlite+aiosqlite:///{environment}")
        try:
            await ledger.create_schema()
            await ledger.put(
                SyncRecord(
                    school="polled-school",
                    kind="poll",
                    isams_id="contacts",
                    status=Status.FAILED,
                    reason=reason,
                    last_applied_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
                )
            )
        finally:
            await ledger.close()

    asyncio.run(write_row())
    result = CliRunner().invoke(cli, ["explain", "--school", "polled-school", "poll", "contacts"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "poll contacts: blocked",
        f"  why: {reason}",
        "  last cycle: 2026-12-01T10:00:00+00:00",
    ]
