"""Start real service processes for integration and end-to-end tests, and stop them cleanly."""

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shared.config import PlatformSettings
from tests.conftest import REPO_ROOT, free_port


def service_env(settings: PlatformSettings, database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AWS_ENDPOINT_URL": settings.aws_endpoint_url or "",
            "AWS_REGION": settings.aws_region,
            "DATABASE_URL": database_url,
            "PPE_QUEUE_PREFIX": settings.queue_prefix,
            "PPE_FRAMES_BUCKET": settings.frames_bucket,
            "PPE_LOG_FORMAT": "console",
        }
    )
    env.update(extra)
    return env


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not healthy within {timeout_s}s")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextmanager
def running_service(name: str, env: dict[str, str], *, port: int | None = None, log_path: Path | None = None
                    ) -> Iterator[str]:
    """Runs `python -m services.<name>.main` on a free port; yields its base URL."""
    port = port or free_port()
    env = {**env, f"{name.upper()}_PORT": str(port)}
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", f"services.{name}.main"], env=env, cwd=REPO_ROOT,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base}/healthz", process)
        yield base
    finally:
        code = stop(process)
        if log_path:
            log.close()  # type: ignore[union-attr]
        assert code == 0, f"{name} exited with {code} on SIGTERM"


def new_secret() -> str:
    return secrets.token_urlsafe(24)
