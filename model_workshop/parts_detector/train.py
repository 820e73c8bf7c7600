"""Train the HEAD / HAND part head on NanoDet's cached FPN features, measure it, write the weights.

    python -m model_workshop.parts_detector.train --data ../shared/data
    python -m model_workshop.parts_detector.train --data ../shared/data --source my_site:0=head/covered,1=head/bare

By default the project's two sources are used (helmet_vest heads, gloves hands; TRAIN side of their split
files only); each `--source` adds a YOLO folder (all its images are train-side). A seeded slice of the train
side (by file, per source) is held out to choose the epoch, the score thresholds and the calibration.
Writes to --out (default services/detector/local_engine/weights): part_head.onnx, part_head.json (thresholds,
calibration, feature tensor names), part_head.data.csv (sha256 of every image used) and part_head.metrics.json.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from model_workshop.parts_detector.data import (
    SPLITS_DIR,
    Sample,
    default_sources,
    load_samples,
    parse_source,
    sha256_file,
    split_validation,
)
from model_workshop.parts_detector.features import Entry, FeatureCache, build_cache, fpn_feature_names
from model_workshop.parts_detector.jobs import RUNTIME, jobs
from model_workshop.parts_detector.metrics import calibration_table, fit_calibration, part_scores
from model_workshop.parts_detector.model import N_PARTS, PartHead, export_onnx
from model_workshop.parts_detector.targets import Targets, assign
from model_workshop.scores import f1
from services.detector.local_engine.model_files import default_model_dir
from services.detector.local_engine.parts import PARTS, PartBoxes, decode_parts
from services.detector.local_engine.persons import NANODET_STRIDES

DECODE_FLOOR = 0.05  # lowest score kept when measuring (thresholds are chosen above it)
CALIBRATION_KNOTS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.01)
TABLE_EDGES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)


def giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and generalised IoU of matching rows of two [N, 4] x1y1x2y2 tensors."""
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_a, area_b = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1), (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    union = area_a + area_b - inter + 1e-6
    iou = inter / union
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).clamp(min=0).prod(1) + 1e-6
    return iou, iou - (hull - union) / hull


