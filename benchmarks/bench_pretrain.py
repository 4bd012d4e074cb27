"""Sync pre-training throughput: pairs per second through the training loop, on CPU (the pipeline's
threads) and, where a GPU is present, on CUDA with mixed precision.

Data: the pipeline's full-raw audio variant and full video stage (`dvc repro video@full`).
Two epochs per device; the second is reported (the first pays one-off warm-up).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import torch

from avemo.determinism import pin_cpu
from avemo.params import load_params
from avemo.training.loop import train
from avemo.training.pretrain import build_sync_model, pretrain_config, sync_params
from avemo.training.sync import SyncPairs, SyncTask
from avemo.tuning.space import apply

AUDIO, VIDEO = Path("data/processed/audio/full-raw"), Path("data/processed/video/full")


def main() -> None:
    params = load_params()
    pin_cpu(params["train"]["threads"], params["train"]["cpu_isa"])
    splits = pd.read_parquet("data/interim/splits.parquet")
    p = sync_params(params)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        params_here = apply(params, {"pretrain.loop.epochs": 2, "pretrain.loop.device": device,
                                     "pretrain.loop.amp": True, "pretrain.loop.select": "last"})
        cfg = pretrain_config(params_here)
        data, val = (SyncPairs(AUDIO, VIDEO, splits, role, 0, 0.0, p, cfg.epochs, validation=role == "val",
                               normalise=params["train"]["video_normalise"]) for role in ("train", "val"))
        model = build_sync_model(params_here, "cnn", data)
        with tempfile.TemporaryDirectory() as tmp:
            history = train(model, data, val, [], cfg, Path(tmp), task=SyncTask(p))
        speed = history.speed[-1]
        amp = " with mixed precision" if device == "cuda" else ""
        print(f"{device}{amp}: {speed['items_per_s']:.0f} pairs/s, data wait {100 * speed['data_wait_share']:.0f} % "
              f"(batch {cfg.batch_size}, {len(data)} pairs per epoch, torch threads {torch.get_num_threads()})")
