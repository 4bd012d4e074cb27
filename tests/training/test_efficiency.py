"""The label-efficiency grid: same label subsets for both arms, one MLflow child per run, mean/sd per cell."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from avemo.data.subsets import label_subset
from tests.conftest import run_stage


def test_label_subsets_keep_each_class_and_are_seeded():
    items = pd.DataFrame({"class": ["neutral"] * 40 + ["happy"] * 20 + ["angry"] * 10 + ["sad"] * 3})
    keep = label_subset(items, 0.1, seed=0)
    counts = items[keep]["class"].value_counts().to_dict()
    assert counts == {"neutral": 4, "happy": 2, "angry": 1, "sad": 1}  # at least one of each class
    assert (label_subset(items, 0.1, 0) == keep).all() and not (label_subset(items, 0.1, 1) == keep).all()
    assert label_subset(items, 1.0, 0).all()


@pytest.mark.slow
def test_both_arms_train_on_the_same_labels_and_the_summary_equals_the_runs(small_project, tmp_path, project_dir):
    params, _ = project_dir
    params = params.override({"pretrain.loop.epochs": 1, "pretrain.efficiency.fractions": [0.25, 1.0],
                              "pretrain.efficiency.loop.epochs": 1, "train.seeds": [0, 1]})
    data = ["--audio", small_project / "full-raw", "--video", small_project / "video", "--splits",
            small_project / "splits.parquet"]
    run_stage(params, "pretrain", *data, "--out", tmp_path / "pre", "--metrics", tmp_path / "p.json",
              "--details", tmp_path / "pp")
    run_stage(params, "label-efficiency", *data, "--pretrained", tmp_path / "pre", "--stage",
              "train_fusion_pretrained", "--summary", tmp_path / "m.json", "--details", tmp_path / "plots")
    summary = json.loads((tmp_path / "m.json").read_text())

    runs = pd.read_csv(tmp_path / "plots" / "runs.csv")
    assert len(runs) == 2 * 2 * 2  # fractions x seeds x arms
    same = runs.pivot_table(index=["fraction", "seed"], columns="arm", values="labels")
    assert (same["scratch"] == same["pretrained"]).all()  # the same labelled subset for both arms
    for fraction, cells in summary["fractions"].items():
        for arm in ("scratch", "pretrained"):
            values = runs[(runs["fraction"] == float(fraction)) & (runs["arm"] == arm)]["test_ua"]
            assert cells[arm]["ua"]["estimate"] == pytest.approx(values.mean())
            assert cells[arm]["ua"]["low"] <= values.mean() <= cells[arm]["ua"]["high"]
        gain = cells["gain"]
        assert gain["difference"]["estimate"] == pytest.approx(cells["pretrained"]["ua"]["estimate"]
                                                               - cells["scratch"]["ua"]["estimate"])
        assert len(gain["per_seed"]) == 2  # paired by seed: both arms of a seed share its label subset
        expected = {"better": "pre-training helps", "worse": "pre-training hurts"}.get(gain["verdict"],
                                                                                      "no difference shown")
        assert cells["verdict"] == expected
    parent = mlflow.get_run(summary["mlflow_run_id"])
    children = mlflow.MlflowClient().search_runs([parent.info.experiment_id],
                                                 f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 8 and {c.data.tags["arm"] for c in children} == {"scratch", "pretrained"}
    curve = pd.read_csv(tmp_path / "plots" / "ua_by_fraction.csv")
    assert list(curve.columns)[:3] == ["fraction", "scratch_ua", "pretrained_ua"] and len(curve) == 2
    assert np.isfinite(curve[["scratch_ua", "pretrained_ua"]].to_numpy()).all()
