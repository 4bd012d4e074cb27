"""The label-efficiency curve: fusion from scratch versus from the sync pre-trained encoders,
trained on a share of the training labels, several seeds each.

For each label fraction and seed, one stratified subset of the training utterances' labels
(the same for both arms) trains both arms with the same loop settings; the test split is the
whole held-out session. Everything else is the fusion recipe of params.yaml.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from avemo.data.splits import split_tags
from avemo.determinism import environment, pin_cpu
from avemo.labels import class_set
from avemo.reports import write_json
from avemo.tracking import flatten, git_commit, input_hashes, log_epoch, use_experiment
from avemo.training.loop import evaluate, pick_device
from avemo.training.recipe import (
    StageData,
    build_datasets,
    fit,
    fusion_init,
    prepare_model,
)
from avemo.training.resume import ResumeFolder, code_hash, fingerprint
from avemo.tuning.space import apply

ARMS = ("scratch", "pretrained")


def label_subset(items: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """A mask keeping `fraction` of each class's training items (at least one), drawn with `seed`."""
    rng = np.random.default_rng([seed, round(fraction * 1000)])
    keep = np.zeros(len(items), bool)
    for _, members in items.groupby("class").indices.items():
        chosen = rng.choice(members, max(1, round(fraction * len(members))), replace=False)
        keep[chosen] = True
    return keep


def run_label_efficiency(params: dict, kind: str, data_paths: StageData, pretrained: Path, stage: str,
                         metrics: Path, plots: Path) -> dict:
    t, e = params["train"], params["pretrain"]["efficiency"]
    pin_cpu(t["threads"], t["cpu_isa"])
    params = apply(params, {f"train.fusion.{k}": v for k, v in (e.get("loop") or {}).items()})
    classes = class_set(params["labels"])
    data = build_datasets("fusion", params, data_paths, classes)
    device = pick_device(t["loop"]["device"])
    test_loader = DataLoader(data.test, batch_size=64)
    hashes = input_hashes([data_paths.audio, data_paths.video, data_paths.splits, pretrained])
    key = fingerprint(stage, kind, {k: params[k] for k in ("labels", "train", "models", "pretrain")}, hashes, code_hash())
    resume = ResumeFolder(stage, key)
    use_experiment("fusion")
    with resume.mlflow_run("parent", stage) as parent:
        mlflow.set_tags({"git_commit": git_commit(), "dvc_stage": stage, "dataset_variant": data_paths.audio.name,
                         "class_set": params["labels"]["set"], **split_tags(pd.read_parquet(data_paths.splits), t["fold"]),
                         **environment(device), **hashes})
        mlflow.log_params(flatten({"efficiency": e, "kind": kind, "train": t, "models": params["models"]}))
        rows = []
        for fraction in e["fractions"]:
            for seed in t["seeds"]:
                keep = label_subset(data.train.items, fraction, seed)
                for arm in ARMS:
                    name = f"f{fraction}-seed{seed}-{arm}"
                    record = resume.read(name) or _train_arm(params, kind, data, data.train.restricted(keep), arm,
                                                             fraction, seed, pretrained, e["finetune"], stage,
                                                             test_loader, device, resume, name, key)
                    resume.write(name, record)
                    rows.append(record)
        table = pd.DataFrame(rows)
        summary = summarise(table)
        mlflow.log_metrics({f"test_ua_mean_{arm}_{fraction}": cells[arm]["test_ua"]["mean"]
                            for fraction, cells in summary["fractions"].items() for arm in ARMS})
        summary["mlflow_run_id"] = parent.info.run_id
    write_json(metrics, summary)
    plots.mkdir(parents=True, exist_ok=True)
    table.drop(columns=["epochs"]).to_csv(plots / "runs.csv", index=False)
    means = table.groupby(["fraction", "arm"])["test_ua"].mean().unstack("arm").reset_index()
    means.rename(columns={a: f"{a}_ua" for a in ARMS})[["fraction", *(f"{a}_ua" for a in ARMS)]].to_csv(
        plots / "ua_by_fraction.csv", index=False)
    resume.finish()
    return summary


def _train_arm(params, kind, data, train_subset, arm, fraction, seed, pretrained, finetune, stage, test_loader, device,
               resume, name, key) -> dict:
    p = apply(params, {"train.fusion_init": arm})
    model = prepare_model("fusion", kind, p, data, seed, fusion_init(p, {"init_pretrained": pretrained}, seed))
    if arm == "pretrained" and finetune == "linear":
        model.freeze_branches()
    with mlflow.start_run(run_name=f"{stage} {name}", nested=True) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({"dvc_stage": stage, "arm": arm, "label_fraction": fraction, "seed": seed,
                         "finetune": finetune if arm == "pretrained" else "full"})
        history = fit(model, "fusion", p, data, seed, Path(tmp), train_set=train_subset,
                      resume_dir=resume.sub(name), fingerprint=key,
                      on_epoch=log_epoch)
        test, _, _ = evaluate(model, test_loader, device, data.test.classes)
        mlflow.log_metrics({"test_ua": test["ua"], "test_wa": test["wa"], "train_items": len(train_subset.items)})
        return {"fraction": fraction, "arm": arm, "seed": seed, "labels": len(train_subset.items),
                "test_ua": test["ua"], "test_wa": test["wa"], "mlflow_run_id": run.info.run_id,
                "epochs": history.epochs}


def summarise(table: pd.DataFrame) -> dict:
    """Per fraction and arm: test UA/WA mean, sd and per seed; and the pre-trained arm's gain over scratch."""
    out: dict = {"fractions": {}}
    for fraction, part in table.groupby("fraction"):
        cells = {}
        for arm, runs in part.groupby("arm"):
            cells[arm] = {m: {"mean": float(runs[m].mean()), "sd": float(runs[m].std(ddof=1)) if len(runs) > 1 else None,
                              "per_seed": {str(s): float(v) for s, v in zip(runs["seed"], runs[m])}}
                          for m in ("test_ua", "test_wa")}
            cells[arm]["labels"] = int(runs["labels"].iloc[0])
        gain = cells["pretrained"]["test_ua"]["mean"] - cells["scratch"]["test_ua"]["mean"]
        spread = max(cells[a]["test_ua"]["sd"] or 0.0 for a in ARMS)
        cells["gain_ua"] = gain
        cells["verdict"] = ("pre-training helps" if gain > spread else "pre-training hurts" if -gain > spread
                            else "no gain beyond the seed spread")
        out["fractions"][str(fraction)] = cells
    return out
