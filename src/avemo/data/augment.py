"""Spectrogram transforms applied at load time: frequency crop and the study's augmentation.

Spectrograms are (1, frequency, time) tensors with row 0 the lowest frequency. Never flip
along time: that reverses speech.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from avemo.params import Augment


def crop_frequency(x: torch.Tensor, crop_ratio: float) -> torch.Tensor:
    """Drop the top `crop_ratio` of the frequency rows and resize back (the study's 60 % crop).

    `x` is (channels, frequency, time) or a batch of such.
    """
    if crop_ratio <= 0:
        return x
    if not 0 < crop_ratio < 1:
        raise ValueError(f"crop_ratio must be in [0, 1), not {crop_ratio}")
    bins = x.shape[-2]
    keep = max(1, round(bins * (1 - crop_ratio)))
    batch = x if x.dim() == 4 else x[None]
    out = F.interpolate(batch[:, :, :keep], size=x.shape[-2:], mode="bilinear", align_corners=False)
    return out if x.dim() == 4 else out[0]


def augment(x: torch.Tensor, p: Augment, floor: float = -1.0) -> torch.Tensor:
    """Random top-crop-and-resize (a small frequency shift), a small rotation, then SpecAugment masks."""
    x = _shift_and_rotate(x, p, floor) if p.max_shift_rows or p.max_rotation_deg else x
    return mask(x, p) if p.freq_masks or p.time_masks else x


def mask(x: torch.Tensor, p: Augment) -> torch.Tensor:
    """SpecAugment's frequency and time masks: random bands and spans replaced by the item's mean."""
    x = x.clone()
    fill = x.mean()
    for axis, count, width in ((-2, p.freq_masks, p.freq_mask_rows), (-1, p.time_masks, p.time_mask_frames)):
        size = x.shape[axis]
        for _ in range(count):
            w = int(torch.randint(0, min(width, size) + 1, ()).item())
            start = int(torch.randint(0, size - w + 1, ()).item())
            x.narrow(axis, start, w).fill_(fill)
    return x


def _shift_and_rotate(x: torch.Tensor, p: Augment, floor: float) -> torch.Tensor:
    bins = x.shape[-2]
    shift = int(torch.randint(0, p.max_shift_rows + 1, ()).item())
    if shift:
        x = F.interpolate(x[None, :, : bins - shift], size=x.shape[-2:], mode="bilinear", align_corners=False)[0]
    angle = math.radians(float(torch.empty(()).uniform_(-p.max_rotation_deg, p.max_rotation_deg)))
    if angle:
        cos, sin = math.cos(angle), math.sin(angle)
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype)[None]
        grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)
        x = F.grid_sample((x - floor)[None], grid, align_corners=False, padding_mode="zeros")[0] + floor
    return x