def batch_loss(
    outputs: list[torch.Tensor], targets: list[Targets], labelled: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """Quality focal loss on part scores (target: IoU of the predicted box), GIoU on boxes, BCE on covered.

    `labelled` [B, parts]: a source that does not box a part teaches nothing about it (no loss on that channel).
    """
    cls_terms, box_terms, cov_terms, n_pos = [], [], [], 0.0
    for level, (out, stride) in enumerate(zip(outputs, NANODET_STRIDES, strict=True)):
        b, _, gh, gw = out.shape
        flat = out.flatten(2).transpose(1, 2)  # [B, cells, 8]
        logits, cov_logits, dist = flat[..., :N_PARTS], flat[..., N_PARTS : 2 * N_PARTS], flat[..., 2 * N_PARTS :]
        quality = torch.zeros_like(logits)
        bi, ci, pi, gt_boxes, gt_cov = [], [], [], [], []
        for k, t in enumerate(targets):
            cells = t.cells[level]
            bi.append(np.full(len(cells), k))
            ci.append(cells)
            pi.append(t.part[level])
            gt_boxes.append(t.boxes[level])
            gt_cov.append(t.covered[level])
        bi_t = torch.from_numpy(np.concatenate(bi)).long()
        if len(bi_t):
            ci_t = torch.from_numpy(np.concatenate(ci)).long()
            pi_t = torch.from_numpy(np.concatenate(pi)).long()
            gt = torch.from_numpy(np.concatenate(gt_boxes))
            cov_t = torch.from_numpy(np.concatenate(gt_cov)).float()
            cx = (ci_t % gw + 0.5) * stride
            cy = torch.div(ci_t, gw, rounding_mode="floor").float().add(0.5) * stride
            ltrb = F.softplus(dist[bi_t, ci_t]) * stride
            pred = torch.stack([cx - ltrb[:, 0], cy - ltrb[:, 1], cx + ltrb[:, 2], cy + ltrb[:, 3]], 1)
            iou, g = giou(pred, gt)
            quality[bi_t, ci_t, pi_t] = iou.detach().clamp(min=0.01)
            box_terms.append((1 - g).sum())
            cov_terms.append(F.binary_cross_entropy_with_logits(cov_logits[bi_t, ci_t, pi_t], cov_t, reduction="sum"))
            n_pos += len(bi_t)
        prob = logits.sigmoid()
        qfl = F.binary_cross_entropy_with_logits(logits, quality, reduction="none") * (prob - quality).abs().pow(2)
        cls_terms.append((qfl * labelled[:, None, :]).sum())
    norm = max(n_pos, 1.0)
    cls = torch.stack(cls_terms).sum() / norm
    box = torch.stack(box_terms).sum() / norm if box_terms else cls * 0
    cov = torch.stack(cov_terms).sum() / norm if cov_terms else cls * 0
    return cls + 2.0 * box + 0.5 * cov, {"cls": cls.item(), "box": box.item(), "cov": cov.item()}


def batches(entries: list[int], cache: FeatureCache, size: int, rng: random.Random) -> list[list[int]]:
    """Batches of entries with the same tensor size (no padding needed), in random order."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in entries:
        groups[cache.entries[i].tensor_hw].append(i)
    out = []
    for key in sorted(groups):
        group = groups[key]
        rng.shuffle(group)
        out += [group[j : j + size] for j in range(0, len(group), size)]
    rng.shuffle(out)
    return out


def predict(head: PartHead, cache: FeatureCache, entry: Entry) -> list[np.ndarray]:
    """The head's outputs in the exported graph's layout: per level [1, cells, 8]."""
    feats = [torch.from_numpy(f)[None] for f in cache.features(entry)]
    with torch.no_grad():
        outs = head(feats)
    res = []
    for o in outs:
        o = o[0].flatten(1).T
        res.append(torch.cat([o[:, : 2 * N_PARTS].sigmoid(), F.softplus(o[:, 2 * N_PARTS :])], 1)[None].numpy())
    return res


def measure(
    head: PartHead, cache: FeatureCache, samples: list[Sample], thresholds: dict[str, float]
) -> dict[str, object]:
    """Part figures on samples (runtime letterbox), each part scored only on sources that label it."""
    head.eval()
    scores = part_scores()
    for s in samples:
        entry = cache.by_key[(str(s.image), RUNTIME.key)]
        pred = decode_parts(predict(head, cache, entry), entry.tensor_hw, entry.scale, entry.image_hw,
                            min_score=DECODE_FLOOR)
        h, w = entry.image_hw
        boxes = s.boxes * np.array([w, h, w, h], np.float32)
        for p, name in enumerate(PARTS):
            if p in s.parts_labelled:
                sel = s.part == p
                scores[name].add(pred.of(name), boxes[sel], s.covered[sel], min_score=thresholds[name])
    return {"parts": {n: sc.summary() for n, sc in scores.items()},
            "calibration_rows": {n: sc.calibration for n, sc in scores.items()}}


def choose_threshold(rows: list[tuple[float, bool]], n_labels: int) -> float:
    """The score threshold with the best F1 at IoU >= 0.2 on the validation slice (grid of 0.05)."""
    best, best_f1 = 0.3, -1.0
    scores = np.array([r[0] for r in rows])
    real = np.array([r[1] for r in rows])
    for t in np.arange(0.1, 0.8, 0.025):
        kept = scores >= t
        tp = float(real[kept].sum())
        score = f1(tp, float(kept.sum()) - tp, n_labels - tp)
        if score > best_f1:
            best, best_f1 = round(float(t), 3), score
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_workshop.parts_detector.train", description=__doc__)
    parser.add_argument("--data", type=Path, default=None, help="shared data root (helmet_vest/, gloves/)")
    parser.add_argument("--source", action="append", default=[], help="extra YOLO folder DIR:ID=PART/STATE,...")
    parser.add_argument("--no-default-sources", action="store_true")
    parser.add_argument("--model-dir", type=Path, default=None, help="where nanodet-int8.onnx is (default store)")
    parser.add_argument("--out", type=Path, default=SPLITS_DIR)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "ppe-platform" / "parts-features")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    start = time.monotonic()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    sources = [] if args.no_default_sources else default_sources(args.data) if args.data else []
    sources += [parse_source(s) for s in args.source]
    if not sources:
        parser.error("give --data (the project's sources) and / or --source")
    samples = [s for src in sources for s in load_samples(src, args.data or Path("."), "train")]
    train_s, val_s = split_validation(samples, args.val_fraction, args.seed)
    print(f"samples: {len(train_s)} train, {len(val_s)} validation (sources: {[s.name for s in sources]})")

    nanodet = (args.model_dir or default_model_dir()) / "nanodet-int8.onnx"
    cache = build_cache(nanodet, jobs(samples), args.cache, threads=args.threads)
    by_image = {str(s.image): s for s in samples}
    train_images = {str(s.image) for s in train_s}
    train_idx = [i for i, e in enumerate(cache.entries) if e.image in train_images]
    variants_of: dict[str, list[int]] = defaultdict(list)
    for i in train_idx:
        variants_of[cache.entries[i].image].append(i)
    targets = {i: assign(by_image[cache.entries[i].image], cache.entries[i]) for i in train_idx}
    print(f"entries: {len(train_idx)} train (with augmented letterboxes); setup {time.monotonic() - start:.0f} s")

    head = PartHead(width=args.width, blocks=args.blocks)
    optimiser = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=1e-4)
    # An epoch sees every training image once, in one of its cached letterbox variants drawn at random.
    def epoch_entries() -> list[int]:
        return [rng.choice(variants_of[image]) for image in sorted(variants_of)]

    fixed = {p: 0.3 for p in PARTS}
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    history = []
    for epoch in range(1, args.epochs + 1):
        head.train()
        totals: dict[str, float] = defaultdict(float)
        n = 0
        epoch_batches = batches(epoch_entries(), cache, args.batch, rng)
        for j, batch in enumerate(epoch_batches):
            progress = (epoch - 1 + j / len(epoch_batches)) / args.epochs
            for group in optimiser.param_groups:  # linear warm-up over the first epoch, then cosine
                group["lr"] = args.lr * min(1.0, progress * args.epochs) * 0.5 * (1 + math.cos(math.pi * progress))
            entries = [cache.entries[i] for i in batch]
            feats = [torch.from_numpy(np.stack(level)) for level in zip(*(cache.features(e) for e in entries))]
            labelled = torch.tensor([[float(p in by_image[e.image].parts_labelled) for p in range(N_PARTS)]
                                     for e in entries])
            loss, parts = batch_loss(head(feats), [targets[i] for i in batch], labelled)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            for k, v in parts.items():
                totals[k] += v
            n += 1
        val = measure(head, cache, val_s, fixed)["parts"]
        score = float(np.mean([val[p]["recall_iou20"] * val[p]["precision_iou20"] for p in PARTS]))
        history.append({"epoch": epoch, **{k: v / n for k, v in totals.items()}, "val_score": score})
        print(f"epoch {epoch:2d} loss cls {totals['cls'] / n:.3f} box {totals['box'] / n:.3f} cov {totals['cov'] / n:.3f}"
              f" | val@0.3 " + " ".join(f"{p} R {val[p]['recall_iou20']:.3f} P {val[p]['precision_iou20']:.3f}"
                                         for p in PARTS) + f" | {time.monotonic() - start:.0f} s", flush=True)
        if best is None or score > best[0]:
            best = (score, epoch, {k: v.clone() for k, v in head.state_dict().items()})
    assert best is not None
    head.load_state_dict(best[2])
    print(f"best epoch {best[1]} (recall x precision at 0.3: {best[0]:.3f})")

    # thresholds and calibration on the validation slice
    rows = measure(head, cache, val_s, fixed)
    thresholds = {p: choose_threshold(rows["calibration_rows"][p], int(rows["parts"][p]["labels"])) for p in PARTS}
    final = measure(head, cache, val_s, thresholds)
    calibration = {p: fit_calibration(rows["calibration_rows"][p], CALIBRATION_KNOTS) for p in PARTS}
    tables = {p: calibration_table(rows["calibration_rows"][p], TABLE_EDGES) for p in PARTS}

    args.out.mkdir(parents=True, exist_ok=True)
    model = export_onnx(head)
    onnx.save(model, args.out / "part_head.onnx")
    config = {
        "parts": list(PARTS),
        "feature_tensors": fpn_feature_names(onnx.load(str(nanodet))),
        "letterbox": {"input_side": RUNTIME.input_side, "enlarge_to": RUNTIME.enlarge_to},
        "thresholds": thresholds,
        "calibration": calibration,
        "head": head.config,
    }
    (args.out / "part_head.json").write_text(json.dumps(config, indent=1) + "\n")
    val_images = {str(s.image) for s in val_s}
    root = (args.data or Path(".")).resolve()
    with (args.out / "part_head.data.csv").open("w") as fh:
        fh.write("file,sha256,side\n")
        for s in sorted(samples, key=lambda s: str(s.image)):
            rel = s.image.resolve().relative_to(root) if s.image.resolve().is_relative_to(root) else s.image
            fh.write(f"{rel},{sha256_file(s.image)},{'val' if str(s.image) in val_images else 'train'}\n")
    elapsed = time.monotonic() - start
    metrics = {
        "validation": final["parts"],
        "validation_at_0.3": rows["parts"],
        "calibration_table": tables,
        "best_epoch": best[1],
        "history": history,
        "train_seconds": round(elapsed, 1),
        "args": {k: str(v) for k, v in vars(args).items()},
        "samples": {"train": len(train_s), "validation": len(val_s)},
    }
    (args.out / "part_head.metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps(final["parts"], indent=1))
    print(f"thresholds {thresholds}; wrote {args.out}/part_head.*; total {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
