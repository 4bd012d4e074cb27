"""Audio models on spectrograms: CNN, CNN + LSTM, CNN + RNN, built from configuration.

The recurrent models read the convolutional feature map along **time**, as a sequence (the
study fed its RNN a sequence of length 1, which makes it one more dense layer). Kernel
sizes, padding and depth are parameters: wide kernels with padding (Satt et al.) versus
narrow kernels without (Torfi et al.) is a question for the search.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

KINDS = ("cnn", "cnn_lstm", "cnn_rnn")


@dataclass(frozen=True)
class AudioNetConfig:
    kind: str = "cnn_rnn"
    channels: tuple[int, ...] = (8, 16, 16)
    kernels: tuple[tuple[int, int], ...] = ((5, 5), (3, 3), (3, 3))
    padding: tuple[bool, ...] = (True, True, True)  # per block: pad by kernel // 2, or not at all
    pool: int = 2
    hidden: int = 64  # recurrent hidden size per direction
    rnn_layers: int = 1
    bidirectional: bool = True
    rnn_dropout: float = 0.1
    fc: int = 64  # the embedding size (the layer before the output)
    dropout: float = 0.2
    input_shape: tuple[int, int] = (200, 300)  # frequency x time

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"audio model kind must be one of {KINDS}, not {self.kind!r}")
        if not len(self.channels) == len(self.kernels) == len(self.padding):
            raise ValueError("audio model: channels, kernels and padding need one entry per block")


#: The study's exact layer sizes (its published code): 3 blocks, 2-layer bidirectional RNN of 128.
PAPER = AudioNetConfig(channels=(16, 24, 32), kernels=((12, 16), (8, 12), (5, 7)), padding=(True, False, False),
                       hidden=128, rnn_layers=2, fc=64)


def feature_map_shape(cfg: AudioNetConfig) -> tuple[int, int]:
    """(frequency, time) after the blocks; a clear error when a configuration cannot fit the input."""
    f, t = cfg.input_shape
    for b, ((kf, kt), pad) in enumerate(zip(cfg.kernels, cfg.padding), start=1):
        f = (f + 2 * (kf // 2 if pad else 0) - kf + 1) // cfg.pool
        t = (t + 2 * (kt // 2 if pad else 0) - kt + 1) // cfg.pool
        if f < 1 or t < 1:
            raise ValueError(f"audio model: block {b} of {len(cfg.kernels)} shrinks the {cfg.input_shape} input to "
                             f"{max(f, 0)} x {max(t, 0)}; use fewer blocks, smaller kernels or padding")
    return f, t


class AudioNet(nn.Module):
    def __init__(self, cfg: AudioNetConfig, n_classes: int):
        super().__init__()
        self.cfg = cfg
        f, t = feature_map_shape(cfg)
        blocks, c_in = [], 1
        for c_out, (kf, kt), pad in zip(cfg.channels, cfg.kernels, cfg.padding):
            padding = (kf // 2, kt // 2) if pad else 0
            blocks += [nn.Conv2d(c_in, c_out, (kf, kt), padding=padding), nn.ReLU(), nn.MaxPool2d(cfg.pool)]
            c_in = c_out
        self.conv = nn.Sequential(*blocks)
        if cfg.kind == "cnn":
            self.rnn = None
            features = c_in * f * t
        else:
            rnn = nn.LSTM if cfg.kind == "cnn_lstm" else nn.RNN
            self.rnn = rnn(c_in * f, cfg.hidden, num_layers=cfg.rnn_layers, batch_first=True,
                           bidirectional=cfg.bidirectional, dropout=cfg.rnn_dropout if cfg.rnn_layers > 1 else 0.0)
            features = cfg.hidden * (2 if cfg.bidirectional else 1)
        self.embedding = nn.Sequential(nn.Flatten(), nn.Linear(features, cfg.fc), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.head = nn.Linear(cfg.fc, n_classes)
        self.embedding_dim = cfg.fc

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The layer before the output: used by fusion, pre-training and probing."""
        maps = self.conv(x)  # (B, C, F, T)
        if self.rnn is None:
            return self.embedding(maps)
        sequence = maps.flatten(1, 2).transpose(1, 2)  # (B, T, C*F): one step per time frame
        _, state = self.rnn(sequence)
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        last = hidden[-2:] if self.cfg.bidirectional else hidden[-1:]  # the top layer, both directions
        return self.embedding(last.transpose(0, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
