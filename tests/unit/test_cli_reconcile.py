"""`isams-sync reconcile` and `backfill --dry-run` on the fakes: exit codes (0 ran, 3 held,
2 bad arguments, 1 errors), the drift report and the plan as tables or JSON, masked.

The command builds its services with the composition root; here the root hands back the
fakes' graph (as tests/fakes.py's `fake_services` does for the app), so what is tested is
the command's own translation: arguments in, exit code and output out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import consumers.bootstrap
from app.cli import cli
from consumers.bootstrap import Services
from consumers.ports import ManagebacUnavailableError
from consumers.settings import SchoolsFile, Settings
from tests.fakes import SECRET, FakePublisher, FakeSync
from tests.unit.capture.test_reconcile import PUPILS, synced_school

SCHOOLS = f"""\
schools:
  - id: unit-school
    webhook_secrets: ["{SECRET}"]
    isams: {{base_url: "https://isams.invalid", client_id: unit, client_secret: unused}}
    managebac: {{base_url: "https://managebac.invalid", token: unused}}
    mappings: {{year_groups: {{7: 1007, 8: 1008, 9: 1009}}}}
"""


@pytest.fixture
def school(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSync]:
    """A synced school on the fakes, which the composition root hands the command."""
    schools = tmp_path / "schools.yaml"
    schools.write_text(SCHOOLS, encoding="utf-8")
    monkeypatch.setenv("SYNC_SCHOOLS_FILE", str(schools))
    monkeypatch.setenv("SYNC_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    sync = asyncio.run(synced_school())
    publisher = FakePublisher()

    @asynccontextmanager
    async def fakes(
        settings: Settings, chosen: SchoolsFile | None = None, **_: Any
    ) -> AsyncIterator[Services]:
        assert chosen is not None
        yield Services(
            settings=settings,
            schools=chosen,
            ledger=sync.ledger,
            publisher=publisher,
            school_ports={sync.school.id: sync.school.ports()},
        )

    monkeypatch.setattr(consumers.bootstrap, "open_services", fakes)
    yield sync
    assert publisher.published == []  # neither command publishes in these tests


def run(*args: str) -> tuple[int, str]:
    """Run the command; return its exit code and what it printed (stdout, then stderr)."""
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "220"})
    return result.exit_code, result.output


def run_json(*args: str) -> tuple[int, Any]:
    """Run the command with `--json`; return its exit code and stdout parsed."""
    result = CliRunner().invoke(cli, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_an_unknown_school_is_refused_by_name(school: FakeSync) -> None:
    code, output = run("reconcile", "--school", "no-such-school")
    assert code == 2
    assert "no-such-school" in output and "unit-school" in output


def test_drift_is_repaired_and_reported_masked(school: FakeSync) -> None:
    school.managebac.student("C-S4").fields["first_name"] = "Augusta"

    code, output = run("reconcile", "--school", "unit-school")

    assert code == 0, output
    assert school.managebac.student("C-S4").fields["first_name"] == "Ada"
    assert "Drift report" in output
    assert "first_name: A… → A…" in output
    assert "Augusta" not in output and "Lovelace" not in output
    assert run("reconcile", "--school", "unit-school")[1].count("No drift") == 1


def test_a_dry_run_prints_the_plan_and_writes_nothing(school: FakeSync) -> None:
    school.managebac.student("C-S4").fields["first_name"] = "Augusta"
    mark = len(school.managebac.requests)

    code, output = run("reconcile", "--school", "unit-school", "--dry-run")

    assert code == 0, output
    assert school.managebac.writes_since(mark) == []
    assert "Reconcile plan (dry run: nothing written)" in output
    assert "update" in output and "S4" in output


def test_the_guard_holds_with_exit_3_until_forced(school: FakeSync) -> None:
    for number in range(1, PUPILS // 2 + 1):
        school.isams.remove_student(f"S{number}")

    code, output = run("reconcile", "--school", "unit-school")
    assert code == 3, output
    assert "--force" in output and "held" in output
    assert not school.managebac.student("C-S1").archived

    code, output = run("reconcile", "--school", "unit-school", "--force")
    assert code == 0, output
    assert school.managebac.student("C-S1").archived


def test_json_parses_and_has_the_totals(school: FakeSync) -> None:
    school.managebac.student("C-S4").fields["first_name"] = "Augusta"

    code, document = run_json("reconcile", "--school", "unit-school", "--dry-run")

    assert code == 0
    assert document["dry_run"] is True
    assert document["totals"]["student"] == {"update": 1, "unchanged": PUPILS - 1}
    assert document["totals"]["all"]["update"] == 1
    (item,) = document["items"]
    assert item["fields"] == [{"field": "first_name", "from": "A…", "to": "A…"}]
    assert document["guard"]["allowed"] is True


def test_a_system_that_does_not_answer_exits_1_with_the_reason(school: FakeSync) -> None:
    school.managebac.failing = ManagebacUnavailableError("gave up after retries: 503")

    code, output = run("reconcile", "--school", "unit-school")

    assert code == 1
    assert "reconcile stopped: ManageBac+ did not answer" in output
    code, document = run_json("reconcile", "--school", "unit-school")
    assert code == 1 and document["error"].startswith("ManageBac+ did not answer")


def test_a_repair_managebac_refuses_exits_1_and_is_listed(school: FakeSync) -> None:
    student = school.managebac.student("C-S5")
    student.fields["email"] = "someone@else.example"
    school.managebac.seed("teachers", email="s5@school.example")

    code, output = run("reconcile", "--school", "unit-school")

    assert code == 1, output
    assert "ManageBac+ refused it (422: email has already been taken)" in output


def test_a_backfill_dry_run_prints_the_same_plan(school: FakeSync) -> None:
    school.isams.update_student("S4", forename="Augusta")
    school.isams.remove_student("S12")

    code, output = run("backfill", "--school", "unit-school", "--dry-run")

    assert code == 0, output
    assert "Backfill plan (dry run: nothing queued)" in output
    assert "first_name: A… → A…" in output and "archive" in output
    assert "Augusta" not in output

    code, document = run_json("backfill", "--school", "unit-school", "--dry-run")
    assert code == 0
    assert document["totals"]["student"] == {"update": 1, "archive": 1, "unchanged": PUPILS - 2}
    assert {item["isams_id"] for item in document["items"]} == {"S4", "S12"}
