"""`isams-sync explain` refuses an unknown school or kind with a message naming it (exit 2),
before it opens any database; a known one is read from the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from consumers.ops.explain import EXPLAINABLE_KINDS
from tests.unit.cli_environment import use_schools

SCHOOLS = """\
schools:
  - id: demo-school
    webhook_secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    isams: {base_url: "https://demo.isams.cloud", client_id: sync, client_secret: s}
    managebac: {base_url: "https://api.managebac.com", token: t}
"""


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_schools(tmp_path, monkeypatch, SCHOOLS)


def test_an_unknown_school_is_refused_by_name(environment: Path) -> None:
    result = CliRunner().invoke(cli, ["explain", "--school", "no-such-school", "student", "1"])
    assert result.exit_code == 2
    assert "no-such-school" in result.output
    assert "demo-school" in result.output  # what there is instead
    assert not environment.exists()  # refused before any ledger was opened


def test_an_unknown_kind_is_refused_by_name(environment: Path) -> None:
    result = CliRunner().invoke(cli, ["explain", "--school", "demo-school", "teacher", "1"])
    assert result.exit_code == 2
    assert "'teacher'" in result.output
    assert all(kind in result.output for kind in EXPLAINABLE_KINDS)
    assert not environment.exists()


@pytest.mark.parametrize("kind", EXPLAINABLE_KINDS)
def test_every_kind_the_admin_api_takes_is_explained(environment: Path, kind: str) -> None:
    result = CliRunner().invoke(cli, ["explain", "--school", "demo-school", kind, "42"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{kind} 42: never seen")
