"""pytest plugin: the `shared_data` fixture, and a guard that fails the run when it skipped where data is expected.

Without ../shared/data (and PPE_SHARED_DATA unset) the tests that need the photos skip, each with one message naming
the folder looked at and how to provide it. CI lays the data beside the repository, and `.ci/run` then sets
PPE_REQUIRE_SHARED_DATA=1: with it set, any such skip turns the run into a failure (exit status 1), so a broken
lookup can never pass CI by quietly skipping the data tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model_workshop.settings import SharedDataMissing, shared_data_dir

REQUIRE_ENV = "PPE_REQUIRE_SHARED_DATA"
SKIP_PREFIX = "needs the real photos: "


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared photo data; a test that needs it skips, saying what is missing and how to provide it."""
    try:
        return shared_data_dir()
    except SharedDataMissing as missing:
        pytest.skip(f"{SKIP_PREFIX}{missing}")


class Guard:
    """Counts the skips for missing shared data; fails the session on them when REQUIRE_ENV is 1."""

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        if report.skipped and SKIP_PREFIX in reason:
            self.skipped.append(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if os.environ.get(REQUIRE_ENV) == "1" and self.skipped and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if os.environ.get(REQUIRE_ENV) == "1" and self.skipped:
            terminalreporter.section("shared data required", sep="=", red=True, bold=True)
            terminalreporter.line(
                f"{len(self.skipped)} test(s) skipped for missing shared data while {REQUIRE_ENV}=1 "
                "(the data is expected here: .ci/run found ../shared/data or PPE_SHARED_DATA); failing the run. "
                f"First: {self.skipped[0]}"
            )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(Guard(), "shared-data-guard")
