"""Photo-like test images drawn in the test, for tests that need a real encoded JPEG but not the shared photos.

The scene: sky and wall gradients, a floor, a scaffold, three workers (vest, arms, legs, a head with hair,
eyes and a mouth), and sensor noise, so the JPEG has edges, texture and a realistic size. Nothing here
stands in for a labelled photo: tests about what the models find use ../shared/data and skip without it.
"""

from __future__ import annotations

import cv2
import numpy as np

# Head boxes of the three workers as (left, top, width, height) ratios of the image; the first is the large
# foreground worker. The bodies hang below the heads.
HEAD_BOXES: tuple[tuple[float, float, float, float], ...] = (
    (0.42, 0.12, 0.16, 0.26),
    (0.12, 0.36, 0.07, 0.12),
    (0.78, 0.38, 0.06, 0.11),
)
SKIN = (140, 170, 215)
HAIR = (30, 35, 45)
VEST = (40, 200, 240)
TROUSERS = (90, 60, 40)


def _gradient(height: int, width: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    image = (1 - ramp) * np.array(top, np.float32) + ramp * np.array(bottom, np.float32)
    return np.broadcast_to(image, (height, width, 3)).copy()


def _worker(image: np.ndarray, box: tuple[float, float, float, float]) -> None:
    h, w = image.shape[:2]
    left, top, width, height = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    cx, cy = int(left + width / 2), int(top + height / 2)
    axes = (max(int(width / 2), 2), max(int(height / 2), 2))
    torso_top, torso_w = int(top + height), int(width * 1.6)
    torso = (cx - torso_w // 2, torso_top, cx + torso_w // 2, int(torso_top + height * 1.6))
    legs_bottom = min(int(torso[3] + height * 1.5), h - 1)
    cv2.rectangle(image, (torso[0] + 2, torso[3]), (cx - 2, legs_bottom), TROUSERS, -1)
    cv2.rectangle(image, (cx + 2, torso[3]), (torso[2] - 2, legs_bottom), TROUSERS, -1)
    cv2.rectangle(image, torso[:2], torso[2:], VEST, -1)
    band = int(height * 0.15)
    cv2.rectangle(image, (torso[0], torso[1] + 3 * band), (torso[2], torso[1] + 4 * band), (200, 200, 200), -1)
    arm = max(int(width * 0.35), 2)
    cv2.rectangle(image, (torso[0] - arm, torso[1]), (torso[0], int(torso[3] * 0.98)), VEST, -1)
    cv2.rectangle(image, (torso[2], torso[1]), (torso[2] + arm, int(torso[3] * 0.98)), VEST, -1)
    cv2.ellipse(image, (cx, cy), axes, 0, 0, 360, SKIN, -1, cv2.LINE_AA)
    cv2.ellipse(image, (cx, cy), axes, 0, 180, 360, HAIR, -1, cv2.LINE_AA)
    eye_r = max(axes[0] // 8, 1)
    for side in (-1, 1):
        cv2.circle(image, (cx + side * axes[0] // 3, cy + axes[1] // 8), eye_r, HAIR, -1, cv2.LINE_AA)
    cv2.ellipse(image, (cx, cy + axes[1] // 2), (axes[0] // 3, max(axes[1] // 10, 1)), 0, 0, 180, (60, 60, 150), 2)


def photo_like(width: int = 960, height: int = 540, *, seed: int = 0) -> np.ndarray:
    """A BGR image of the scene above at width x height (same layout at every size; seeded noise)."""
    image = _gradient(height, width, (235, 205, 170), (170, 170, 160))
    floor = int(height * 0.72)
    image[floor:] = _gradient(height - floor, width, (110, 120, 125), (70, 80, 90))
    for x in range(0, width, max(width // 12, 1)):  # scaffold poles and planks
        cv2.line(image, (x, int(height * 0.05)), (x, floor), (60, 90, 120), max(width // 240, 1))
    for y in range(int(height * 0.1), floor, max(height // 8, 1)):
        cv2.line(image, (0, y), (width, y), (80, 110, 140), max(height // 180, 1))
    for box in HEAD_BOXES[::-1]:  # the foreground worker last, in front
        _worker(image, box)
    noise = np.random.default_rng(seed).normal(0.0, 6.0, image.shape).astype(np.float32)
    smooth = cv2.GaussianBlur(image, (0, 0), sigmaX=max(width / 960, 0.5))
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def photo_jpeg(width: int = 960, height: int = 540, *, quality: int = 90, seed: int = 0) -> bytes:
    """photo_like() encoded as a baseline JPEG, the way a camera sends a frame."""
    ok, buffer = cv2.imencode(".jpg", photo_like(width, height, seed=seed), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()
