"""The `pretrain_sync` stage: the fusion model's encoders pre-trained on audio-video synchrony,
with the one training loop (task: training/sync.py), tracked in MLflow, resumable.

Outputs: `audio.pt` and `video.pt` (the encoders, loadable as fusion branches by
`train.fusion_init: pretrained`), `best.pt` (with the projections), the validation
synchronisation accuracy per kind of negative in the metrics file.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import torch

from avemo.determinism import environment, pin_cpu
from avemo.models.audio import AudioNet
from avemo.models.video import VideoNet
from avemo.params import as_tuples
from avemo.reports import write_json
from avemo.tracking import (
    flatten,
    git_commit,
    input_hashes,
    log_epoch,
    log_inputs,
    use_experiment,
)
from avemo.training.loop import TrainConfig, pick_device, seed_everything, train
from avemo.training.recipe import audio_config, video_config
from avemo.training.resume import ResumeFolder, code_hash, fingerprint
from avemo.training.sync import SyncNet, SyncPairs, SyncParams, SyncTask


def sync_params(params: dict) -> SyncParams:
    return SyncParams(**as_tuples(params["pretrain"]["sync"]))


def pretrain_config(params: dict) -> TrainConfig:
    """`train.loop` with the pre-training's own changes (`pretrain.loop`)."""
    return TrainConfig(**{**params["train"]["loop"], **params["pretrain"]["loop"], "seed": params["pretrain"]["sync"]["seed"]})


def build_sync_model(params: dict, kind: str, train_set: SyncPairs) -> SyncNet:
    """Both encoders as the fusion model builds them (the same architecture, so they can start it)."""
    seed_everything(params["pretrain"]["sync"]["seed"])
    audio = AudioNet(audio_config(params["models"], kind, tuple(train_set.spectrograms.shape[1:3])), 2)
    audio.set_input_statistics(*train_set.band_statistics())
    video = VideoNet(video_config(params["models"]), 2)
    return SyncNet(audio, video, sync_params(params).embedding)


def run_pretraining(params: dict, kind: str, audio_dir: Path, video_dir: Path, splits_path: Path, out_dir: Path,
                    metrics: Path, plots: Path, stage: str = "pretrain_sync") -> dict:
    t = params["train"]
    pin_cpu(t["threads"], t["cpu_isa"])
    p, cfg = sync_params(params), pretrain_config(params)
    splits = pd.read_parquet(splits_path)
    train_set = SyncPairs(audio_dir, video_dir, splits, "train", t["fold"], t["crop_ratio"], p, cfg.epochs,
                          normalise=t["video_normalise"])
    val_set = SyncPairs(audio_dir, video_dir, splits, "val", t["fold"], t["crop_ratio"], p, cfg.epochs, validation=True,
                        normalise=t["video_normalise"])
    model = build_sync_model(params, kind, train_set)
    hashes = input_hashes([audio_dir, video_dir, splits_path])
    key = fingerprint(stage, kind, {k: params[k] for k in ("pretrain", "models")},
                      {k: t[k] for k in ("threads", "cpu_isa", "fold", "crop_ratio", "video_normalise", "loop")},
                      hashes, code_hash())
    resume = ResumeFolder(stage, key)
    use_experiment("pretrain")
    with resume.mlflow_run("run", stage) as run:
        mlflow.set_tags({"git_commit": git_commit(), "dvc_stage": stage, "dataset_variant": audio_dir.name,
                         "labels_used": "none", "pairs_train": len(train_set), "pairs_val": len(val_set),
                         **environment(pick_device(cfg.device)), **hashes})
        mlflow.log_params(flatten({"pretrain": params["pretrain"], "kind": kind, "models": params["models"]}))
        log_inputs({audio_dir.name: audio_dir, f"video-{video_dir.name}": video_dir, "splits": splits_path}, hashes)
        history = train(model, train_set, val_set, [], cfg, out_dir, resume_dir=resume.sub("loop"), fingerprint=key,
                        task=SyncTask(p), on_epoch=log_epoch)
        if history.resumed_from > 0:
            print(f"{stage}: resumed from epoch {history.resumed_from}", flush=True)
            mlflow.set_tag("resumed_from_epoch", history.resumed_from)
        final = history.epochs[history.best_epoch]
        mlflow.log_metrics({f"final_{k}": v for k, v in final.items() if k.startswith("val_")})
        run_id = run.info.run_id
    torch.save(model.audio.state_dict(), out_dir / "audio.pt")
    torch.save(model.video.state_dict(), out_dir / "video.pt")
    summary = {**{k: v for k, v in final.items() if k.startswith("val_")}, "epoch": history.best_epoch,
               "chance": 0.5, "mlflow_run_id": run_id}
    write_json(metrics, summary)
    plots.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(history.epochs).to_csv(plots / "learning_curve.csv", index=False)
    resume.finish()
    return summary
