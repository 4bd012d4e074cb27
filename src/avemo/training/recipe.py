"""What params.yaml turns into for one training: datasets, model, loop settings, and `fit`.

Every training-like caller (a training stage, each of its seeds, every search trial, the
label-efficiency runs) goes through `fit`, so there is one recipe and one loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from avemo.data.augment import AugmentParams
from avemo.data.balance import class_weights
from avemo.data.datasets import AudioVisualDataset, BalanceParams, SpectrogramDataset
from avemo.models.audio import PAPER, AudioNet, AudioNetConfig
from avemo.models.fusion import FusionNet
from avemo.models.video import VideoNet, VideoNetConfig
from avemo.params import as_tuples
from avemo.training.loop import History, TrainConfig, seed_everything, train

FAMILIES = ("audio", "video", "fusion")


@dataclass(frozen=True)
class StageData:
    """Where a training reads its inputs."""

    audio: Path  # an audio variant folder
    video: Path | None  # a video folder (video and fusion families)
    splits: Path


@dataclass
class Splits:
    train: SpectrogramDataset
    val: SpectrogramDataset
    test: SpectrogramDataset


def audio_config(models: dict, kind: str, input_shape: tuple[int, int] = (200, 300)) -> AudioNetConfig:
    """The audio network of `models.audio` for spectrograms of `input_shape` (bins x frames)."""
    kind = models["audio"].get("kind", kind)  # a search may choose the kind
    if models["audio"].get("preset") == "paper":
        return replace(PAPER, kind=kind, input_shape=input_shape)
    return AudioNetConfig(kind=kind, input_shape=input_shape,
                          **as_tuples({k: v for k, v in models["audio"].items() if k not in ("preset", "kind")}))


def video_config(models: dict) -> VideoNetConfig:
    return VideoNetConfig(**as_tuples(models["video"]))


def build_datasets(family: str, params: dict, data: StageData, classes: list[str]) -> Splits:
    """The train, val and test roles of the fold in `train.fold`; balancing and augmentation on train only."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    t = params["train"]
    splits = pd.read_parquet(data.splits)
    balance = BalanceParams(**t["balance"])
    augment = AugmentParams(**t["augment"])
    if family == "audio":
        make = lambda role: SpectrogramDataset(data.audio, splits, role, classes, t["fold"], t["crop_ratio"],
                                               augment, balance)
    else:
        if data.video is None:
            raise ValueError(f"the {family} family needs a video folder (--video)")
        make = lambda role: AudioVisualDataset(data.audio, data.video, splits, role, classes, t["fold"],
                                               t["crop_ratio"], augment, balance, t["missing_video"],
                                               t["video_normalise"])
    out = Splits(make("train"), make("val"), make("test"))
    for role in ("train", "val", "test"):
        if len(getattr(out, role)) == 0:
            raise ValueError(f"the {role} split of {data.audio.name} has no items in classes {classes}")
    return out


class VideoOnly(torch.nn.Module):
    """The video network fed from the joint loader's (spectrogram, frames) pair: frames only."""

    def __init__(self, net: VideoNet):
        super().__init__()
        self.net = net

    def forward(self, spectrogram: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)


def build_model(family: str, kind: str, params: dict, n_classes: int,
                input_shape: tuple[int, int] = (200, 300)) -> torch.nn.Module:
    models = params["models"]
    if family == "audio":
        return AudioNet(audio_config(models, kind, input_shape), n_classes)
    if family == "video":
        return VideoOnly(VideoNet(video_config(models), n_classes))
    return FusionNet(audio_config(models, kind, input_shape), video_config(models), n_classes)


def initialise_branches(model: FusionNet, audio_weights: Path | None, video_weights: Path | None) -> None:
    """Start fusion from trained single-modality models (the study's audio sub-network is its best
    audio model); their output layers are not used, the fusion head is new."""
    if audio_weights is not None:
        _load_branch(model.audio, torch.load(audio_weights, weights_only=True))
    if video_weights is not None:
        state = torch.load(video_weights, weights_only=True)  # saved through VideoOnly: 'net.' keys
        _load_branch(model.video, {k.removeprefix("net."): v for k, v in state.items()})


