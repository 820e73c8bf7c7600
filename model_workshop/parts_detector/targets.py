"""FCOS-style assignment of labelled boxes to cells of the three levels, with centre sampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model_workshop.parts_detector.data import Sample
from model_workshop.parts_detector.features import Entry
from services.detector.local_engine.persons import NANODET_STRIDES

# A box goes to one level by its longer side in letterbox pixels (FCOS-like ranges, shifted down: parts are small).
LEVEL_LIMITS = (64.0, 160.0, float("inf"))
CENTRE_RADIUS = 1.5  # positives: cells within this many strides of the box centre (and inside the box)


@dataclass(frozen=True)
class Targets:
    """Positive cells of one entry, per level: cell index, gt box (letterbox px), part, covered."""

    cells: tuple[np.ndarray, ...]
    boxes: tuple[np.ndarray, ...]
    part: tuple[np.ndarray, ...]
    covered: tuple[np.ndarray, ...]


def letterbox_boxes(sample: Sample, entry: Entry) -> np.ndarray:
    """The sample's normalised boxes in pixels of the entry's letterboxed tensor (mirrored for a flipped entry)."""
    h, w = entry.image_hw
    boxes = sample.boxes.copy()
    if entry.variant.startswith("f"):
        boxes[:, [0, 2]] = 1.0 - boxes[:, [2, 0]]
    return boxes * np.array([w, h, w, h], np.float32) * entry.scale


def assign(sample: Sample, entry: Entry) -> Targets:
    boxes = letterbox_boxes(sample, entry)
    ph, pw = entry.tensor_hw
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
    level_of = np.searchsorted(np.asarray(LEVEL_LIMITS), size, side="left")
    cells_l, boxes_l, part_l, covered_l = [], [], [], []
    for level, stride in enumerate(NANODET_STRIDES):
        gh, gw = -(-ph // stride), -(-pw // stride)
        owner = np.full(gh * gw, -1, np.int64)
        owner_area = np.full(gh * gw, np.inf)
        for i in np.nonzero(level_of == level)[0]:
            x1, y1, x2, y2 = boxes[i]
            bcx, bcy = (x1 + x2) / 2, (y1 + y2) / 2
            r = CENTRE_RADIUS * stride
            gx = (np.arange(gw) + 0.5) * stride
            gy = (np.arange(gh) + 0.5) * stride
            inx = (gx > max(x1, bcx - r)) & (gx < min(x2, bcx + r))
            iny = (gy > max(y1, bcy - r)) & (gy < min(y2, bcy + r))
            mask = (iny[:, None] & inx[None, :]).reshape(-1)
            # A box smaller than a cell still gets the cell its centre falls in.
            cx_i, cy_i = min(int(bcx // stride), gw - 1), min(int(bcy // stride), gh - 1)
            mask[cy_i * gw + cx_i] = True
            area = (x2 - x1) * (y2 - y1)
            take = mask & (area < owner_area)
            owner[take], owner_area[take] = i, area
        cells = np.nonzero(owner >= 0)[0]
        cells_l.append(cells)
        boxes_l.append(boxes[owner[cells]].astype(np.float32))
        part_l.append(sample.part[owner[cells]])
        covered_l.append(sample.covered[owner[cells]])
    return Targets(tuple(cells_l), tuple(boxes_l), tuple(part_l), tuple(covered_l))
