"""LocalStack (SQS / S3 / SNS) as a host process, for benchmarks that want a second backend besides moto.

LocalStack is NOT a project dependency: it lives in its own virtual environment, never in the project's.
Install it once (pins from shared/REFERENCE.md section 3):

    python3.11 -m venv ~/.cache/ppe-platform/localstack-venv
    ~/.cache/ppe-platform/localstack-venv/bin/pip install "localstack-core[runtime]==4.13.1" "cbor2<6" \
        pyopenssl==25.3.0 "cryptography<47" service_identity

Start one on a free port and print its endpoint (Ctrl-C stops it):

    python benchmarks/localstack.py                       # LOCALSTACK_PYTHON=/path/to/python to use another venv

or from a benchmark: `with localstack() as endpoint: ...`, or pass `--endpoint http://127.0.0.1:PORT` to a
benchmark that accepts it (notifier_bench.py, ingest_bench.py's --aws-endpoint, AWS_ENDPOINT_URL for detector).
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

# its own venv under the user's cache (like the models), never a machine-specific folder
DEFAULT_PYTHON = str(Path.home() / ".cache" / "ppe-platform" / "localstack-venv" / "bin" / "python")
INSTALL_HINT = (
    "LocalStack is not installed. Install it into its own venv (never the project's):\n"
    "  python3.11 -m venv ~/.cache/ppe-platform/localstack-venv\n"
    '  ~/.cache/ppe-platform/localstack-venv/bin/pip install "localstack-core[runtime]==4.13.1" "cbor2<6" '
    'pyopenssl==25.3.0 "cryptography<47" service_identity\n'
    "or set LOCALSTACK_PYTHON to a python that has localstack-core[runtime] 4.13.1."
)


class LocalStackUnavailable(RuntimeError):
    """LocalStack is not installed, or did not become ready."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_path() -> str:
    python = os.environ.get("LOCALSTACK_PYTHON", DEFAULT_PYTHON)
    if not Path(python).exists():
        raise LocalStackUnavailable(INSTALL_HINT)
    probe = subprocess.run([python, "-c", "import localstack.runtime.main, rolo"], capture_output=True, check=False)
    if probe.returncode != 0:
        raise LocalStackUnavailable(f"{python} cannot import localstack.runtime.main.\n{INSTALL_HINT}")
    return python


def start(*, services: str = "sqs,s3,sns", ready_timeout_s: float = 90.0) -> tuple[subprocess.Popen[bytes], str]:
    """Starts LocalStack on a free 127.0.0.1 port; returns (process, endpoint URL). Stop it with `stop()`."""
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="localstack-")
    env = {
        **os.environ,
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "SERVICES": services,
        "EAGER_SERVICE_LOADING": "1",
        "PERSISTENCE": "0",
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        "LOCALSTACK_VOLUME_DIR": workdir,
        "FILESYSTEM_ROOT": workdir,
    }
    log = open(Path(workdir) / "localstack.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [python_path(), "-m", "localstack.runtime.main"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalStackUnavailable(f"LocalStack exited with {process.returncode}; see {log.name}")
        try:
            health = httpx.get(f"{endpoint}/_localstack/health", timeout=1).json()
            if all(health.get("services", {}).get(s) in ("available", "running") for s in services.split(",")):
                return process, endpoint
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    stop(process)
    raise LocalStackUnavailable(f"LocalStack did not become ready within {ready_timeout_s:.0f} s; see {log.name}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to LocalStack's own process group (it was started in a new session), then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def localstack(*, services: str = "sqs,s3,sns") -> Iterator[str]:
    process, endpoint = start(services=services)
    try:
        yield endpoint
    finally:
        stop(process)


if __name__ == "__main__":
    try:
        proc, url = start()
    except LocalStackUnavailable as exc:
        raise SystemExit(str(exc)) from exc
    print(f"LocalStack ready: AWS_ENDPOINT_URL={url} (pid {proc.pid}); Ctrl-C stops it", flush=True)
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(proc)
        sys.exit(0)
