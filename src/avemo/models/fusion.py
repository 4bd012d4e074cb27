"""Two-stream fusion: audio and video embeddings, concatenated, into one output layer.

The video branch receives the **frames** (the study's notebook fed it the spectrogram).
"""

from __future__ import annotations

import torch
from torch import nn

from avemo.models.audio import AudioNet, AudioNetConfig
from avemo.models.video import VideoNet, VideoNetConfig


class FusionNet(nn.Module):
    def __init__(self, audio: AudioNetConfig, video: VideoNetConfig, n_classes: int):
        super().__init__()
        self.audio = AudioNet(audio, n_classes)
        self.video = VideoNet(video, n_classes)
        self.embedding_dim = self.audio.embedding_dim + self.video.embedding_dim
        self.head = nn.Linear(self.embedding_dim, n_classes)

    def freeze_branches(self) -> None:
        """Train the output layer only: a linear probe of the two encoders' embeddings."""
        self.frozen = True
        for p in (*self.audio.parameters(), *self.video.parameters()):
            p.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "FusionNet":
        super().train(mode)
        if getattr(self, "frozen", False):  # frozen encoders keep their batch-norm statistics too
            self.audio.eval()
            self.video.eval()
        return self

    def embed(self, spectrogram: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.audio.embed(spectrogram), self.video.embed(frames)], dim=1)

    def forward(self, spectrogram: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(spectrogram, frames))
