"""What "removed" means: the value a unit takes when it is occluded, integrated from, or deleted.

Every attribution depends on this choice; it is made once per modality and used by every
method, so that their importances and deletion curves are comparable. No choice is neutral: the
explanations report the model's probabilities at the baseline (`at_baseline`), and the default
corpus's audio model reads the band means below as sad (p = 0.98, docs/explain.md).

- **Audio: the training split's mean level of each band**, constant over time (the
  `input_mean` buffer the audio model standardises with, so it carries no data of its own). A
  removed band or moment is then exactly what the model standardises to zero: the average
  band level with no temporal structure. Silence (the dB floor) is an input the model never
  saw, and a drop in probability mixes "this band mattered" with "this input is strange" (on
  the tests' corpus it ranks an uninformative band first).
- **Video: a mean face** (`mean_face` over the training clips' frames, per pixel and colour,
  constant over time) where the caller has one; otherwise zero in model space, which with the
  study's ImageNet normalisation is a uniform frame of the ImageNet mean colour. A removed
  frame or region is then a still average face (or a grey patch), not the clip's own face.
"""

from __future__ import annotations

import torch
from torch import nn

from avemo.explain.outputs import audio_branch


def band_means(model: nn.Module, frames: int) -> torch.Tensor:
    """(1, 1, bands, frames): each band at its training mean, for an AudioNet or a FusionNet's audio branch."""
    mean = audio_branch(model).input_mean.detach()
    return mean.expand(1, 1, mean.shape[2], frames).contiguous()


def mean_face(frames: torch.Tensor) -> torch.Tensor:
    """(1, 3, 1, H, W): the per-pixel mean of frame stacks (N, 3, T, H, W) over clips and frames."""
    return frames.mean(dim=(0, 2), keepdim=True)


def blank_face(frames: torch.Tensor) -> torch.Tensor:
    """(1, 3, 1, H, W) zeros: the model-space zero, for when no training frames are at hand."""
    return torch.zeros(1, frames.shape[1], 1, *frames.shape[3:], dtype=frames.dtype, device=frames.device)
