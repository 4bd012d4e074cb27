"""Drawn faces for the synthetic split-screen video.

Expression carries valence strongly (mouth curvature, brow angle) and arousal only weakly
(eye opening, head motion): a video-only model then separates happy from angry but
confuses neutral with sad. The mouth opens with the speaker's own speech envelope, so
audio-video synchrony is learnable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class Expression:
    smile: float = 0.0  # mouth curvature: +1 broad smile, -1 deep frown
    brow: float = 0.0  # +1 raised (inner brows up), -1 lowered into a V
    eyes: float = 1.0  # eye opening factor
    motion: float = 1.0  # head jitter amplitude factor


EXPRESSIONS: dict[str, Expression] = {
    "neu": Expression(),
    "hap": Expression(smile=0.9, brow=0.2, eyes=0.8, motion=1.2),
    "exc": Expression(smile=0.95, brow=0.3, eyes=0.9, motion=1.4),
    "ang": Expression(smile=-0.7, brow=-1.0, eyes=0.95, motion=1.3),
    "sad": Expression(smile=-0.15, brow=0.25, eyes=0.9, motion=0.9),
    "fru": Expression(smile=-0.4, brow=-0.5, eyes=0.95, motion=1.1),
    "sur": Expression(smile=0.0, brow=1.0, eyes=1.35, motion=1.1),
    "fea": Expression(smile=-0.3, brow=0.8, eyes=1.3, motion=1.2),
    "dis": Expression(smile=-0.55, brow=-0.3, eyes=0.8, motion=1.0),
    "oth": Expression(smile=0.1, brow=0.1, eyes=1.0, motion=1.0),
}


def vary(e: Expression, rng: np.random.Generator) -> Expression:
    """Per-utterance variation of the expression."""
    return replace(
        e,
        smile=e.smile + float(rng.normal(0, 0.22)),
        brow=e.brow + float(rng.normal(0, 0.3)),
        eyes=max(0.4, e.eyes + float(rng.normal(0, 0.1))),
        motion=max(0.2, e.motion * float(rng.normal(1, 0.2))),
    )


def blend(a: Expression, b: Expression, w: float) -> Expression:
    return Expression(*((1 - w) * x + w * y for x, y in zip(
        (a.smile, a.brow, a.eyes, a.motion), (b.smile, b.brow, b.eyes, b.motion))))


@dataclass(frozen=True)
class Look:
    """An actor's fixed appearance (BGR colours)."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    scale: float


def make_look(rng: np.random.Generator, scale: tuple[float, float] = (0.95, 1.1)) -> Look:
    tone = rng.uniform(0.75, 1.1)
    skin = tuple(int(min(255, c * tone)) for c in (150, 180, 220))
    hair = tuple(int(c) for c in rng.integers(20, 80, 3))
    return Look(skin=skin, hair=hair, scale=float(rng.uniform(*scale)))


def draw_face(img: np.ndarray, centre: tuple[int, int], look: Look, expr: Expression, mouth_open: float,
              turned_away: bool) -> None:
    """Draw one head in place. A head turned away shows hair only (no detectable face)."""
    cx, cy = centre
    s = look.scale
    w, h = int(60 * s), int(80 * s)
    cv2.ellipse(img, (cx, cy - int(20 * s)), (int(w * 1.05), int(h * 0.95)), 0, 180, 360, look.hair, -1)
    if turned_away:
        cv2.ellipse(img, (cx, cy), (w, h), 0, 0, 360, look.hair, -1)
        cv2.ellipse(img, (cx + int(w * 0.8), cy), (int(10 * s), int(18 * s)), 0, 0, 360, look.skin, -1)  # an ear
        return
    cv2.ellipse(img, (cx, cy), (w, h), 0, 0, 360, look.skin, -1)
    ex, ey = int(24 * s), int(15 * s)
    eye_h = max(1, int(6 * s * expr.eyes))
    for side in (-1, 1):
        cv2.ellipse(img, (cx + side * ex, cy - ey), (int(11 * s), eye_h), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (cx + side * ex, cy - ey), max(1, min(int(5 * s), eye_h)), (30, 20, 20), -1)
        inner = (cx + side * int(10 * s), cy - ey - int((14 + 6 * expr.brow) * s))
        outer = (cx + side * int(38 * s), cy - ey - int((14 - 2 * expr.brow) * s))
        cv2.line(img, inner, outer, (30, 30, 50), max(2, int(4 * s)))
    cv2.line(img, (cx, cy - int(5 * s)), (cx - int(5 * s), cy + int(18 * s)), (110, 140, 180), 2)
    xs = np.linspace(-24, 24, 25) * s
    bow = 1 - (xs / (24 * s)) ** 2
    ys = cy + 42 * s + expr.smile * bow * 12 * s  # a smile lowers the middle of the mouth
    top = np.stack([cx + xs, ys], 1).astype(np.int32)
    bottom = np.stack([cx + xs, ys + mouth_open * bow * 16 * s], 1).astype(np.int32)
    cv2.fillPoly(img, [np.concatenate([top, bottom[::-1]])], (40, 30, 90))
    cv2.polylines(img, [top], False, (40, 30, 90), 3)
