"""`python -m services.notifier.main` as a real process, its rules / channels / incidents API fuzzed by
schemathesis from its own OpenAPI schema: no server error, every answer as documented (tests/support/fuzz.py)."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import PlatformSettings
from tests.conftest import REPO_ROOT, free_port, wait_http
from tests.integration.notifier.conftest import ADMIN_TOKEN, LOOPBACK, SECRETS_KEY
from tests.support.fuzz import fuzz


@pytest.fixture
def notifier_url(
    platform_settings: PlatformSettings, provisioned: dict[str, str], migrated_database_url: str, tmp_path: Path
) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": migrated_database_url,
        "NOTIFIER_ADMIN_TOKEN": ADMIN_TOKEN,
        "NOTIFIER_SECRETS_KEY": SECRETS_KEY,
        "NOTIFIER_WEBHOOK_ALLOWED_NETWORKS": LOOPBACK,
        "NOTIFIER_PORT": str(port),
        "PPE_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "notifier.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.notifier.main"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", timeout_s=60)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        if os.environ.get("PPE_FUZZ_SHOW_LOG"):
            print(log_path.read_text(errors="replace")[-20000:])


def test_fuzzing_the_openapi_schema_finds_no_server_error_and_no_undocumented_answer(
    notifier_url: str, tmp_path: Path
) -> None:
    result = fuzz(
        f"{notifier_url}/openapi.json", report_dir=tmp_path, headers=(f"Authorization: Bearer {ADMIN_TOKEN}",)
    )
    print(f"notifier: {result.cases} cases\n{result.command}")
    assert result.returncode == 0, result.output[-8000:]
    assert result.cases > 0 and result.every_operation_tested, result.output[-3000:]
