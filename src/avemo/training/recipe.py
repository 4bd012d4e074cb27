"""What params.yaml turns into for one training: datasets, model, loop settings, and `fit`.

Every training-like caller (each seed of a training stage, every search trial and confirmation
run, each label-efficiency arm) goes through `train_and_answer`, so there is one recipe and one loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from avemo.data.balance import class_weights
from avemo.data.datasets import AudioVisualDataset, SpectrogramDataset
from avemo.data.splits import refit_roles
from avemo.models.audio import audio_config
from avemo.models.checkpoint import ModelSpec, read_checkpoint
from avemo.models.fusion import FusionNet
from avemo.models.video import video_config
from avemo.params import FAMILIES, FusionInit, Params
from avemo.training.loop import History, predict, seed_everything, train


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


def build_datasets(family: str, params: Params, data: StageData, classes: list[str]) -> Splits:
    """The train, val and test roles of the fold in `train.fold` (`train.refit`: val joins train); balancing and
    augmentation on train only."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    t = params.train
    splits = pd.read_parquet(data.splits)
    if t.refit:
        splits = refit_roles(splits)
    if family == "audio":
        def make(role: str) -> SpectrogramDataset:
            return SpectrogramDataset(data.audio, splits, role, classes, t.fold, t.crop_ratio, t.augment, t.balance)
    else:
        if data.video is None:
            raise ValueError(f"the {family} family needs a video folder (--video)")

        def make(role: str) -> SpectrogramDataset:
            return AudioVisualDataset(data.audio, data.video, splits, role, classes, t.fold, t.crop_ratio, t.augment,
                                      t.balance, t.missing_video, with_audio=family == "fusion")
    out = Splits(make("train"), make("val"), make("test"))
    for role in ("train", "val", "test"):
        if len(getattr(out, role)) == 0:
            raise ValueError(f"the {role} split of {data.audio.name} has no items in classes {classes}")
    return out


def model_spec(family: str, params: Params, data: Splits) -> ModelSpec:
    """The architecture `models.*` describes for this family, for the inputs of `data`."""
    return spec_for(family, params, data.train.classes, data.train.input_shape,
                    data.train.frames_shape if family != "audio" else None)


def spec_for(family: str, params: Params, classes: list[str] | tuple[str, ...], input_shape: tuple[int, int],
             frames_shape: tuple[int, int, int] | None) -> ModelSpec:
    """The one place a ModelSpec is made from params: the family's networks for inputs of these shapes."""
    audio = audio_config(params.models.audio, input_shape) if family != "video" else None
    video = (video_config(params.models.video, frames_shape, params.train.video_normalise)
             if family != "audio" else None)
    return ModelSpec(family, tuple(classes), audio, video)


def initialise_branches(model: FusionNet, audio_weights: Path | None, video_weights: Path | None) -> None:
    """Start fusion from trained single-modality models (the study's audio sub-network is its best
    audio model); their output layers are not used, the fusion head is new."""
    if audio_weights is not None:
        _load_branch(model.audio, read_checkpoint(audio_weights)[1])
    if video_weights is not None:
        state = read_checkpoint(video_weights)[1]  # a video model's keys start with 'net.' (VideoOnly)
        _load_branch(model.video, {k.removeprefix("net."): v for k, v in state.items()})


def _load_branch(branch: torch.nn.Module, state: dict) -> None:
    """Everything but the branch's own output layer, which fusion does not use (and whose size
    follows the class set the branch was trained on)."""
    missing, unexpected = branch.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")},
                                                 strict=False)
    if unexpected or any(not k.startswith("head.") for k in missing):
        raise ValueError(f"fusion: the trained branch does not match models.* (missing {missing}, unexpected {unexpected})")


def branch_weights(folder: Path | None, seed: int) -> Path | None:
    """A trained branch for fusion: the same seed's model where the branch stage ran several seeds."""
    if folder is None:
        return None
    per_seed = folder / f"seed-{seed}" / "best.pt"
    return per_seed if per_seed.exists() else folder / "best.pt"


def fusion_init(init: FusionInit, folders: dict[str, Path | None], seed: int) -> tuple[Path | None, Path | None]:
    """(audio, video) weights that start a fusion model, by `train.fusion_init`: the trained
    single-modality models of the same seed, the sync pre-trained encoders, or nothing."""
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


def prepare_model(spec: ModelSpec, data: Splits, seed: int,
                  init: tuple[Path | None, Path | None] = (None, None)) -> torch.nn.Module:
    """A new model for a seed: weights drawn from it, the audio input standardised with the
    training split's band statistics, fusion branches loaded from `init` (audio, video weights)."""
    seed_everything(seed)  # the initial weights are part of what the seed fixes
    model = spec.build()
    audio = model if spec.family == "audio" else model.audio if spec.family == "fusion" else None
    if audio is not None:
        audio.set_input_statistics(*data.train.band_statistics())
    if spec.family == "fusion":
        initialise_branches(model, *init)
    return model


def loss_weights(params: Params, train_set: SpectrogramDataset) -> np.ndarray | None:
    if params.train.balance.mode == "class_weight":
        return class_weights(train_set.targets, len(train_set.classes))
    return None


def fit(model: torch.nn.Module, family: str, params: Params, data: Splits, seed: int, resume_dir: Path,
        on_epoch: Callable[[int, dict], None] | None = None, fingerprint: str = "",
        train_set: SpectrogramDataset | None = None) -> History:
    """Train `model` with the loop settings of params.yaml and `seed` (optionally on a subset of the
    training split); the final weights are left in the model."""
    train_set = train_set if train_set is not None else data.train
    return train(model, train_set, data.val, data.train.classes, params.train.loop_for(family, seed), resume_dir,
                 loss_weights(params, train_set), on_epoch=on_epoch, fingerprint=fingerprint)


@dataclass
class Trained:
    """A seed's model after training, its history, and its answers on the items it was asked about."""

    model: torch.nn.Module
    history: History
    y_true: np.ndarray
    y_pred: np.ndarray
    probabilities: np.ndarray  # (items, classes): what a join with another model multiplies


def train_and_answer(spec: ModelSpec, params: Params, data: Splits, seed: int, resume_dir: Path,
                     answer: SpectrogramDataset, device: torch.device,
                     init: tuple[Path | None, Path | None] = (None, None), frozen_branches: bool = False,
                     on_epoch: Callable[[int, dict], None] | None = None, fingerprint: str = "",
                     train_set: SpectrogramDataset | None = None) -> Trained:
    """One model, the one way: drawn from `seed` (`init`: fusion's branches, frozen for a linear probe),
    trained by `fit` (on `train_set`, a subset of the training split, if given), then asked about `answer`
    (the test split for a stage, a half of the validation items for a search)."""
    from torch.utils.data import DataLoader

    model = prepare_model(spec, data, seed, init)
    if frozen_branches:
        model.freeze_branches()
    history = fit(model, spec.family, params, data, seed, resume_dir, on_epoch, fingerprint, train_set)
    _, y_true, probabilities = predict(model, DataLoader(answer, batch_size=64), device)
    return Trained(model, history, y_true, probabilities.argmax(axis=1), probabilities)
