"""A training stage: one model trained with one or several seeds, tracked in MLflow, with DVC outputs.

With several seeds (`train.seeds`, the headline stages) the stage is one MLflow parent run
with a child run per seed; the parent holds the mean and standard deviation over seeds and
the model of the seed with the best validation UA (chosen without looking at the test set).
A killed stage resumes: finished seeds are kept, the interrupted one continues from its last
epoch (training/resume.py).
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import infer_signature
from torch.utils.data import DataLoader

from avemo.data.splits import split_tags
from avemo.determinism import environment, pin_cpu
from avemo.labels import class_set
from avemo.metrics import SUMMARY_METRICS, classification_metrics, summarise_runs
from avemo.models.packing import PackedInputs, pack
from avemo.reports import write_json
from avemo.tracking import (
    flatten,
    git_commit,
    input_hashes,
    log_epoch,
    log_evaluation,
    log_inputs,
    pip_requirements,
    use_experiment,
)
from avemo.training.loop import (
    epochs_at_chance,
    evaluate,
    pick_device,
    process_group,
    rank_and_world,
)
from avemo.training.recipe import (
    StageData,
    build_datasets,
    fit,
    fusion_init,
    prepare_model,
)
from avemo.training.resume import ResumeFolder, code_hash, fingerprint


@dataclass(frozen=True)
class StagePaths:
    audio: Path  # an audio variant folder
    video: Path | None  # a video folder (video and fusion families)
    splits: Path
    model_dir: Path  # best.pt (the stage's model); seed-<k>/best.pt with several seeds
    metrics: Path  # reports/metrics/<stage>.json
    plots: Path  # folder for the DVC plot files
    init_audio: Path | None = None  # fusion: model folder of a trained audio model
    init_video: Path | None = None  # fusion: model folder of a trained video model
    init_pretrained: Path | None = None  # fusion: folder of the sync pre-trained encoders


def run_training(family: str, kind: str, variant: str, stage: str, params: dict, paths: StagePaths,
                 seeds: list[int] | None = None) -> dict:
    """Train and evaluate one model per seed (default: `train.loop.seed` alone); return the
    stage's metrics (per metric: mean, sd, per seed; and the kept model's own).

    Under torchrun every rank trains its shard; rank 0 alone records the runs and writes outputs.
    """
    with process_group():
        return _run_training(family, kind, variant, stage, params, paths,
                             seeds if seeds is not None else [params["train"]["loop"]["seed"]])


def _run_training(family: str, kind: str, variant: str, stage: str, params: dict, paths: StagePaths,
                  seeds: list[int]) -> dict:
    t = params["train"]
    pin_cpu(t["threads"], t["cpu_isa"])
    classes = class_set(params["labels"])
    data = build_datasets(family, params, StageData(paths.audio, paths.video, paths.splits), classes)
    device = pick_device(t["loop"]["device"])
    rank = rank_and_world()[0]
    inits = [p for p in (paths.init_audio, paths.init_video, paths.init_pretrained) if p is not None]
    hashes = input_hashes([p for p in (paths.audio, paths.video, paths.splits, *inits) if p is not None])
    key = fingerprint(stage, family, kind, variant, seeds, {k: params[k] for k in ("labels", "train", "models")},
                      hashes, code_hash())
    if rank != 0:
        torch.distributed.barrier()  # rank 0 sets the resume folder up first
    resume = ResumeFolder(stage, key)
    if rank == 0 and rank_and_world()[1] > 1:
        torch.distributed.barrier()
    if resume.resumed and rank == 0:
        print(f"{stage}: resuming an interrupted run from {resume.path}", flush=True)
    test_loader = DataLoader(data.test, batch_size=64)
    several = len(seeds) > 1

    tracked = rank == 0
    if tracked:
        use_experiment(family)
    run_params = {"family": family, "model": kind, "variant": variant, "classes": ",".join(classes),
                  "seeds": ",".join(map(str, seeds)), "train": t, "models": params["models"],
                  "labels.set": params["labels"]["set"], "world_size": rank_and_world()[1],
                  "init_audio": str(paths.init_audio or ""), "init_video": str(paths.init_video or "")}
    tags = {"git_commit": git_commit(), "dvc_stage": stage, "dataset_variant": variant,
            **split_tags(pd.read_parquet(paths.splits), t["fold"]),
            "class_set": params["labels"]["set"], "items_train": len(data.train), "items_val": len(data.val),
            "items_test": len(data.test), **environment(device), **hashes}
    with resume.mlflow_run("parent", stage) if tracked else nullcontext() as parent_run:
        if tracked:
            mlflow.set_tags({k: str(v) for k, v in tags.items()})
            mlflow.log_params(flatten(run_params))
            log_inputs({variant: paths.audio, "splits": paths.splits}
                       | ({f"video-{paths.video.name}": paths.video} if paths.video else {}), hashes)
        results = {}
        for seed in seeds:
            results[seed] = resume.read(f"seed-{seed}") or _train_seed(
                family, kind, stage, params, data, paths, seed, several, device, test_loader, resume, key, tracked)
        chosen = max(seeds, key=lambda s: (results[s]["best_val_ua"], -seeds.index(s)))
        seed_dir = paths.model_dir / f"seed-{chosen}" if several else paths.model_dir
        model = prepare_model(family, kind, params, data, chosen)
        model.load_state_dict(torch.load(seed_dir / "best.pt", weights_only=True))
        summary = summarise_runs(results, chosen)
        summary["epochs_at_chance"] = max(r["epochs_at_chance"] for r in results.values())
        summary["model"].update(best_epoch=results[chosen]["best_epoch"], best_val_ua=results[chosen]["best_val_ua"])
        if tracked:
            if several:
                shutil.copy(seed_dir / "best.pt", paths.model_dir / "best.pt")
                mlflow.log_metrics({f"test_{m}_{s}": summary[f"test_{m}"][s] for m in SUMMARY_METRICS
                                    for s in ("mean", "sd")} | {"n_seeds": len(seeds)})
                mlflow.set_tags({"selected_seed": chosen, "selected_run_id": results[chosen]["mlflow_run_id"]})
                kept = results[chosen]  # the stage's model: its confusion matrices on the parent too
                with tempfile.TemporaryDirectory() as tmp:
                    log_evaluation(classification_metrics(np.array(kept["y_true"]), np.array(kept["y_pred"]), classes),
                                   classes, kept["epochs"], Path(tmp))
            if t["log_model"]:
                log_model(model.cpu(), data.test)
            summary["mlflow_run_id"] = parent_run.info.run_id
            write_dvc_outputs(summary, results[chosen], classes, paths)
    if rank == 0:
        resume.finish()
    return summary


def _train_seed(family: str, kind: str, stage: str, params: dict, data, paths: StagePaths, seed: int,
                several: bool, device: torch.device, test_loader: DataLoader, resume: ResumeFolder, key: str,
                tracked: bool) -> dict:
    """One seed: a child run (or the stage's own run with one seed); the result is saved for resuming."""
    classes = data.train.classes
    init = fusion_init(params, {"init_audio": paths.init_audio, "init_video": paths.init_video,
                                "init_pretrained": paths.init_pretrained}, seed) if family == "fusion" else (None, None)
    model = prepare_model(family, kind, params, data, seed, init)
    out_dir = paths.model_dir / f"seed-{seed}" if several else paths.model_dir
    child = (resume.mlflow_run(f"seed-{seed}", f"{stage} seed {seed}", nested=True)
             if tracked and several else nullcontext(mlflow.active_run()))
    with child as run:
        if tracked and several:
            mlflow.set_tags({"dvc_stage": stage, "seed": seed, "git_commit": git_commit()})
            mlflow.log_params({"seed": seed, "family": family, "model": kind})
        log = log_epoch if tracked else None
        history = fit(model, family, params, data, seed, out_dir, on_epoch=log, resume_dir=resume.sub(f"seed-{seed}"),
                      fingerprint=key)
        if history.resumed_from > 0:
            print(f"{stage}: seed {seed} resumed from epoch {history.resumed_from} "
                  f"(epochs 0-{history.resumed_from - 1} were saved before the interruption)", flush=True)
        test, y_true, y_pred = evaluate(model, test_loader, device, classes)
        stalled = epochs_at_chance(history, len(classes))
        if tracked:
            if history.resumed_from > 0:
                mlflow.set_tag("resumed_from_epoch", history.resumed_from)
            mlflow.log_metrics({"best_epoch": history.best_epoch, "best_val_ua": history.best_score,
                                "epochs_at_chance": stalled})
            with tempfile.TemporaryDirectory() as tmp:
                log_evaluation(test, classes, history.epochs, Path(tmp))
            run_id = run.info.run_id
    record = {"seed": seed, "mlflow_run_id": run_id if tracked else "", "best_epoch": history.best_epoch,
              "best_val_ua": history.best_score, "epochs_at_chance": stalled, "resumed_from": history.resumed_from,
              **{f"test_{m}": test[m] for m in SUMMARY_METRICS}, "test_recall": test["recall"],
              "y_true": y_true.tolist(), "y_pred": y_pred.tolist(), "epochs": history.epochs}
    if tracked:
        resume.write(f"seed-{seed}", record)
    return record


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
    mlflow.pytorch.log_model(model, name="model", input_example=example, signature=infer_signature(example, output),
                             pip_requirements=pip_requirements())


def write_dvc_outputs(summary: dict, chosen: dict, classes: list[str], paths: StagePaths) -> None:
    """Metrics JSON (mean/sd over seeds, the kept model's figures) and the kept model's plots."""
    write_json(paths.metrics, summary)
    paths.plots.mkdir(parents=True, exist_ok=True)
    names = np.array(classes)
    pd.DataFrame({"actual": names[chosen["y_true"]], "predicted": names[chosen["y_pred"]]}).to_csv(
        paths.plots / "confusion.csv", index=False)
    pd.DataFrame(chosen["epochs"]).to_csv(paths.plots / "learning_curve.csv", index=False)
