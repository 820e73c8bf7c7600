"""The short chaos drill (`python -m benchmarks.chaos --short`): every fault type once under load, nothing
lost, nothing duplicated, nothing dead-lettered, the platform heals alone. The full drill and the soak are
in docs/reliability.md."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

SEED = "20261205"


def test_the_short_chaos_drill_passes(shared_data: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.chaos", "--short", "--seed", SEED],
        cwd=REPO_ROOT,
        env={**os.environ, "PPE_SHARED_DATA": str(shared_data)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "PASS" in result.stdout
    # the drill really injected every fault type
    for fault in ("kill ingest", "kill detector", "kill model worker", "kill notifier", "kill reporting",
                  "stop postgres", "stop emulator"):
        assert f"injecting: {fault}" in result.stdout, fault
