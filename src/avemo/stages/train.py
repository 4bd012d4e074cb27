"""`train`: one model trained once per seed and evaluated on the held-out test split, tracked in MLflow.

The method: build the fold's train, val and test roles (balancing and augmentation on the train
role only); for each seed, start the model (fusion: from the same seed's trained audio and video
models, as the study did, or from the sync pre-trained encoders), train it with the one loop and
answer every test item (`--join`: the network's probabilities multiplied with those of eGeMAPS + logistic
regression fit on the same training items, avemo/joined.py); keep the seed with the best validation UA (the
test split never chooses);
report each figure as the mean over seeds with a 95 % interval over test items and seeds. One
MLflow parent run, a child run per seed. A killed stage resumes: finished seeds are kept, the
interrupted one continues from its last epoch. Under `torchrun` every rank trains its shard and
rank 0 alone records.
"""

from __future__ import annotations

import argparse
import shutil
from contextlib import nullcontext
from pathlib import Path

from avemo.params import FAMILIES, Params
from avemo.stages import options


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", choices=FAMILIES, required=True, help="which network: audio, video or fusion")
    options.data(p)
    options.stage(p)
    p.add_argument("--model-dir", type=Path, required=True, help="seed-<k>/best.pt per seed, best.pt the kept one")
    options.figures(p)
    options.branch_inits(p)
    options.best(p)
    p.add_argument("--join", help="audio: join the network with this eGeMAPS reference (a product of experts; "
                                   "needs --egemaps)")
    p.add_argument("--egemaps", type=Path, help="the egemaps stage's folder (--join)")


def run(args: argparse.Namespace, params: Params) -> None:
    from avemo.stages.frame import searched
    from avemo.stages.show import print_figures
    from avemo.training.loop import process_group

    params = searched(params, args.best, args.set)
    with process_group():
        detail = train_stage(args, params)
    if detail is not None:
        print_figures(f"train {args.stage}", detail)


def train_stage(args: argparse.Namespace, params: Params) -> dict | None:
    import torch

    from avemo.labels import class_set
    from avemo.stages.frame import Frame, write_plot_tables
    from avemo.stats import Predictions
    from avemo.training.loop import rank_and_world
    from avemo.training.recipe import StageData, build_datasets, model_spec

    inits = {"init_audio": args.init_audio, "init_video": args.init_video, "init_pretrained": args.init_pretrained}
    if args.join and (args.family != "audio" or args.egemaps is None):
        raise ValueError(f"--join {args.join}: joins an audio network (--family audio) and needs --egemaps")
    table = args.egemaps / "features.parquet" if args.join else None
    frame = Frame(args.stage, params, [args.audio, args.video, args.splits, table, *inits.values()])
    device = frame.device()
    data = build_datasets(args.family, params, StageData(args.audio, args.video, args.splits), class_set(params.labels))
    joined = None
    if args.join:
        from avemo.joined import join_reference

        joined, data = join_reference(args.join, args.egemaps, data, params.baseline)
    spec = model_spec(args.family, params, data)
    seeds = list(params.train.seeds)
    rank, world = rank_and_world()
    if rank == 0:
        write_skipped_items(frame, args.details / "skipped.csv", args.stage, data)
    else:
        torch.distributed.barrier()  # rank 0 sets the resume folder up first
    resume = frame.resume(args.family, spec.to_dict(), params.yaml_values(["labels", "train", "models"]), args.join)
    if rank == 0 and world > 1:
        torch.distributed.barrier()
    tracked = rank == 0
    job = SeedJob(args, params, data, spec, frame, resume, device, tracked, inits, joined)
    data_tags, datasets = frame.data_record(args.audio, args.splits, params.train.fold, video=args.video, egemaps=table)
    run_context = frame.mlflow_run(
        args.family, resume, device=device,
        tags={**data_tags, "items_train": len(data.train), "items_val": len(data.val), "items_test": len(data.test),
              "fit_roles": "train+val" if params.train.refit else "train"},
        params={"family": args.family, "model": spec.audio.kind if spec.audio else "c3d", "variant": args.audio.name,
                "classes": ",".join(spec.classes), "seeds": ",".join(map(str, seeds)), "world_size": world,
                **params.yaml_values(["labels.set", "train", "models"]),
                "init_audio": str(args.init_audio or ""), "init_video": str(args.init_video or ""),
                "join": args.join or "",
                **({"baseline.egemaps": params.baseline.egemaps.model_dump()} if joined else {})},
        datasets=datasets) if tracked else nullcontext()
    with run_context as parent:
        results = {seed: resume.read(f"seed-{seed}") or job.train_seed(seed) for seed in seeds}
        chosen = max(seeds, key=lambda s: (results[s]["best_val_ua"], -seeds.index(s)))
        if not tracked:
            return None
        keep_models(resume, args.model_dir, seeds, chosen)
        if joined:  # the joined model is each seed's network with this reference (joblib.load gives it back)
            import joblib

            joblib.dump(joined.model, args.model_dir / "reference.joblib")
        predictions = Predictions(list(data.test.items["clip_id"]), results[chosen]["y_true"],
                                  [results[s]["y_pred"] for s in seeds], [str(s) for s in seeds], list(spec.classes))
        kept = results[chosen]
        record = {"model": {"seed": chosen, "mlflow_run_id": kept["mlflow_run_id"], "best_epoch": kept["best_epoch"],
                            "best_val_ua": kept["best_val_ua"], "recall": kept["recall"]},
                  "epochs_at_chance": max(r["epochs_at_chance"] for r in results.values())}
        log_kept(parent.info.run_id, chosen, kept, spec.classes)
        detail = frame.write_figures(args.metrics, args.details, predictions, record, parent.info.run_id)
        write_plot_tables(args.details, predictions, seeds.index(chosen), kept["epochs"])
    resume.finish()
    return detail


