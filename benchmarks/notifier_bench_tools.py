"""Processes and measurements of benchmarks/notifier_bench.py: the queue emulator, the notifier workers, CPU
seconds per process, Prometheus means and the worker's profile."""

import argparse
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from benchmarks import localstack
from devstack import emulator
from tests.integration.notifier.receivers import free_port

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def metric_mean(text: str, name: str, queue: str) -> float:
    """Mean of a Prometheus histogram (sum / count) for one queue label, from /metrics text."""
    values = {}
    for line in text.splitlines():
        for suffix in ("_sum", "_count"):
            if line.startswith(f'{name}{suffix}{{queue="{queue}"}}'):
                values[suffix] = float(line.rsplit(" ", 1)[1])
    return values.get("_sum", 0.0) / values["_count"] if values.get("_count") else float("nan")


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto as the project runs it (devstack.emulator: waitress, HTTP keep-alive)."""
    port = free_port()
    process = subprocess.Popen(
        emulator.command(port),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return process, endpoint


def start_worker(env: dict[str, str], port: int, profile: Path | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "services.notifier.main"]
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "services.notifier.main"]
    if os.environ.get("BENCH_WORKER_WRAPPER"):
        command = [sys.executable, os.environ["BENCH_WORKER_WRAPPER"], "worker"]
    return subprocess.Popen(command, cwd=ROOT, env={**env, "NOTIFIER_PORT": str(port)})


class CpuMeter:
    """CPU seconds (user + system) used by named processes (and their children) between start() and stop()."""

    def __init__(self, pids: dict[str, list[int]], *, alone: tuple[str, ...] = ()) -> None:
        self._pids = pids
        self._alone = alone
        self._before: dict[str, dict[int, float]] = {}

    @staticmethod
    def _sample(pids: list[int], *, children: bool = True) -> dict[int, float]:
        seen: dict[int, float] = {}
        for pid in pids:
            try:
                root = psutil.Process(pid)
                for proc in [root, *(root.children(recursive=True) if children else [])]:
                    times = proc.cpu_times()
                    seen[proc.pid] = times.user + times.system
            except psutil.Error:
                continue
        return seen

    def start(self) -> None:
        self._before = {name: self._sample(pids, children=name not in self._alone) for name, pids in self._pids.items()}

    def stop(self) -> dict[str, float]:
        used = {}
        for name, pids in self._pids.items():
            after = self._sample(pids, children=name not in self._alone)
            used[name] = sum(t - self._before[name].get(pid, 0.0) for pid, t in after.items())
        return used


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def start_backend(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes] | None, str]:
    if args.endpoint:
        return None, args.endpoint
    if args.backend == "localstack":
        try:
            return localstack.start()
        except localstack.LocalStackUnavailable as exc:
            raise SystemExit(str(exc)) from exc
    return start_moto()


def stop_backend(args: argparse.Namespace, process: subprocess.Popen[bytes] | None) -> None:
    if process is None:
        return
    if args.backend == "localstack":
        localstack.stop(process)
    else:
        process.terminate()
        process.wait(timeout=10)


def print_profile(path: Path, top: int = 30) -> None:
    if not path.exists():
        print(f"no profile written at {path}")
        return
    stats = pstats.Stats(str(path))
    print(f"\nworker 1 profile ({path}), top {top} by own time:")
    stats.sort_stats("tottime").print_stats(top)
    print(f"worker 1 profile, top {top} by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)
