"""`train_fusion_pretrained`: does sync pre-training earn its cost? The label-efficiency curve.

For each share of the training labels and each seed, one stratified subset of the training clips
(the same for both arms) trains the fusion model from scratch and from the sync pre-trained
encoders, with the same loop; both answer the whole held-out test session. Per share, each arm's
test UA with its interval, and the paired difference (pre-trained minus scratch, same items and
seeds) with its interval and verdict; how many seeds would settle an open one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avemo.params import Params
from avemo.stages import options

ARMS = ("scratch", "pretrained")


def arguments(p: argparse.ArgumentParser) -> None:
    options.data(p, video="video folder", video_required=True)
    p.add_argument("--pretrained", type=Path, required=True, help="the pretrain stage's encoders")
    options.best(p, what="the architecture as it chose")
    options.stage(p)
    p.add_argument("--summary", type=Path, required=True, help="per share: each arm's UA and the gain, with intervals")
    p.add_argument("--details", type=Path, required=True, help="folder: details.json, plot tables")


def run(args: argparse.Namespace, params: Params) -> None:
    from avemo.handover import LabelEfficiency
    from avemo.labels import class_set
    from avemo.reports import write_json
    from avemo.stages.frame import Frame, searched
    from avemo.training.recipe import StageData, build_datasets

    e = params.pretrain.efficiency
    params = searched(params, args.best, args.set).override(
        {f"train.fusion.{k}": v for k, v in e.loop.model_dump(exclude_none=True).items()})
    frame = Frame(args.stage, params, [args.audio, args.video, args.splits, args.pretrained])
    device = frame.device()
    data = build_datasets("fusion", params, StageData(args.audio, args.video, args.splits), class_set(params.labels))
    resume = frame.resume(params.yaml_values(["labels", "train", "models", "pretrain"]))
    arms = ArmJob(params, data, args.pretrained, e.finetune, frame, device, resume)
    data_tags, datasets = frame.data_record(args.audio, args.splits, params.train.fold, video=args.video)
    with frame.mlflow_run("fusion", resume, device=device, tags=data_tags, datasets=datasets,
                          params={"efficiency": e.model_dump(), "kind": params.models.audio.kind,
                                  **params.yaml_values(["train", "models"])}) as parent:
        runs = [arms.train(fraction, seed, arm) for fraction in e.fractions for seed in params.train.seeds
                for arm in ARMS]
        summary = summarise(runs, list(data.test.items["clip_id"]), data.test.classes, list(params.train.seeds))
        import mlflow

        mlflow.log_metrics({f"test_ua_{arm}_{fraction}": cells[arm]["ua"]["estimate"]
                            for fraction, cells in summary["fractions"].items() for arm in ARMS})
        summary["mlflow_run_id"] = parent.info.run_id
    write_json(args.summary, LabelEfficiency.checked(summary, args.summary))
    write_tables(args.details, runs, summary)
    resume.finish()
    print_summary(summary)


class ArmJob:
    """One arm of one cell: fusion on a subset of the labels, from scratch or from the pre-trained encoders."""

    def __init__(self, params, data, pretrained, finetune, frame, device, resume):
        self.params, self.data, self.pretrained, self.finetune = params, data, pretrained, finetune
        self.frame, self.device, self.resume = frame, device, resume

    def train(self, fraction: float, seed: int, arm: str) -> dict:
        import mlflow

        from avemo.data.subsets import label_subset
        from avemo.metrics import classification_metrics
        from avemo.tracking import log_epoch
        from avemo.training.recipe import fusion_init, model_spec, train_and_answer

        name = f"f{fraction}-seed{seed}-{arm}"
        saved = self.resume.read(name)
        if saved:
            return saved
        subset = self.data.train.restricted(label_subset(self.data.train.items, fraction, seed))
        params = self.params.override({"train.fusion_init": arm})
        with self.frame.child_run(self.resume, name, f"{self.frame.stage} {name}", {
                "arm": arm, "label_fraction": fraction, "seed": seed,
                "finetune": self.finetune if arm == "pretrained" else "full"}) as run:
            trained = train_and_answer(model_spec("fusion", params, self.data), params, self.data, seed,
                                       self.resume.sub(name), self.data.test, self.device,
                                       fusion_init(arm, {"init_pretrained": self.pretrained}, seed),
                                       frozen_branches=arm == "pretrained" and self.finetune == "linear",
                                       on_epoch=log_epoch, fingerprint=self.resume.key, train_set=subset)
            test = classification_metrics(trained.y_true, trained.y_pred, self.data.test.classes)
            mlflow.log_metrics({"test_ua": test["ua"], "test_wa": test["wa"], "train_items": len(subset.items)})
            record = {"fraction": fraction, "arm": arm, "seed": seed, "labels": len(subset.items),
                      "test_ua": test["ua"], "test_wa": test["wa"], "mlflow_run_id": run.info.run_id,
                      "y_true": trained.y_true.tolist(), "y_pred": trained.y_pred.tolist(),
                      "epochs": trained.history.epochs}
        self.resume.write(name, record)
        return record


def summarise(runs: list[dict], items: list[str], classes: list[str], seeds: list[int]) -> dict:
    """Per share: each arm's test UA with its interval, and the paired gain of pre-training with its verdict."""
    from avemo.stats import Predictions, compare, figure

    out: dict = {"fractions": {}}
    for fraction in dict.fromkeys(r["fraction"] for r in runs):
        answers = {}
        for arm in ARMS:
            cell = sorted((r for r in runs if r["fraction"] == fraction and r["arm"] == arm), key=lambda r: r["seed"])
            answers[arm] = Predictions(items, cell[0]["y_true"], [r["y_pred"] for r in cell], [str(s) for s in seeds],
                                       classes)
        gain = compare(answers["pretrained"], answers["scratch"])
        out["fractions"][str(fraction)] = {
            **{arm: {"ua": figure(answers[arm]).to_dict(), "labels": next(
                r["labels"] for r in runs if r["fraction"] == fraction and r["arm"] == arm),
                "per_seed": {str(r["seed"]): r["test_ua"] for r in runs if r["fraction"] == fraction and r["arm"] == arm}}
               for arm in ARMS},
            "gain": gain.to_dict(),
            "verdict": {"better": "pre-training helps", "worse": "pre-training hurts"}.get(
                gain.verdict, "no difference shown")}
    return out


