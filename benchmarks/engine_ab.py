"""Two checkouts of the local engine in one window: the same scenes sent to one, then the other, CPU time per detect.

    python -m benchmarks.engine_ab --base ../main --rounds 6     # that checkout against this one

Each checkout's LocalPipeline runs in its own process (started in that checkout's folder, so it imports its own
code); every scene at 1280x720 goes to both, the first of the two alternating, so both see the same load. Prints
the CPU mean of each, the ratio of the sums and the median per-scene ratio, and fails when the two return a
different number of persons on any scene. For a refactor that must be no slower on a shared machine, where one
`model_workshop.bench` run moves by 20 % with the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run by each worker process, in its checkout's folder: load the engine, then one detect per line read.
WORKER = """
import sys, time
from pathlib import Path
sys.path.insert(0, ".")
from model_workshop.bench import ATTRIBUTES, load_images
from services.detector.local_engine.pipeline import LocalPipeline
images = load_images(Path(sys.argv[1]), 1280, 720)
engine = LocalPipeline(intra_op_threads=1)
for image in images[:3]:
    engine.detect(image, ATTRIBUTES)
print("ready", len(images), flush=True)
for line in sys.stdin:
    started = time.process_time()
    response = engine.detect(images[int(line)], ATTRIBUTES)
    print("cpu", (time.process_time() - started) * 1000, len(response.Persons), flush=True)
"""


class Worker:
    def __init__(self, checkout: Path, scenes: Path) -> None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PPE_LOG_FORMAT": "console"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(scenes)],
            cwd=checkout,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def answer(self, tag: str) -> list[str]:
        """The next line the worker prints that starts with `tag` (its log lines go by)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            words = line.split()
            if words and words[0] == tag:
                return words[1:]
        raise SystemExit(f"the engine process in {self.process.args} ended: see its output above")

    def detect(self, index: int) -> tuple[float, int]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{index}\n")
        self.process.stdin.flush()
        cpu_ms, persons = self.answer("cpu")
        return float(cpu_ms), int(persons)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (its repository root)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--scenes", type=Path, default=None, help="default: the shared data's scenes/images")
    args = parser.parse_args(argv)
    from model_workshop.settings import shared_data_dir

    scenes = (args.scenes or shared_data_dir() / "scenes" / "images").resolve()
    workers = {"base": Worker(args.base.resolve(), scenes), "this": Worker(ROOT, scenes)}
    count = {name: int(worker.answer("ready")[0]) for name, worker in workers.items()}
    if count["base"] != count["this"]:
        raise SystemExit(f"the checkouts read a different number of scenes: {count}")
    cpu: dict[str, list[float]] = {"base": [], "this": []}
    persons: dict[str, list[int]] = {"base": [], "this": []}
    for round_ in range(args.rounds):
        for index in range(count["this"]):
            for name in ("base", "this") if (round_ + index) % 2 == 0 else ("this", "base"):
                ms, found = workers[name].detect(index)
                cpu[name].append(ms)
                persons[name].append(found)
    for worker in workers.values():
        worker.close()
    ratios = [this / base for this, base in zip(cpu["this"], cpu["base"], strict=True)]
    print(
        f"{len(ratios)} detects each; CPU mean base {statistics.mean(cpu['base']):.1f} ms, this "
        f"{statistics.mean(cpu['this']):.1f} ms; ratio of sums {sum(cpu['this']) / sum(cpu['base']):.3f}; "
        f"median per-scene ratio {statistics.median(ratios):.3f}"
    )
    pairs = enumerate(zip(persons["base"], persons["this"], strict=True))
    differ = sorted({i % count["this"] for i, (base, this) in pairs if base != this})
    if differ:
        print(f"persons differ on scenes {differ}: the two engines do not behave the same")
        return 1
    print("the same number of persons on every scene")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
