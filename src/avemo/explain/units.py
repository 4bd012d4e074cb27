"""The units an explanation ranks, as feature masks: mel bands and moments of a spectrogram,
frames and face regions of a frame stack.

A mask holds, for every element of one input (batch dimension 1), the index of the unit it
belongs to. The same mask drives occlusion (Captum ablates a unit at a time), the totals of
integrated gradients or Grad-CAM per unit, and the deletion curves, so every method ranks the
same units and removes them the same way.
"""

from __future__ import annotations

import torch


def band_mask(bands: int, frames: int) -> torch.Tensor:
    """(1, 1, bands, frames): one unit per mel band (0 = the lowest), across the whole clip."""
    return torch.arange(bands).view(1, 1, bands, 1).expand(1, 1, bands, frames).contiguous()


def moment_mask(bands: int, frames: int, window: int) -> torch.Tensor:
    """(1, 1, bands, frames): one unit per `window` consecutive frames, across all bands.

    A single 10 ms frame changes too little to rank; a window of 10 (100 ms, a syllable's
    order of length) is the default resolution of the time curves.
    """
    if window < 1:
        raise ValueError(f"a moment spans at least one frame, not {window}")
    return (torch.arange(frames) // window).view(1, 1, 1, frames).expand(1, 1, bands, frames).contiguous()


def frame_mask(frames: int, height: int, width: int) -> torch.Tensor:
    """(1, 1, frames, height, width): one unit per video frame, all colour channels together."""
    return torch.arange(frames).view(1, 1, frames, 1, 1).expand(1, 1, frames, height, width).contiguous()


def region_mask(frames: int, height: int, width: int, grid: tuple[int, int]) -> torch.Tensor:
    """(1, 1, frames, height, width): one unit per cell of a `grid` (rows, columns) over the face,
    through every frame (a face region, not a moment)."""
    rows, cols = grid
    if not (1 <= rows <= height and 1 <= cols <= width):
        raise ValueError(f"a region grid of {grid} does not fit {height} x {width} frames")
    row = torch.arange(height) * rows // height
    col = torch.arange(width) * cols // width
    cells = row.view(height, 1) * cols + col.view(1, width)
    return cells.view(1, 1, 1, height, width).expand(1, 1, frames, height, width).contiguous()


def unit_count(mask: torch.Tensor) -> int:
    return int(mask.max()) + 1


def unit_totals(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, units): the sum of `values` (B, *input shape) over each unit's elements (all channels)."""
    ids = mask.expand(1, *values.shape[1:]).reshape(-1)
    totals = torch.zeros(values.shape[0], unit_count(mask), dtype=values.dtype, device=values.device)
    return totals.index_add_(1, ids.to(values.device), values.reshape(values.shape[0], -1))


def unit_means(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, units): the mean of `values` over each unit's elements."""
    sizes = unit_totals(torch.ones(1, *values.shape[1:], dtype=values.dtype, device=values.device), mask)
    return unit_totals(values, mask) / sizes


def remove_units(x: torch.Tensor, baseline: torch.Tensor, mask: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """Copies of one input `x` (1, ...) with the units flagged in `removed` (S, units) set to the baseline: (S, ...)."""
    gone = removed[:, mask[0].to(removed.device)]  # (S, *mask shape without batch)
    return torch.where(gone, baseline, x)