def write_tables(folder: Path, runs: list[dict], summary: dict) -> None:
    """Every run's figures, and the curve DVC plots (UA by share of labels, each arm's mean)."""
    import pandas as pd

    from avemo.reports import write_json

    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{k: v for k, v in r.items() if k not in ("epochs", "y_true", "y_pred")} for r in runs]).to_csv(
        folder / "runs.csv", index=False)
    pd.DataFrame([{"fraction": float(f), **{f"{a}_ua": c[a]["ua"]["estimate"] for a in ARMS},
                   **{f"{a}_ua_low": c[a]["ua"]["low"] for a in ARMS}, **{f"{a}_ua_high": c[a]["ua"]["high"] for a in ARMS}}
                  for f, c in summary["fractions"].items()]).to_csv(folder / "ua_by_fraction.csv", index=False)
    write_json(folder / "predictions.json", {r["mlflow_run_id"]: {k: r[k] for k in ("fraction", "arm", "seed", "y_pred")}
                                             for r in runs})


def print_summary(summary: dict) -> None:
    from rich.table import Table

    from avemo.stages.show import console

    table = Table(title="label efficiency: test UA, mean over seeds [95 % interval over items and seeds]",
                  title_justify="left")
    for column in ("labels", "scratch", "pre-trained", "gain", "verdict"):
        table.add_column(column)
    for fraction, cells in summary["fractions"].items():
        ua = [cells[a]["ua"] for a in ARMS]
        gain = cells["gain"]["difference"]
        table.add_row(f"{float(fraction):.0%} ({cells['scratch']['labels']})",
                      *(f"{u['estimate']:.3f} [{u['low']:.3f}, {u['high']:.3f}]" for u in ua),
                      f"{gain['estimate']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]", cells["verdict"])
    console.print(table)

