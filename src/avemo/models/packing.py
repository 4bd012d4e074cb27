"""One flat input tensor for models that take several: MLflow's PyTorch flavour passes one array.

The wire format is documented and fixed: each input flattened per item, concatenated in order
(spectrogram, then frames), so `models:/avemo-fusion@champion` can be called with one array.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PackedInputs(nn.Module):
    def __init__(self, model: nn.Module, shapes: list[tuple[int, ...]]):
        super().__init__()
        self.model = model
        self.shapes = [tuple(s) for s in shapes]
        self.sizes = [math.prod(s) for s in self.shapes]

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        parts = torch.split(packed, self.sizes, dim=1)
        return self.model(*(p.reshape(-1, *s) for p, s in zip(parts, self.shapes)))


def pack(*inputs: torch.Tensor) -> torch.Tensor:
    """Batch-first inputs -> (batch, sum of item sizes)."""
    return torch.cat([x.flatten(1) for x in inputs], dim=1)
