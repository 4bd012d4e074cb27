"""Face crop with OpenCV's bundled Haar cascade, smoothed over a clip's frames.

Detection runs on every `detect_every`-th frame of a clip, on a down-scaled grey image (it
costs ~3 ms a frame, decoding ~0.2 ms); other frames, and frames without a detection, borrow
the nearest detected box, and the boxes are median-smoothed over time so that the crop does not
jitter. A clip with no detection at all uses a fixed box for that side (from params.yaml)
and is counted as such.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from avemo.params import Face


@lru_cache(maxsize=4)
def cascade(name: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + name
    classifier = cv2.CascadeClassifier(path)
    if classifier.empty():
        raise FileNotFoundError(f"{path}: Haar cascade not found (opencv-python-headless>=4.10,<5 ships it)")
    return classifier


def detect(half: np.ndarray, p: Face) -> np.ndarray | None:
    """The largest face (x, y, w, h) in a BGR image, in its own pixel coordinates, or None."""
    grey = cv2.cvtColor(half, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (grey.shape[1] // p.downscale, grey.shape[0] // p.downscale), interpolation=cv2.INTER_AREA)
    faces = cascade(p.cascade).detectMultiScale(small, scaleFactor=p.scale_factor, minNeighbors=p.min_neighbors,
                                                minSize=(p.min_size, p.min_size))
    if len(faces) == 0:
        return None
    return faces[np.argmax(faces[:, 2] * faces[:, 3])].astype(float) * p.downscale


def clip_boxes(halves: list[np.ndarray], p: Face) -> tuple[np.ndarray, int]:
    """One box per frame (n x 4) and the number of frames with a detection (0: fallback box)."""
    found = [detect(h, p) if k % p.detect_every == 0 else None for k, h in enumerate(halves)]
    hits = [k for k, b in enumerate(found) if b is not None]
    if not hits:
        height, width = halves[0].shape[:2]
        fx, fy, fw, fh = p.fallback_box
        return np.tile([fx * width, fy * height, fw * width, fh * height], (len(halves), 1)), 0
    nearest = [found[min(hits, key=lambda h: abs(h - k))] for k in range(len(halves))]
    boxes = np.array(nearest)
    r = p.smooth_frames // 2
    smooth = np.array([np.median(boxes[max(0, k - r): k + r + 1], axis=0) for k in range(len(boxes))])
    return smooth, len(hits)


def crop(half: np.ndarray, box: np.ndarray, p: Face) -> np.ndarray:
    """Crop a box grown by `margin` to the output aspect ratio, resize, and return RGB."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    h_out = max(h, w * p.height / p.width) * p.margin
    w_out = h_out * p.width / p.height
    x0, y0 = int(round(cx - w_out / 2)), int(round(cy - h_out / 2))
    x1, y1 = int(round(cx + w_out / 2)), int(round(cy + h_out / 2))
    height, width = half.shape[:2]
    patch = half[max(0, y0): min(height, y1), max(0, x0): min(width, x1)]
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:  # repeat the edge pixels where the box leaves the image
        patch = cv2.copyMakeBorder(patch, max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width),
                                   cv2.BORDER_REPLICATE)
    patch = cv2.resize(patch, (p.width, p.height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)
