"""A training stage: datasets from params, one model, one tracked MLflow run, DVC metrics and plots."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import infer_signature
from torch.utils.data import DataLoader

from avemo.corpus.index import class_set
from avemo.data.augment import AugmentParams
from avemo.data.balance import class_weights
from avemo.data.datasets import AudioVisualDataset, BalanceParams, SpectrogramDataset
from avemo.models.audio import PAPER, AudioNet, AudioNetConfig
from avemo.models.fusion import FusionNet
from avemo.models.packing import PackedInputs, pack
from avemo.models.video import VideoNet, VideoNetConfig
from avemo.params import as_tuples
from avemo.reports import write_json
from avemo.tracking import flatten, git_commit, input_hashes, log_evaluation, use_experiment
from avemo.training.loop import (TrainConfig, evaluate, pick_device, process_group, rank_and_world,
                                 seed_everything, train)


@dataclass(frozen=True)
class StagePaths:
    audio: Path  # an audio variant folder
    video: Path | None  # a video folder (video and fusion families)
    splits: Path
    model_dir: Path  # checkpoints
    metrics: Path  # reports/metrics/<stage>.json
    plots: Path  # folder for the DVC plot files
    init_audio: Path | None = None  # fusion: checkpoint folder of a trained audio model
    init_video: Path | None = None  # fusion: checkpoint folder of a trained video model


def audio_config(models: dict, kind: str) -> AudioNetConfig:
    if models["audio"].get("preset") == "paper":
        return replace(PAPER, kind=kind)
    return AudioNetConfig(kind=kind, **as_tuples({k: v for k, v in models["audio"].items() if k != "preset"}))


def video_config(models: dict) -> VideoNetConfig:
    return VideoNetConfig(**as_tuples(models["video"]))


def build_datasets(family: str, params: dict, paths: StagePaths, classes: list[str]):
    t = params["train"]
    splits = pd.read_parquet(paths.splits)
    balance = BalanceParams(**t["balance"])
    augment = AugmentParams(**t["augment"])
    if family == "audio":
        make = lambda role: SpectrogramDataset(paths.audio, splits, role, classes, t["fold"], t["crop_ratio"],
                                               augment, balance)
    else:
        make = lambda role: AudioVisualDataset(paths.audio, paths.video, splits, role, classes, t["fold"],
                                               t["crop_ratio"], augment, balance, t["missing_video"],
                                               t["video_normalise"])
    return make("train"), make("val"), make("test")


class VideoOnly(torch.nn.Module):
    """The video network fed from the joint loader's (spectrogram, frames) pair: frames only."""

    def __init__(self, net: VideoNet):
        super().__init__()
        self.net = net

    def forward(self, spectrogram: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)


def build_model(family: str, kind: str, params: dict, n_classes: int) -> torch.nn.Module:
    models = params["models"]
    if family == "audio":
        return AudioNet(audio_config(models, kind), n_classes)
    if family == "video":
        return VideoOnly(VideoNet(video_config(models), n_classes))
    return FusionNet(audio_config(models, kind), video_config(models), n_classes)


def initialise_branches(model: FusionNet, audio_dir: Path | None, video_dir: Path | None) -> None:
    """Start fusion from trained single-modality models (the study's audio sub-network is its best
    audio model); their output layers are not used, the fusion head is new."""
    if audio_dir is not None:
        _load_branch(model.audio, torch.load(audio_dir / "best.pt", weights_only=True))
    if video_dir is not None:
        state = torch.load(video_dir / "best.pt", weights_only=True)  # saved through VideoOnly: 'net.' keys
        _load_branch(model.video, {k.removeprefix("net."): v for k, v in state.items()})


def _load_branch(branch: torch.nn.Module, state: dict) -> None:
    """Everything but the branch's own output layer, which fusion does not use (and whose size
    follows the class set the branch was trained on)."""
    missing, unexpected = branch.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")},
                                                 strict=False)
    if unexpected or any(not k.startswith("head.") for k in missing):
        raise ValueError(f"fusion: the trained branch does not match models.* (missing {missing}, unexpected {unexpected})")


def run_training(family: str, kind: str, variant: str, stage: str, params: dict, paths: StagePaths) -> dict:
    """Train and evaluate one model in one MLflow run; return the test metrics.

    Under torchrun every rank trains its shard; rank 0 alone records the run and writes outputs.
    """
    with process_group():
        return _run_training(family, kind, variant, stage, params, paths)