def write_skipped_items(frame, path: Path, stage: str, data) -> None:
    """The items of each role that the loaders could not use (a clip without video, dropped), with the reason:
    nothing leaves the evaluation unrecorded; the stage fails unless items in = items used + items skipped."""
    import pandas as pd

    roles = [data.train, data.val, data.test]
    frame.write_skipped(path, pd.concat([d.skipped for d in roles], ignore_index=True), f"{stage}: the fold's items",
                        sum(d.items_in for d in roles), sum(len(d.items) for d in roles))


class SeedJob:
    """Everything one seed's training needs; `train_seed` is the seed's whole story."""

    def __init__(self, args, params, data, spec, frame, resume, device, tracked, inits, joined=None):
        self.args, self.params, self.data, self.spec = args, params, data, spec
        self.frame, self.resume = frame, resume
        self.device, self.tracked, self.inits, self.joined = device, tracked, inits, joined

    def train_seed(self, seed: int) -> dict:
        """Start the model from the seed, train it, answer the test items; the record is kept for resuming."""
        import mlflow

        from avemo.metrics import classification_metrics
        from avemo.models.checkpoint import save_checkpoint
        from avemo.tracking import log_epoch, log_evaluation
        from avemo.training.loop import epochs_at_chance
        from avemo.training.recipe import fusion_init, train_and_answer

        family, stage = self.args.family, self.args.stage
        init = fusion_init(self.params.train.fusion_init, self.inits, seed) if family == "fusion" else (None, None)
        child = self.frame.child_run(self.resume, f"seed-{seed}", f"{stage} seed {seed}", {"seed": seed}) \
            if self.tracked else nullcontext()
        with child as run:
            if self.tracked:
                mlflow.log_params({"seed": seed, "family": family})
            trained = train_and_answer(self.spec, self.params, self.data, seed, self.resume.sub(f"seed-{seed}"),
                                       self.data.test, self.device, init,
                                       on_epoch=log_epoch if self.tracked else None, fingerprint=self.resume.key)
            history, y_true, y_pred = trained.history, trained.y_true, trained.y_pred
            if self.joined:
                network = classification_metrics(y_true, y_pred, list(self.spec.classes))
                y_pred = self.joined.answer(trained.probabilities)
            if history.resumed_from > 0:
                print(f"{stage}: seed {seed} resumed from epoch {history.resumed_from} "
                      f"(epochs 0-{history.resumed_from - 1} were saved before the interruption)", flush=True)
            test = classification_metrics(y_true, y_pred, list(self.spec.classes))
            stalled = epochs_at_chance(history, len(self.spec.classes))
            save_checkpoint(self.resume.sub(f"seed-{seed}") / "best.pt", trained.model.cpu(), self.spec)
            if self.tracked:
                if history.resumed_from > 0:
                    mlflow.set_tag("resumed_from_epoch", history.resumed_from)
                mlflow.log_metrics({"best_epoch": history.best_epoch, "best_val_ua": history.best_score,
                                    "epochs_at_chance": stalled,
                                    **({"network_test_ua": network["ua"]} if self.joined else {})})
                log_evaluation(test, list(self.spec.classes), history.epochs)
        record = {"seed": seed, "mlflow_run_id": run.info.run_id if self.tracked else "",
                  "best_epoch": history.best_epoch, "best_val_ua": history.best_score, "epochs_at_chance": stalled,
                  "resumed_from": history.resumed_from, "recall": test["recall"], "y_true": y_true.tolist(),
                  "y_pred": y_pred.tolist(), "epochs": history.epochs}
        if self.tracked:
            self.resume.write(f"seed-{seed}", record)
        return record


def keep_models(resume, model_dir: Path, seeds: list[int], chosen: int) -> None:
    """Every seed's model into the stage's output folder (DVC deleted it before the stage ran), and the kept one."""
    for seed in seeds:
        (model_dir / f"seed-{seed}").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(resume.sub(f"seed-{seed}") / "best.pt", model_dir / f"seed-{seed}" / "best.pt")
    shutil.copyfile(model_dir / f"seed-{chosen}" / "best.pt", model_dir / "best.pt")


def log_kept(run_id: str, chosen: int, kept: dict, classes) -> None:
    """The parent run names its kept model and carries its confusion matrices."""
    import mlflow
    import numpy as np

    from avemo.metrics import classification_metrics
    from avemo.tracking import log_evaluation

    mlflow.set_tags({"selected_seed": chosen, "selected_run_id": kept["mlflow_run_id"]})
    # The runs table's test_ua of a parent is the headline mean over seeds (Frame.write_figures); the kept seed's
    # figures are kept_seed_*, its validation UA best_val_ua (what chose it).
    mlflow.log_metric("best_val_ua", kept["best_val_ua"])
    log_evaluation(classification_metrics(np.array(kept["y_true"]), np.array(kept["y_pred"]), list(classes)),
                   list(classes), kept["epochs"], prefix="kept_seed_test_")