def _load_branch(branch: torch.nn.Module, state: dict) -> None:
    """Everything but the branch's own output layer, which fusion does not use (and whose size
    follows the class set the branch was trained on)."""
    missing, unexpected = branch.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")},
                                                 strict=False)
    if unexpected or any(not k.startswith("head.") for k in missing):
        raise ValueError(f"fusion: the trained branch does not match models.* (missing {missing}, unexpected {unexpected})")


FUSION_INITS = ("branches", "pretrained", "scratch")


def branch_weights(folder: Path | None, seed: int) -> Path | None:
    """A trained branch for fusion: the same seed's model where the branch stage ran several seeds."""
    if folder is None:
        return None
    per_seed = folder / f"seed-{seed}" / "best.pt"
    return per_seed if per_seed.exists() else folder / "best.pt"


def fusion_init(params: dict, folders: dict[str, Path | None], seed: int) -> tuple[Path | None, Path | None]:
    """(audio, video) weights that start a fusion model, by `train.fusion_init`: the trained
    single-modality models of the same seed, the sync pre-trained encoders, or nothing."""
    init = params["train"]["fusion_init"]
    if init not in FUSION_INITS:
        raise ValueError(f"train.fusion_init must be one of {FUSION_INITS}, not {init!r}")
    if init == "branches":
        if folders.get("init_audio") is None or folders.get("init_video") is None:
            raise ValueError("train.fusion_init=branches needs trained audio and video models (--init-audio, --init-video)")
        return branch_weights(folders["init_audio"], seed), branch_weights(folders["init_video"], seed)
    if init == "pretrained":
        folder = folders.get("init_pretrained")
        if folder is None:
            raise ValueError("train.fusion_init=pretrained needs the sync pre-trained encoders (--init-pretrained)")
        return folder / "audio.pt", folder / "video.pt"
    return None, None


def prepare_model(family: str, kind: str, params: dict, data: Splits, seed: int,
                  init: tuple[Path | None, Path | None] = (None, None)) -> torch.nn.Module:
    """A new model for a seed: weights drawn from it, the audio input standardised with the
    training split's band statistics, fusion branches loaded from `init` (audio, video weights)."""
    seed_everything(seed)  # the initial weights are part of what the seed fixes
    model = build_model(family, kind, params, len(data.train.classes), data.train.input_shape)
    audio = model if family == "audio" else model.audio if family == "fusion" else None
    if audio is not None:
        audio.set_input_statistics(*data.train.band_statistics())
    if family == "fusion":
        initialise_branches(model, *init)
    return model


def loop_config(params: dict, family: str, seed: int) -> TrainConfig:
    """`train.loop`, with the family's own changes (`train.<family>`), for one seed."""
    return TrainConfig(**{**params["train"]["loop"], **(params["train"].get(family) or {}), "seed": seed})


def loss_weights(params: dict, train_set: SpectrogramDataset) -> np.ndarray | None:
    if params["train"]["balance"]["mode"] == "class_weight":
        return class_weights(train_set.targets, len(train_set.classes))
    return None


def fit(model: torch.nn.Module, family: str, params: dict, data: Splits, seed: int, out_dir: Path,
        on_epoch: Callable[[int, dict], None] | None = None, resume_dir: Path | None = None,
        fingerprint: str = "", train_set: SpectrogramDataset | None = None) -> History:
    """Train `model` with the loop settings of params.yaml and `seed` (optionally on a subset of
    the training split); the final weights are left in the model and in `out_dir/best.pt`."""
    train_set = train_set if train_set is not None else data.train
    return train(model, train_set, data.val, data.train.classes,
                 loop_config(params, family, seed), out_dir, loss_weights(params, train_set), on_epoch=on_epoch,
                 resume_dir=resume_dir, fingerprint=fingerprint)
