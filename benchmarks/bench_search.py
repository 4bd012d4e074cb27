"""Does a short trial rank configurations as a full training does? The rank correlation (Spearman) between a
sample of the audio space's configurations trained for a search's epochs and for the final model's.

A search ranks trials after `tune.audio.epochs`; if that ranking does not hold at `train.loop.epochs`, more
trials of the same length buy nothing. Configurations are drawn from the audio space of params.yaml with a
seeded random sampler (not TPE: the sample should be the space, not a search's path), each trained with
`train.loop.seed` twice, short and full, and scored on the selection half of the validation items, as a
trial is. Data: the pipeline's own stage outputs (`dvc repro audio split` first). Configurations that
cannot fit the input or diverge are counted and left out.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import optuna
from scipy.stats import spearmanr

from avemo.params import load_params
from avemo.stages.tune import search_config
from avemo.training.loop import TrainingDiverged
from avemo.tuning.space import sample
from avemo.tuning.study import train_candidate

CONFIGS = int(os.environ.get("BENCH_SEARCH_CONFIGS", "12"))
SHORT = int(os.environ.get("BENCH_SEARCH_SHORT", "0"))  # 0: tune.audio.epochs
FULL = int(os.environ.get("BENCH_SEARCH_FULL", "0"))  # 0: train.loop.epochs
AUDIO = Path("data/processed/audio/full-raw")
SPLITS = Path("data/interim/splits.parquet")


def main() -> None:
    params = load_params()
    short, full = SHORT or params.tune.audio.epochs, FULL or params.train.loop.epochs
    config = search_config("audio", params, {"audio": AUDIO, "video": None, "splits": SPLITS}, "bench")
    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    pairs, skipped, started = [], 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(CONFIGS):
            overrides = sample(sampler.ask(), config.space, "audio")
            try:
                ua = [train_candidate(config, params.override({**overrides, "train.audio.epochs": epochs}),
                                      params.train.loop.seed, Path(tmp) / f"{k}-{epochs}")[0]
                      for epochs in (short, full)]
            except (ValueError, TrainingDiverged) as exc:
                skipped += 1
                print(f"  configuration {k}: left out ({exc})")
                continue
            pairs.append(ua)
            print(f"  configuration {k}: validation UA {ua[0]:.3f} after {short} epochs, {ua[1]:.3f} after {full}",
                  flush=True)
    rho = spearmanr(*zip(*pairs)).statistic if len(pairs) > 2 else float("nan")
    print("\n| configurations | short | full | Spearman rho (short vs full validation UA) | left out | wall time |")
    print("|---|---|---|---|---|---|")
    print(f"| {len(pairs)} | {short} epochs | {full} epochs | {rho:.2f} | {skipped} | "
          f"{time.perf_counter() - started:.0f} s |")
