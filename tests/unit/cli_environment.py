"""The environment a CLI test runs the command in: a schools file and a SQLite ledger path."""

from __future__ import annotations

from pathlib import Path

import pytest


def use_schools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schools_yaml: str) -> Path:
    """Point the command at `schools_yaml` and a ledger under `tmp_path`; return its path."""
    schools = tmp_path / "schools.yaml"
    schools.write_text(schools_yaml, encoding="utf-8")
    database = tmp_path / "ledger" / "sync.db"
    monkeypatch.setenv("SYNC_SCHOOLS_FILE", str(schools))
    monkeypatch.setenv("SYNC_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    return database
