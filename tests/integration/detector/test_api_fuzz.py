"""`python -m services.detector.main` (local engine, real models) fuzzed by schemathesis from its OpenAPI schema,
the Rekognition-compatible `POST /` included: every request is SigV4-signed (tests/support/sigv4_hooks.py, botocore's
signer) so the generated bodies reach the handler, and the schema's examples send real photos (tests/fixtures) so
the engine runs. No server error, every answer as documented (services/detector/openapi.py)."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.config import PlatformSettings
from tests.conftest import REPO_ROOT, free_port, wait_http
from tests.integration.detector.conftest import API_KEYS
from tests.support.fuzz import fuzz

pytestmark = pytest.mark.models


@pytest.fixture
def detector_url(platform_settings: PlatformSettings, provisioned: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "PPE_LOG_FORMAT": "json",
        "DETECTOR_PORT": str(port),
        "DETECTOR_CONSUME": "false",
        "DETECTOR_PPE_ENGINE": "local",
        "DETECTOR_WORKERS": "1",
        "DETECTOR_API_KEYS": API_KEYS,
        "DETECTOR_API_S3_OBJECTS": json.dumps([f"{platform_settings.frames_bucket}/in/"]),
    }
    log_path = tmp_path / "detector.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.detector.main"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", timeout_s=120)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def outcomes(url: str) -> dict[str, float]:
    """ppe_detector_api_requests_total by (operation, outcome), from the service's own metrics."""
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("ppe_detector_api_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            counts[labels.removeprefix("ppe_detector_api_requests_total")] = float(value)
    return counts


def test_fuzzing_the_openapi_schema_signed_finds_no_server_error_and_no_undocumented_answer(
    detector_url: str, tmp_path: Path
) -> None:
    result = fuzz(
        f"{detector_url}/openapi.json",
        report_dir=tmp_path,
        hooks="tests.support.sigv4_hooks",
        env={"PPE_FUZZ_SIGV4": API_KEYS},
    )
    print(f"detector: {result.cases} cases\n{result.command}")
    assert result.returncode == 0, result.output[-8000:]
    assert result.cases > 0 and result.every_operation_tested, result.output[-3000:]
    # the signature let the fuzz through to the operations, and real photos got real answers
    seen = outcomes(detector_url)
    assert any('operation="DetectProtectiveEquipment",outcome="ok"' in k for k in seen), seen
    assert any('operation="DetectCustomLabels"' in k and "InvalidParameterException" in k for k in seen), seen
