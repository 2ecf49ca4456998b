"""Show each fault test's counts line at the end of the run, passed or failed."""

from __future__ import annotations

import pytest

from tests.faults.harness import SUMMARIES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARIES:
        terminalreporter.section("fault tests: counts")
        for line in SUMMARIES:
            terminalreporter.write_line(line)
