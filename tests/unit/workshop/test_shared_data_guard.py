"""The CI guard: with PPE_REQUIRE_SHARED_DATA=1 a run that skipped a test for missing shared data fails; `.ci/run`
sets it whenever the data is expected (../shared/data beside the repository, or PPE_SHARED_DATA set)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PROBE = '''
def test_needs_the_photos(shared_data):
    assert shared_data.is_dir()
'''


def run_probe(tmp_path: Path, *, data: Path, require: str | None) -> subprocess.CompletedProcess[str]:
    """A one-test pytest run in its own folder, with the project's shared-data plugin, as CI would run it."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["tests.support.shared_data_guard"]\n')
    (suite / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "PPE_REQUIRE_SHARED_DATA"}
    env |= {"PYTHONPATH": str(REPO_ROOT), "PPE_SHARED_DATA": str(data)}
    if require is not None:
        env["PPE_REQUIRE_SHARED_DATA"] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(suite)],
        cwd=suite, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_without_data_the_test_skips_naming_the_folder_and_the_run_passes(tmp_path: Path) -> None:
    result = run_probe(tmp_path, data=tmp_path / "absent", require=None)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "needs the real photos" in result.stdout
    assert "PPE_SHARED_DATA" in result.stdout and str(tmp_path / "absent") in result.stdout


def test_a_skip_for_missing_data_fails_the_run_when_the_data_is_required(tmp_path: Path) -> None:
    result = run_probe(tmp_path, data=tmp_path / "absent", require="1")
    assert result.returncode == 1, result.stdout
    assert "shared data required" in result.stdout and "test_needs_the_photos" in result.stdout


def test_with_the_data_present_the_required_run_passes(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    result = run_probe(tmp_path, data=tmp_path / "data", require="1")
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout


@pytest.mark.parametrize("shared_data_env", [None, "elsewhere"])
def test_ci_run_requires_the_data_whenever_it_is_expected(tmp_path: Path, shared_data_env: str | None) -> None:
    # GIVEN a stand-in `make` that prints what .ci/run handed it (the real `make test` is the whole suite)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "make").write_text(
        '#!/bin/sh\necho "make $* PPE_REQUIRE_SHARED_DATA=${PPE_REQUIRE_SHARED_DATA:-unset}"\n'
    )
    (bin_dir / "make").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PPE_SHARED_DATA", "PPE_REQUIRE_SHARED_DATA")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    if shared_data_env is not None:
        env["PPE_SHARED_DATA"] = str(tmp_path / shared_data_env)
    # WHEN .ci/run runs
    result = subprocess.run([str(REPO_ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)
    # THEN it ran `make lint` and `make test`, requiring the data when PPE_SHARED_DATA is set or ../shared/data lies beside the repo
    expected = shared_data_env is not None or (REPO_ROOT.parent / "shared" / "data").is_dir()
    assert result.returncode == 0, result.stderr
    flag = "1" if expected else "unset"
    # (make lint first: ruff + mypy)
    assert result.stdout.strip().splitlines() == [
        f"make lint PPE_REQUIRE_SHARED_DATA={flag}", f"make test PPE_REQUIRE_SHARED_DATA={flag}"
    ]
