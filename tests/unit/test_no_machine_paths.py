"""The repository names no machine path: data is ../shared/data beside it or $PPE_SHARED_DATA, models and other
caches live under ~/.cache/ppe-platform, the venv is .venv in the checkout. An absolute folder such as the work or
root home of one machine works there only (tests/conftest.py once fell back to one)."""

import re
import subprocess

from tests.conftest import REPO_ROOT

MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root|home/[\w.-]+|Users/[\w.-]+)/")
TEXT = (".py", ".md", ".toml", ".yaml", ".yml", ".txt", ".sh", ".cfg", ".ini", ".cjs", ".js", ".html", ".csv")
# Records of past training runs: they state where that run read and wrote, as it happened.
RUN_RECORDS = {"services/detector/local_engine/weights/part_head.metrics.json"}


def test_no_tracked_text_file_names_a_machine_path() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    named = [f for f in files if f.endswith(TEXT) or f in ("Makefile", ".ci/run")]
    assert len(named) > 100
    found = [
        f"{name}:{number}: {line.strip()}"
        for name in named
        if name not in RUN_RECORDS and (REPO_ROOT / name).is_file()
        for number, line in enumerate((REPO_ROOT / name).read_text(errors="replace").splitlines(), 1)
        if MACHINE_PATH.search(line)
    ]
    assert found == [], "machine paths (use ../shared/data, $PPE_SHARED_DATA or ~/.cache/ppe-platform):\n" + "\n".join(
        found
    )
