"""Audio models on spectrograms: CNN, CNN + LSTM, CNN + RNN (KINDS), built from configuration.

The recurrent models read the convolutional feature map along **time**, as a sequence (the
study fed its RNN a sequence of length 1, which makes it one more dense layer). Kernel
sizes, padding and depth are parameters: wide kernels with padding (Satt et al.) versus
narrow kernels without (Torfi et al.) is a question for the search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from avemo.models import DoesNotFit
from avemo.models.kinds import KINDS, POOLINGS, AudioLayers

if TYPE_CHECKING:
    from avemo.params import AudioModel


def trend(maps: torch.Tensor) -> torch.Tensor:
    """Least-squares slope of each feature over time (time scaled to [-1, 1]): rising or falling contours."""
    t = torch.linspace(-1, 1, maps.shape[-1], device=maps.device, dtype=maps.dtype)
    return (maps * t).sum(dim=-1) / t.square().sum()


#: Pooled read-outs of a (..., time) feature map: any length of input gives the same number of features.
TIME_POOLS = {
    "mean": lambda m: [m.mean(dim=-1)],
    "meanmax": lambda m: [m.mean(dim=-1), m.amax(dim=-1)],
    "meanstd": lambda m: [m.mean(dim=-1), m.std(dim=-1)],  # statistics pooling, as in x-vectors
    "stats": lambda m: [m.mean(dim=-1), m.std(dim=-1), trend(m)],  # ... and each feature's trend
}
assert POOLINGS == ("flatten", *TIME_POOLS), "models/kinds.py's POOLINGS name every read-out here"


class AudioNetConfig(AudioLayers):
    """A built network's configuration: the knobs and the spectrograms' shape."""

    input_shape: tuple[int, int] = (200, 300)  # frequency x time


#: The study's exact layer sizes (its published code): 3 blocks, 2-layer bidirectional RNN of 128, no batch norm.
PAPER = AudioNetConfig(channels=(16, 24, 32), kernels=((12, 16), (8, 12), (5, 7)), padding=(True, False, False),
                       hidden=128, rnn_layers=2, fc=64, batch_norm=False, pooling="flatten")


def audio_config(m: AudioModel, input_shape: tuple[int, int]) -> AudioNetConfig:
    """The network that `models.audio` describes, for spectrograms of `input_shape` (bins x frames)."""
    shape = tuple(int(n) for n in input_shape)
    if m.preset == "paper":
        return PAPER.model_copy(update={"kind": m.kind, "input_shape": shape})
    return AudioNetConfig(input_shape=shape, **m.model_dump(exclude={"preset"}))


def feature_map_shape(cfg: AudioNetConfig) -> tuple[int, int]:
    """(frequency, time) after the blocks; DoesNotFit when a configuration cannot fit the input."""
    f, t = cfg.input_shape
    for b, ((kf, kt), pad) in enumerate(zip(cfg.kernels, cfg.padding), start=1):
        f = (f + 2 * (kf // 2 if pad else 0) - kf + 1) // cfg.pool
        t = (t + 2 * (kt // 2 if pad else 0) - kt + 1) // cfg.pool
        if f < 1 or t < 1:
            raise DoesNotFit(f"audio model: block {b} of {len(cfg.kernels)} shrinks the {cfg.input_shape} input to "
                             f"{max(f, 0)} x {max(t, 0)}; use fewer blocks, smaller kernels or padding")
    return f, t


class AudioNet(nn.Module):
    """Input standardisation per frequency band, convolution blocks, then a dense, recurrent or pooled read-out.

    The band statistics are buffers set from the training split (`set_input_statistics`), so
    the saved and served model carries the normalisation it was trained with.
    """

    def __init__(self, cfg: AudioNetConfig, n_classes: int):
        super().__init__()
        self.cfg = cfg
        f, t = feature_map_shape(cfg)
        self.register_buffer("input_mean", torch.zeros(1, 1, cfg.input_shape[0], 1))
        self.register_buffer("input_std", torch.ones(1, 1, cfg.input_shape[0], 1))
        blocks, c_in = [], 1
        for c_out, (kf, kt), pad in zip(cfg.channels, cfg.kernels, cfg.padding):
            padding = (kf // 2, kt // 2) if pad else 0
            blocks.append(nn.Conv2d(c_in, c_out, (kf, kt), padding=padding, bias=not cfg.batch_norm))
            if cfg.batch_norm:
                blocks.append(nn.BatchNorm2d(c_out))
            blocks += [nn.ReLU(), nn.MaxPool2d(cfg.pool)]
            c_in = c_out
        self.conv = nn.Sequential(*blocks)
        block = KINDS[cfg.kind]
        if block is None:
            self.rnn = None
            features = c_in * f * (t if cfg.pooling == "flatten" else len(TIME_POOLS[cfg.pooling](torch.zeros(1, 2))))
        else:
            self.rnn = (getattr(nn, block) if isinstance(block, str) else block)(c_in * f, cfg.hidden, num_layers=cfg.rnn_layers, batch_first=True,
                           bidirectional=cfg.bidirectional, dropout=cfg.rnn_dropout if cfg.rnn_layers > 1 else 0.0)
            features = cfg.hidden * (2 if cfg.bidirectional else 1)
        self.embedding = nn.Sequential(nn.Linear(features, cfg.fc), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.head = nn.Linear(cfg.fc, n_classes)
        self.embedding_dim = cfg.fc

    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-band mean and standard deviation (length = frequency rows) of the training inputs."""
        self.input_mean.copy_(mean.reshape(self.input_mean.shape))
        self.input_std.copy_(std.reshape(self.input_std.shape).clamp_min(1e-3))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The layer before the output: used by fusion, pre-training and probing."""
        return self.embedding(self.read_out(self.conv((x - self.input_mean) / self.input_std)))

    def read_out(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, C, F, T) feature maps -> (B, features): flattened, pooled over time, or read by the RNN along time."""
        if self.rnn is None:
            if self.cfg.pooling == "flatten":
                return maps.flatten(1)
            return torch.cat(TIME_POOLS[self.cfg.pooling](maps), dim=2).flatten(1)
        sequence = maps.flatten(1, 2).transpose(1, 2)  # (B, T, C*F): one step per time frame
        _, state = self.rnn(sequence)
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        last = hidden[-2:] if self.cfg.bidirectional else hidden[-1:]  # the top layer, both directions
        return last.transpose(0, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