def _run_training(family: str, kind: str, variant: str, stage: str, params: dict, paths: StagePaths) -> dict:
    classes = class_set(params["labels"])
    train_set, val_set, test_set = build_datasets(family, params, paths, classes)
    for role, ds in (("train", train_set), ("val", val_set), ("test", test_set)):
        if len(ds) == 0:
            raise ValueError(f"{stage}: the {role} split of {variant} has no items in classes {classes}")
    cfg = TrainConfig(**params["train"]["loop"])
    seed_everything(cfg.seed)  # the initial weights are part of what the seed fixes
    model = build_model(family, kind, params, len(classes))
    if family == "fusion":
        initialise_branches(model, paths.init_audio, paths.init_video)
    weights = None
    if params["train"]["balance"]["mode"] == "class_weight":
        weights = class_weights(train_set.targets, len(classes))
    device = pick_device(cfg.device)
    test_loader = DataLoader(test_set, batch_size=cfg.batch_size)
    if rank_and_world()[0] != 0:
        train(model, train_set, val_set, classes, cfg, paths.model_dir, weights)
        return evaluate(model, test_loader, device, classes)[0]

    use_experiment(family)
    run_params = {"family": family, "model": kind, "variant": variant, "classes": ",".join(classes),
                  "train": params["train"], "models": params["models"], "labels.set": params["labels"]["set"],
                  "world_size": rank_and_world()[1],
                  "init_audio": str(paths.init_audio or ""), "init_video": str(paths.init_video or "")}
    tags = {"git_commit": git_commit(), "dvc_stage": stage, "dataset_variant": variant,
            "class_set": params["labels"]["set"], "items_train": len(train_set), "items_val": len(val_set),
            "items_test": len(test_set), "device": str(device),
            **input_hashes([p for p in (paths.audio, paths.video, paths.splits) if p is not None])}
    with mlflow.start_run(run_name=stage) as run:
        mlflow.set_tags({k: str(v) for k, v in tags.items()})
        mlflow.log_params(flatten(run_params))
        history = train(model, train_set, val_set, classes, cfg, paths.model_dir, weights,
                        on_epoch=lambda epoch, record: mlflow.log_metrics(
                            {k: v for k, v in record.items() if k != "epoch"}, step=epoch))
        test, y_true, y_pred = evaluate(model, test_loader, device, classes)
        mlflow.log_metrics({"best_epoch": history.best_epoch, "best_val_ua": history.best_ua})
        with tempfile.TemporaryDirectory() as tmp:
            log_evaluation(test, classes, history.epochs, Path(tmp))
        if params["train"]["log_model"]:
            log_model(model.cpu(), test_set)
        run_id = run.info.run_id
    write_dvc_outputs(test, history, classes, y_true, y_pred, run_id, paths)
    return test


def log_model(model: torch.nn.Module, example_set) -> None:
    """The PyTorch flavour with an input example and a signature (MLflow 3: `name=`).

    Models with several inputs (video via the joint loader, fusion) are logged behind
    `PackedInputs`: one flat array per item, spectrogram then frames.
    """
    model.eval()
    inputs = [x[None] for x in example_set[0][:-1]]
    if len(inputs) > 1:
        model = PackedInputs(model, [x.shape[1:] for x in inputs])
        inputs = [pack(*inputs)]
    example = inputs[0].numpy()
    with torch.no_grad():
        output = model(inputs[0]).numpy()
    mlflow.pytorch.log_model(model, name="model", input_example=example, signature=infer_signature(example, output))


def write_dvc_outputs(test: dict, history, classes, y_true, y_pred, run_id: str, paths: StagePaths) -> None:
    write_json(paths.metrics, {
        "test_wa": test["wa"], "test_ua": test["ua"], "test_f1_macro": test["f1_macro"],
        "test_recall": test["recall"], "best_epoch": history.best_epoch, "best_val_ua": history.best_ua,
        "mlflow_run_id": run_id})
    paths.plots.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"actual": np.array(classes)[y_true], "predicted": np.array(classes)[y_pred]}).to_csv(
        paths.plots / "confusion.csv", index=False)
    pd.DataFrame(history.epochs).to_csv(paths.plots / "learning_curve.csv", index=False)
