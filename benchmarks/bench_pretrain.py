"""Sync pre-training throughput: pairs per second through the training loop, on CPU (the pipeline's
threads) and, where a GPU is present, on CUDA with mixed precision.

Data: the pipeline's full-raw audio variant and its video stage (`dvc repro video`).
Two epochs per device; the second is reported (the first pays one-off warm-up).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import torch

from avemo.determinism import pin_torch
from avemo.params import load_params
from avemo.training.loop import train
from avemo.training.sync import SyncPairs, SyncTask, sync_model

AUDIO, VIDEO = Path("data/processed/audio/full-raw"), Path("data/processed/video/full-raw")


def main() -> None:
    params = load_params()
    pin_torch(params.train.threads, params.compute.cpu_isa)
    splits = pd.read_parquet("data/interim/splits.parquet")
    p = params.pretrain.sync
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        loop = params.pretrain.loop.applied_to(params.train.loop).model_copy(
            update={"epochs": 2, "device": device, "amp": True, "select": "last", "seed": p.seed})
        data, val = (SyncPairs(AUDIO, VIDEO, splits, role, 0, 0.0, p, loop.epochs, validation=role == "val")
                     for role in ("train", "val"))
        model = sync_model(params.models, p, data, params.train.video_normalise)
        with tempfile.TemporaryDirectory() as tmp:
            history = train(model, data, val, [], loop, Path(tmp), task=SyncTask(p))
        speed = history.speed[-1]
        amp = " with mixed precision" if device == "cuda" else ""
        print(f"{device}{amp}: {speed['items_per_s']:.0f} pairs/s, data wait {100 * speed['data_wait_share']:.0f} % "
              f"(batch {loop.batch_size}, {len(data)} pairs per epoch, torch threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
