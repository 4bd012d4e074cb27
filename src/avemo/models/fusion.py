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

    def embed(self, spectrogram: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.audio.embed(spectrogram), self.video.embed(frames)], dim=1)

    def forward(self, spectrogram: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(spectrogram, frames))
