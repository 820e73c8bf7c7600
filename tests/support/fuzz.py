"""Run schemathesis against a service's OpenAPI schema, as the CLI a person would type, with a fixed seed and a
bounded time; used by every service's fuzz test (tests/integration/*/test_*fuzz*.py, test_service.py).

PPE_FUZZ_MAX_TIME_S / PPE_FUZZ_MAX_EXAMPLES raise the budget for a longer run (docs/reliability.md, "Fuzzing").
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SEED = 20261207
CHECKS = "not_a_server_error,response_schema_conformance"


@dataclass(frozen=True)
class Fuzzed:
    returncode: int
    output: str
    command: str

    @property
    def cases(self) -> int:
        """Test cases schemathesis generated and sent (its summary line `N generated, ...`)."""
        found = re.search(r"(\d+) generated", self.output)
        return int(found.group(1)) if found else 0

    @property
    def every_operation_tested(self) -> bool:
        """The summary says every operation of the schema was selected and tested (`Selected: n/n`, `Tested: n`)."""
        selected = re.search(r"Selected: (\d+)/(\d+)", self.output)
        tested = re.search(r"Tested: (\d+)", self.output)
        return bool(selected and tested and selected.group(1) == selected.group(2) == tested.group(1))


def fuzz(
    schema_url: str,
    *,
    report_dir: Path,
    headers: tuple[str, ...] = (),
    hooks: str | None = None,
    env: dict[str, str] | None = None,
    checks: str = CHECKS,
    max_examples: int = 15,
    max_time_s: int = 30,
) -> Fuzzed:
    """`schemathesis run` on the schema; returns its exit status, output and the command line (to reproduce)."""
    max_time_s = int(os.environ.get("PPE_FUZZ_MAX_TIME_S", max_time_s))
    max_examples = int(os.environ.get("PPE_FUZZ_MAX_EXAMPLES", max_examples))
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        schema_url,
        "--checks",
        checks,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--max-time",
        str(max_time_s),
        "--request-timeout",
        "20",
        "--no-color",
        "--report-dir",
        str(report_dir),
    ]
    for header in headers:
        command += ["--header", header]
    extra = {**(env or {}), **({"SCHEMATHESIS_HOOKS": hooks} if hooks else {})}
    repo_root = str(Path(__file__).resolve().parents[2])  # the hooks module is imported from the repository root
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=max_time_s + 180,
        cwd=report_dir,  # schemathesis keeps a .schemathesis/ cache in its working directory
        env={**os.environ, **extra, "PYTHONPATH": os.pathsep.join(filter(None, [repo_root, os.getenv("PYTHONPATH")]))},
        check=False,
    )
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in extra.items())
    return Fuzzed(result.returncode, result.stdout + result.stderr, f"{shown} {shlex.join(command[1:])}".strip())
