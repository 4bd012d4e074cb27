"""Training throughput on CPU: items per second per model, and the share of step time spent
waiting for data (target: under 10 %), as the training loop itself measures them.

Data: 160 synthetic 3-second clips through the real `audio` stage (clip3s-raw), random face
frames in the video stage's layout, all in the training role; the models of params.yaml.
Each model trains 2 epochs with its family's loop settings (`train.loop` with `train.<family>`:
warm-up, cosine, clipping, weight averaging, `num_workers: 0`) on the pipeline's pinned threads
(`train.threads`, `compute.cpu_isa`); the second epoch is reported (the first pays one-off warm-up). `BENCH_AUGMENT=1` turns the
study's augmentation on (the loader's heaviest work); `BENCH_NUM_WORKERS=N` sets the
DataLoader workers.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from avemo.audio.segment import SegmentPolicy
from avemo.audio.variant import VariantConfig, build_variant
from avemo.data.datasets import AudioVisualDataset, SpectrogramDataset
from avemo.determinism import pin_torch
from avemo.labels import class_set
from avemo.models.kinds import KINDS
from avemo.params import STUDY_SPECTROGRAM, Balance, load_params
from avemo.training.loop import seed_everything, train
from avemo.training.recipe import spec_for
from benchmarks.bench_spectrogram import make_clips

N_CLIPS = int(os.environ.get("BENCH_TRAIN_CLIPS", "160"))
RUNS = [*(("audio", kind) for kind in KINDS), ("video", "cnn"), ("fusion", "cnn")]


def make_data(tmp: Path) -> tuple[Path, Path, pd.DataFrame]:
    utterances = make_clips(tmp, N_CLIPS)
    clips, _ = build_variant(utterances, VariantConfig(SegmentPolicy(), None, STUDY_SPECTROGRAM, workers=2), tmp / "audio")
    video = tmp / "video"
    video.mkdir()
    rng = np.random.default_rng(0)
    np.save(video / "frames.npy", rng.integers(0, 256, (len(clips), 20, 60, 100, 3), dtype=np.uint8))
    pd.DataFrame({"clip_id": clips["clip_id"], "row": np.arange(len(clips)), "has_video": True}).to_parquet(
        video / "clips.parquet")
    splits = pd.DataFrame({"utterance_id": clips["utterance_id"], "fold": 0, "role": "train"})
    return tmp / "audio", video, splits


def main() -> None:
    params = load_params()
    pin_torch(params.train.threads, params.compute.cpu_isa)
    classes = class_set(params.labels)
    workers = int(os.environ.get("BENCH_NUM_WORKERS", params.train.loop.num_workers))
    augment = params.train.augment.model_copy(
        update={"enabled": os.environ.get("BENCH_AUGMENT") == "1" or params.train.augment.enabled})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        audio, video, splits = make_data(tmp)
        print(f"{N_CLIPS} clips, batch {params.train.loop.batch_size}, num_workers {workers}, "
              f"torch threads {torch.get_num_threads()}, augmentation {'on' if augment.enabled else 'off'}")
        print(f"{'model':18s} {'items/s':>9s} {'data wait':>10s}")
        for family, kind in RUNS:
            if family == "audio":
                data = SpectrogramDataset(audio, splits, "train", classes, augment_params=augment, balance=Balance(mode="none"))
            else:
                data = AudioVisualDataset(audio, video, splits, "train", classes, augment_params=augment,
                                          balance=Balance(mode="none"), with_audio=family == "fusion")
            seed_everything(0)
            spec = spec_for(family, params.override({"models.audio.kind": kind}), classes, data.input_shape,
                            data.frames_shape if family != "audio" else None)
            loop = params.train.loop_for(family, 0).model_copy(update={"epochs": 2, "select": "last", "device": "cpu",
                                                                       "num_workers": workers})
            history = train(spec.build(), data, data, classes, loop, tmp / f"ck-{family}-{kind}")
            speed = history.speed[-1]
            print(f"{family + ':' + kind:18s} {speed['items_per_s']:9.1f} {100 * speed['data_wait_share']:9.1f}%")


if __name__ == "__main__":
    main()
