"""The 3-D CNN on face frames (the study's: 4 Conv3d, 3 MaxPool3d, 2 fully connected).

It reads uint8 RGB stacks (3, T, H, W) as the loaders give them and scales them itself, per batch,
on its own device (`normalise`: ImageNet's mean and sd, as the study, or [0, 1]): a loader then
copies a quarter of the bytes a float stack takes, and the scaling is one vectorised operation
per batch instead of one per item. Float stacks are taken as already scaled (model space: what
the explanations perturb).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from avemo.models import DoesNotFit
from avemo.params import VideoModel


@dataclass(frozen=True)
class VideoNetConfig:
    channels: tuple[int, ...] = (16, 32, 64, 128)
    pools: int = 3  # MaxPool3d (1 x 3 x 3, stride 1 x 2 x 2) after the first `pools` convolutions
    fc: tuple[int, int] = (256, 64)  # the second is the embedding size
    dropout: float = 0.2
    batch_norm: bool = False  # not in the study; without it the net can sit at chance for many epochs
    stem_pool: tuple[int, int, int] = (1, 1, 1)  # average-pool the input (frames, height, width) first: cheaper
    input_shape: tuple[int, int, int] = (20, 60, 100)  # frames x height x width
    normalise: str = "imagenet"  # how uint8 pixels are scaled: 'imagenet' (the study) or 'unit' ([0, 1])


PIXEL_SCALES = {"imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))}


def video_config(m: VideoModel, input_shape: tuple[int, int, int], normalise: str = "imagenet") -> VideoNetConfig:
    """The network that `models.video` describes, for frame stacks of `input_shape` (frames x height x width)."""
    return VideoNetConfig(input_shape=tuple(input_shape), normalise=normalise, **m.model_dump())


def scaled(frames: torch.Tensor, normalise: str) -> torch.Tensor:
    """uint8 pixel stacks (N, 3, T, H, W) in model space: x / 255, less the channel mean, over the channel sd."""
    if normalise not in PIXEL_SCALES:
        raise ValueError(f"video normalise must be one of {sorted(PIXEL_SCALES)}, not {normalise!r}")
    mean, sd = (torch.tensor(v, device=frames.device).view(1, 3, 1, 1, 1) for v in PIXEL_SCALES[normalise])
    return (frames.float() / 255 - mean) / sd


def video_feature_shape(cfg: VideoNetConfig) -> tuple[int, int, int]:
    t, h, w = (n // k for n, k in zip(cfg.input_shape, cfg.stem_pool))
    for b in range(len(cfg.channels)):
        t, h, w = t - 2, h - 2, w - 2
        if b < cfg.pools:
            h, w = (h - 3) // 2 + 1, (w - 3) // 2 + 1
        if min(t, h, w) < 1:
            raise DoesNotFit(f"video model: block {b + 1} shrinks the {cfg.input_shape} input to nothing; "
                             "use fewer blocks or pools, or more frames")
    return t, h, w


class VideoNet(nn.Module):
    def __init__(self, cfg: VideoNetConfig, n_classes: int):
        super().__init__()
        self.cfg = cfg
        t, h, w = video_feature_shape(cfg)
        layers, c_in = [], 3
        if cfg.stem_pool != (1, 1, 1):
            layers.append(nn.AvgPool3d(cfg.stem_pool))
        for b, c_out in enumerate(cfg.channels):
            layers.append(nn.Conv3d(c_in, c_out, 3, bias=not cfg.batch_norm))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm3d(c_out))
            layers.append(nn.ReLU())
            if b < cfg.pools:
                layers.append(nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)))
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        self.embedding = nn.Sequential(nn.Flatten(), nn.Linear(c_in * t * h * w, cfg.fc[0]), nn.ReLU(),
                                       nn.Dropout(cfg.dropout), nn.Linear(cfg.fc[0], cfg.fc[1]), nn.ReLU())
        self.head = nn.Linear(cfg.fc[1], n_classes)
        self.embedding_dim = cfg.fc[1]

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """The last convolution's maps; uint8 stacks are scaled here, float ones are taken as scaled."""
        return self.conv(scaled(frames, self.cfg.normalise) if frames.dtype == torch.uint8 else frames)

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.features(frames))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(frames))


class VideoOnly(nn.Module):
    """The video network fed from the joint loader's (spectrogram, frames) pair: frames only."""

    def __init__(self, net: VideoNet):
        super().__init__()
        self.net = net

    def forward(self, spectrogram: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)
