"""Tiny constructed corpora where one known unit carries the class, and small models trained on them
with the project's loop (seeded, CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from avemo.models.audio import AudioNet, AudioNetConfig
from avemo.models.fusion import FusionNet
from avemo.models.video import VideoNet, VideoNetConfig
from avemo.params import Loop
from avemo.training.loop import train

CLASSES = ["low", "high"]
BANDS, FRAMES = 16, 40
CARRIER_BAND = 11  # the only band whose level differs between the classes ...
CARRIER_FRAMES = slice(20, 30)  # ... and only in these frames: moment 2 of 10-frame windows
VIDEO_SHAPE = (12, 16, 20)  # frames, height, width
CARRIER_FRAME = 8  # the only frame whose ...
CARRIER_REGION = (slice(0, 8), slice(10, 20))  # ... top-right quarter differs between the classes

AUDIO = AudioNetConfig(kind="cnn", channels=(4, 8), kernels=((3, 3), (3, 3)), padding=(True, True), fc=16,
                       dropout=0.0, batch_norm=True, pooling="meanstd", input_shape=(BANDS, FRAMES))
VIDEO = VideoNetConfig(channels=(4, 8), pools=1, fc=(16, 8), dropout=0.0, batch_norm=True, input_shape=VIDEO_SHAPE)
LOOP = Loop(epochs=8, batch_size=32, lr=0.01, warmup_epochs=0, schedule="cosine", select="last",
                   clip_grad_norm=0.0, ema_decay=0.0, device="cpu", amp=False, seed=0)


def labels(n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).permutation(np.arange(n) % 2))


def spectrograms(y: torch.Tensor, seed: int) -> torch.Tensor:
    """Noise in every band, plus or minus a level step in the carrier band's frames by class."""
    g = torch.Generator().manual_seed(seed)
    x = 0.35 * torch.randn(len(y), 1, BANDS, FRAMES, generator=g)
    x[:, 0, CARRIER_BAND, CARRIER_FRAMES] += (2 * y.float() - 1)[:, None]
    return x


def frames(y: torch.Tensor, seed: int, carry: bool = True) -> torch.Tensor:
    """Noise frames; with `carry`, a brighter or darker top-right quarter in one frame by class."""
    g = torch.Generator().manual_seed(seed)
    x = 0.5 * torch.randn(len(y), 3, *VIDEO_SHAPE, generator=g)
    if carry:
        rows, cols = CARRIER_REGION
        x[:, :, CARRIER_FRAME, rows, cols] += 1.5 * (2 * y.float() - 1)[:, None, None, None]
    return x


def audio_model(x: torch.Tensor) -> AudioNet:
    torch.manual_seed(0)
    model = AudioNet(AudioNetConfig(**AUDIO.__dict__), len(CLASSES))
    bands = x.transpose(0, 2).reshape(BANDS, -1)
    model.set_input_statistics(bands.mean(1), bands.std(1))
    return model


def fit(model: torch.nn.Module, train_items: tuple[torch.Tensor, ...], val_items: tuple[torch.Tensor, ...],
        out: Path) -> torch.nn.Module:
    train(model, TensorDataset(*train_items), TensorDataset(*val_items), CLASSES, LOOP, out)
    return model.eval()


def trained_audio(out: Path) -> AudioNet:
    y, yv = labels(192, 1), labels(32, 2)
    x = spectrograms(y, 1)
    return fit(audio_model(x), (x, y), (spectrograms(yv, 2), yv), out)


def trained_video(out: Path) -> VideoNet:
    y, yv = labels(192, 3), labels(32, 4)
    torch.manual_seed(0)
    return fit(VideoNet(VIDEO, len(CLASSES)), (frames(y, 3), y), (frames(yv, 4), yv), out)


def trained_fusion_on_noise_video(audio: AudioNet, out: Path) -> FusionNet:
    """A fusion model whose video input is pure noise, so only the audio can carry the class; it
    starts from the trained audio model, as the project's fusion does (`train.fusion_init: branches`)."""
    y, yv = labels(192, 5), labels(32, 6)
    torch.manual_seed(0)
    model = FusionNet(AUDIO, VIDEO, len(CLASSES))
    model.audio.load_state_dict(audio.state_dict())
    return fit(model, (spectrograms(y, 5), frames(y, 5, carry=False), y),
               (spectrograms(yv, 6), frames(yv, 6, carry=False), yv), out)
