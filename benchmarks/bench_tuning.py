"""Searches on 2 cores: trials per hour with and without pruning, with 1 and 2 workers, and what
the default budget finds against the hand-set params and the logistic-regression reference.

Data: the pipeline's own stage outputs (`dvc repro audio split` first). Each rate search runs the
audio space of params.yaml for the same wall-clock budget (`BENCH_TUNE_SECONDS`, default 300 s;
`train.threads` per worker; pruning starts after 3 trials) in a temporary journal storage and
MLflow store. Then the default budget (`tune.audio`: trials x epochs, `tune.workers`) with sampler
seeds 0, 1, 2, against the hand-set params trained with the same epochs and seeds 0, 1, 2, all
measured on validation UA (the objective; the test split stays untouched), and the reference on
the same split.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from optuna.trial import TrialState

from avemo.baselines import run_reference
from avemo.determinism import pin_torch
from avemo.labels import class_set
from avemo.params import Params, load_params
from avemo.references import REFERENCES
from avemo.stages.frame import Frame
from avemo.stages.tune import run_search, search_config
from avemo.training.recipe import (
    StageData,
    build_datasets,
    fit,
    model_spec,
    prepare_model,
)

SECONDS = float(os.environ.get("BENCH_TUNE_SECONDS", "300"))  # 0: skip the rates
DEFAULT_BUDGET = os.environ.get("BENCH_TUNE_DEFAULT", "1") == "1"  # 0: skip the default-budget comparison
AUDIO = Path("data/processed/audio/full-raw")
SPLITS = Path("data/interim/splits.parquet")


def search(params: Params, workers: int, pruner: str, seed: int, trials: int, timeout: float | None, tmp: Path) -> dict:
    params = params.override({"tune.pruner": pruner, "tune.seed": seed, "tune.audio.trials": trials,
                              "tune.audio.timeout_s": timeout})
    data = {"audio": AUDIO, "video": None, "splits": SPLITS}
    started = time.perf_counter()
    study = run_search(search_config("audio", params, data, "bench"), Frame("bench", params, data.values()),
                       f"journal:{tmp / f'{pruner}-{workers}-{seed}-{trials}.log'}", workers)
    elapsed = time.perf_counter() - started
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    return {"trials": len(done), "pruned": sum(t.state == TrialState.PRUNED for t in done), "seconds": elapsed,
            "best": study.best_value if any(t.state == TrialState.COMPLETE for t in done) else float("nan")}


def hand_set(params: Params, seed: int, epochs: int) -> float:
    """Validation UA of params.yaml's own audio model, trained with the search's epochs per trial."""
    params = params.override({"train.audio.epochs": epochs})
    data = build_datasets("audio", params, StageData(AUDIO, None, SPLITS), class_set(params.labels))
    with tempfile.TemporaryDirectory() as tmp:
        model = prepare_model(model_spec("audio", params, data), data, seed)
        history = fit(model, "audio", params, data, seed, Path(tmp))
    return history.epochs[-1]["val_ua"]


def main() -> None:
    params = load_params()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if SECONDS > 0:
            rates(params, tmp)
        if DEFAULT_BUDGET:
            default_budget(params, tmp)


def rates(params: Params, tmp: Path) -> None:
    print(f"trials per hour, {SECONDS:.0f} s of search each, audio space of params.yaml, "
          f"{params.train.threads} threads per worker")
    print(f"{'workers':>8s} {'pruner':>8s} {'trials':>7s} {'pruned':>7s} {'trials/h':>9s} {'best val UA':>12s}")
    per_hour = {}
    for workers in (1, 2):
        for pruner in ("none", "median"):
            r = search(params, workers, pruner, 0, 10_000, SECONDS, tmp)
            per_hour[(workers, pruner)] = 3600 * r["trials"] / r["seconds"]
            print(f"{workers:8d} {pruner:>8s} {r['trials']:7d} {r['pruned']:7d} {per_hour[(workers, pruner)]:9.0f} "
                  f"{r['best']:12.3f}")
    print(f"2 workers / 1 worker (median pruning): {per_hour[(2, 'median')] / per_hour[(1, 'median')]:.2f}x; "
          f"pruning / none (1 worker): {per_hour[(1, 'median')] / per_hour[(1, 'none')]:.2f}x")


def default_budget(params: Params, tmp: Path) -> None:
    fam, tune = params.tune.audio, params.tune
    print(f"\ndefault budget ({fam.trials} trials of {fam.epochs} epochs, {tune.workers} worker(s)), validation UA, "
          "sampler seeds 0, 1, 2")
    found = [search(params, tune.workers, tune.pruner, s, fam.trials, fam.timeout_s, tmp)["best"] for s in (0, 1, 2)]
    pin_torch(params.train.threads, params.compute.cpu_isa)
    default = [hand_set(params, s, fam.epochs) for s in (0, 1, 2)]
    reference = run_reference(REFERENCES["audio"], AUDIO, None, None,
                              pd.read_parquet("data/interim/utterances.parquet"), pd.read_parquet(SPLITS),
                              class_set(params.labels), params.train.fold, params.train.missing_video,
                              params.baseline)["val"]["ua"]
    for name, values in (("search, best trial", found), ("hand-set params", default)):
        print(f"{name:>20s}: {np.mean(values):.3f} +- {np.std(values, ddof=1):.3f}  "
              f"({', '.join(f'{v:.3f}' for v in values)})")
    print(f"{'logistic regression':>20s}: {reference:.3f}")


if __name__ == "__main__":
    main()
