"""Grad-CAM on the video 3-D CNN: where in space and time its last convolution saw the class.

The map is the last convolution's rectified feature maps weighted by the mean gradient of the
class logit over each channel (Captum's LayerGradCam on the ReLU after the last Conv3d), then
rectified. Its resolution is that convolution's grid, which is coarse: with the default video
model (20 x 60 x 100 frames, stem pooling 2, four unpadded convolutions, two poolings) it is
12 moments x 1 row x 6 columns, so it can tell left from right and early from late, never eyes
from mouth. The grid is placed on the input at the **centres of its receptive fields** (unpadded
convolutions and pooling shrink the grid towards the middle), and interpolated linearly between
them, held constant beyond the outermost centres; stretching the grid over the whole input
instead would misplace a moment by up to four frames.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import LayerGradCam
from torch import nn

from avemo.explain.outputs import Scores
from avemo.models.video import VideoNet


def last_convolution(net: VideoNet) -> nn.Module:
    """The output of the last convolution block: the ReLU after the last Conv3d (rectified maps, as in Grad-CAM)."""
    layers = list(net.conv)
    last = max(i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv3d))
    return next(layer for layer in layers[last:] if isinstance(layer, nn.ReLU))


def grid_centres(net: VideoNet, layer: nn.Module, grid_shape: tuple[int, ...]) -> list[np.ndarray]:
    """For each axis (frames, height, width), the input coordinate of the centre of each cell of
    `layer`'s output grid: walk the convolutions and poolings before it, tracking where the first
    cell's receptive field is centred and how far apart neighbouring cells are."""
    start, jump = np.zeros(3), np.ones(3)
    for module in net.conv:
        if isinstance(module, (nn.Conv3d, nn.MaxPool3d, nn.AvgPool3d)):
            kernel, stride, padding = (_triple(getattr(module, a)) for a in ("kernel_size", "stride", "padding"))
            dilation = _triple(getattr(module, "dilation", 1))
            span = dilation * (kernel - 1)
            start = start + (span / 2 - padding) * jump
            jump = jump * stride
        if module is layer:
            return [start[a] + jump[a] * np.arange(grid_shape[a]) for a in range(3)]
    raise ValueError("the layer is not in the network's convolution stack")


def on_input_grid(maps: torch.Tensor, centres: list[np.ndarray], shape: tuple[int, int, int]) -> torch.Tensor:
    """(B, T', H', W') maps at `centres` -> (B, T, H, W), linear between centres, constant beyond."""
    weights = [torch.from_numpy(_interpolation(c, n)).to(maps) for c, n in zip(centres, shape)]
    return torch.einsum("bthw,Tt,Hh,Ww->bTHW", maps, *weights)


def grad_cam(logits: Scores, net: VideoNet, frames: torch.Tensor, target: torch.Tensor,
             context: tuple[torch.Tensor, ...] = ()) -> torch.Tensor:
    """(B, T, H, W): the Grad-CAM map of `target` for each frame stack, on the input's grid."""
    layer = last_convolution(net)
    maps = LayerGradCam(logits, layer).attribute(frames, target=target, additional_forward_args=context or None,
                                                 relu_attributions=True).detach()[:, 0]
    return on_input_grid(maps, grid_centres(net, layer, tuple(maps.shape[1:])), tuple(frames.shape[2:]))


def _interpolation(centres: np.ndarray, n: int) -> np.ndarray:
    """(n, cells): the weight of each cell's value at each input position."""
    eye = np.eye(len(centres))
    return np.stack([np.interp(np.arange(n), centres, eye[j]) for j in range(len(centres))], axis=1)


def _triple(value: int | tuple[int, ...]) -> np.ndarray:
    return np.array(value if isinstance(value, tuple) else (value,) * 3, dtype=float)
