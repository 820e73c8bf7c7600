"""Benchmark the local engine: per-image latency p50/p95, images/s over N processes, peak RSS.

    python -m model_workshop.bench                  # scenes resized to 1280x720
    python -m model_workshop.bench --processes 2 --rounds 5 --threads 1

Images: ../shared/data/scenes/images, each scaled to cover 1280x720 and centre-cropped (no distortion).
Latency is wall time of `detect` in one process (after warm-up); CPU ms per image is printed too, because on
a shared machine wall time includes waiting for a core (the load average is printed with the figures).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shared.rekognition import EquipmentType, SummarizationAttributes

ATTRIBUTES = SummarizationAttributes(MinConfidence=50, RequiredEquipmentTypes=[EquipmentType.HEAD_COVER])


def load_images(folder: Path, width: int, height: int) -> list[np.ndarray]:
    images = []
    for path in sorted(folder.glob("*.jpg")):
        image = cv2.imread(str(path))
        if image is None:
            continue
        h, w = image.shape[:2]
        scale = max(width / w, height / h)
        resized = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
        images.append(np.ascontiguousarray(resized[top : top + height, left : left + width]))
    if not images:
        raise FileNotFoundError(f"no .jpg images in {folder}")
    return images


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


V1_SETTINGS: dict[str, Any] = {"part_detector": False, "face_detector": False, "calibrated": False}  # the session-3 engine


def _latency(
    images: list[np.ndarray], rounds: int, threads: int, weights_dir: Path | None, engines: dict[str, dict[str, Any]]
) -> dict[str, dict[str, float]]:
    """Latency of each engine; with several, they alternate image by image (one window, comparable ratios)."""
    from services.detector.local_engine.pipeline import EngineSettings, LocalPipeline

    loaded = {
        name: LocalPipeline(intra_op_threads=threads, weights_dir=weights_dir, settings=EngineSettings(**overrides))
        for name, overrides in engines.items()
    }
    for engine in loaded.values():
        for image in images[:3]:
            engine.detect(image, ATTRIBUTES)
    runs: dict[str, tuple[list[float], list[float], list[int]]] = {name: ([], [], []) for name in loaded}
    for _ in range(rounds):
        for image in images:
            for name, engine in loaded.items():
                wall, cpu, persons = runs[name]
                t0, c0 = time.perf_counter(), time.process_time()
                response = engine.detect(image, ATTRIBUTES)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                persons.append(len(response.Persons))
    return {name: _figures(*runs[name]) for name in loaded}


def _figures(wall_s: list[float], cpu_s: list[float], persons: list[int]) -> dict[str, float]:
    w = np.asarray(wall_s) * 1000
    c = np.asarray(cpu_s) * 1000
    few = np.asarray(persons) <= 5
    return {
        "few_images": float(few.sum()),
        "few_p50_ms": float(np.percentile(w[few], 50)) if few.any() else float("nan"),
        "few_p95_ms": float(np.percentile(w[few], 95)) if few.any() else float("nan"),
        "few_cpu_p50_ms": float(np.percentile(c[few], 50)) if few.any() else float("nan"),
        "images": float(len(w)),
        "p50_ms": float(np.percentile(w, 50)),
        "p95_ms": float(np.percentile(w, 95)),
        "cpu_p50_ms": float(np.percentile(c, 50)),
        "cpu_p95_ms": float(np.percentile(c, 95)),
        "persons_mean": float(np.mean(persons)),
        "persons_max": float(np.max(persons)),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _worker(args: tuple[list[np.ndarray], int, int, Path | None, object]) -> tuple[int, float, float]:
    images, rounds, threads, weights_dir, barrier = args
    from services.detector.local_engine.pipeline import LocalPipeline

    engine = LocalPipeline(intra_op_threads=threads, weights_dir=weights_dir)
    engine.detect(images[0], ATTRIBUTES)
    barrier.wait()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    n = 0
    for _ in range(rounds):
        for image in images:
            engine.detect(image, ATTRIBUTES)
            n += 1
    return n, time.perf_counter() - t0, _peak_rss_mb()


def _throughput(
    images: list[np.ndarray], rounds: int, threads: int, processes: int, weights_dir: Path | None
) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(processes)
        with ctx.Pool(processes) as pool:
            results = pool.map(_worker, [(images, rounds, threads, weights_dir, barrier)] * processes)
    total = sum(n for n, _, _ in results)
    elapsed = max(t for _, t, _ in results)
    return {
        "images_per_s": total / elapsed,
        "processes": float(processes),
        "worker_peak_rss_mb": max(r for _, _, r in results),
    }


def main(argv: list[str] | None = None) -> int:
    from model_workshop.settings import shared_data_dir

    parser = argparse.ArgumentParser(description="Latency / throughput / RSS of the local PPE engine.")
    parser.add_argument(
        "--images", type=Path, default=None, help="folder of .jpg (default ../shared/data/scenes/images)"
    )
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the images")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads per process")
    parser.add_argument("--processes", type=int, default=2, help="worker processes for images/s (0 = skip)")
    parser.add_argument("--weights-dir", type=Path, default=None, help="classifier weights (default: the shipped ones)")
    parser.add_argument(
        "--engine",
        choices=["v2", "v1", "both"],
        default="v2",
        help="v2: part and face detectors (default); v1: the session-3 engine; both: alternating, in one window",
    )
    args = parser.parse_args(argv)

    images = load_images(args.images or shared_data_dir() / "scenes" / "images", args.width, args.height)
    print(f"machine: {os.cpu_count()} CPUs, load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    engines: dict[str, dict[str, Any]] = (
        {"v2": {}, "v1": V1_SETTINGS} if args.engine == "both" else {args.engine: V1_SETTINGS if args.engine == "v1" else {}}
    )
    for name, lat in _latency(images, args.rounds, args.threads, args.weights_dir, engines).items():
        print(
            f"[{name}] latency ({args.width}x{args.height}, {len(images)} images x {args.rounds} rounds, "
            f"{args.threads} thread(s), persons/image mean {lat['persons_mean']:.1f} max {lat['persons_max']:.0f}): "
            f"p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms wall; "
            f"CPU p50 {lat['cpu_p50_ms']:.1f} ms, p95 {lat['cpu_p95_ms']:.1f} ms"
        )
        print(
            f"  images with <= 5 persons ({lat['few_images']:.0f}): p50 {lat['few_p50_ms']:.1f} ms, "
            f"p95 {lat['few_p95_ms']:.1f} ms wall; CPU p50 {lat['few_cpu_p50_ms']:.1f} ms"
        )
    print(f"peak RSS (engine process{'es' if len(engines) > 1 else ''} loaded): {lat['peak_rss_mb']:.0f} MB")
    if args.processes:
        tp = _throughput(images, args.rounds, args.threads, args.processes, args.weights_dir)
        print(
            f"throughput: {tp['images_per_s']:.2f} images/s with {args.processes} processes "
            f"x {args.threads} thread(s); "
            f"worker peak RSS {tp['worker_peak_rss_mb']:.0f} MB"
        )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
