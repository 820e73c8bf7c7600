"""`python -m services.detector.main` as the local stack starts it: serves, answers, drains on SIGTERM."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from shared.config import PlatformSettings
from shared.s3 import FrameStore
from shared.sqs import Publisher, QueueResolver
from tests.conftest import REPO_ROOT, free_port
from tests.integration.detector.conftest import ppe_answer
from tests.integration.detector.fake_rekognition import FakeRekognition
from tests.integration.detector.helpers import published, submit_frame
from tests.support.images import photo_jpeg


async def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient() as http:
        while asyncio.get_running_loop().time() < deadline:
            assert process.poll() is None, "detector exited during start-up"
            try:
                if (await http.get(f"{url}/readyz", timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("detector never became ready")


async def test_process_analyses_a_frame_and_exits_0_on_sigterm(
    platform_settings: PlatformSettings,
    provisioned: dict[str, str],
    sqs_client: Any,
    s3_client: Any,
    resolver: QueueResolver,
    fake_rekognition: FakeRekognition,
) -> None:
    fake_rekognition.defaults["DetectProtectiveEquipment"] = ppe_answer()
    port = free_port()
    env = {
        **os.environ,
        "PPE_LOG_FORMAT": "json",
        "DETECTOR_PORT": str(port),
        "DETECTOR_HOST": "127.0.0.1",
        "DETECTOR_PPE_ENGINE": "rekognition",
        "DETECTOR_REKOGNITION_ENDPOINT_URL": fake_rekognition.url,
        "DETECTOR_CUSTOM_LABEL_MODELS": "{}",
        "DETECTOR_CUSTOM_LABEL_SITES": "{}",
    }
    process = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-m", "services.detector.main"], env=env, cwd=REPO_ROOT
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process)
        store = FrameStore(s3_client, platform_settings.frames_bucket)
        await submit_frame(
            photo_jpeg(),
            "proc-1",
            store=store,
            publisher=Publisher(sqs_client, resolver, producer="ingest"),
        )
        results: list[Any] = []
        for _ in range(100):
            results += await published(sqs_client, resolver, "frames-analyzed-reporting")
            if results:
                break
            await asyncio.sleep(0.2)
        assert [r.context.frame_id for r in results] == ["proc-1"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_missing_models_stop_start_up_with_a_clear_message(platform_settings: PlatformSettings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PPE_LOG_FORMAT": "json",
        "DETECTOR_PORT": str(free_port()),
        "DETECTOR_PPE_ENGINE": "local",
        "DETECTOR_MODEL_DIR": str(tmp_path / "empty-model-dir"),
        "DETECTOR_WORKERS": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "services.detector.main"], env=env, cwd=REPO_ROOT, capture_output=True, timeout=120
    )
    assert result.returncode == 2
    assert b"detector cannot start" in result.stderr and b"local models could not be loaded" in result.stderr
    assert b"model_store fetch" in result.stderr  # says what to run
