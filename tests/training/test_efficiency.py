"""The label-efficiency grid: same label subsets for both arms, one MLflow child per run, mean/sd per cell."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from avemo.training.efficiency import label_subset


def test_label_subsets_keep_each_class_and_are_seeded():
    items = pd.DataFrame({"class": ["neutral"] * 40 + ["happy"] * 20 + ["angry"] * 10 + ["sad"] * 3})
    keep = label_subset(items, 0.1, seed=0)
    counts = items[keep]["class"].value_counts().to_dict()
    assert counts == {"neutral": 4, "happy": 2, "angry": 1, "sad": 1}  # at least one of each class
    assert (label_subset(items, 0.1, 0) == keep).all() and not (label_subset(items, 0.1, 1) == keep).all()
    assert label_subset(items, 1.0, 0).all()


@pytest.mark.slow
def test_both_arms_train_on_the_same_labels_and_the_summary_equals_the_runs(small_project, tmp_path, project_dir):
    from avemo.training.efficiency import run_label_efficiency
    from avemo.training.pretrain import run_pretraining
    from avemo.training.recipe import StageData

    params, _ = project_dir
    params["pretrain"]["loop"]["epochs"] = 1
    params["pretrain"]["efficiency"].update(fractions=[0.25, 1.0], loop={"epochs": 1})
    params["train"]["seeds"] = [0, 1]
    data = StageData(small_project / "full-raw", small_project / "video", small_project / "splits.parquet")
    run_pretraining(params, "cnn", data.audio, data.video, data.splits, tmp_path / "pre", tmp_path / "p.json",
                    tmp_path / "pp")
    summary = run_label_efficiency(params, "cnn", data, tmp_path / "pre", "train_fusion_pretrained",
                                   tmp_path / "m.json", tmp_path / "plots")

    runs = pd.read_csv(tmp_path / "plots" / "runs.csv")
    assert len(runs) == 2 * 2 * 2  # fractions x seeds x arms
    same = runs.pivot_table(index=["fraction", "seed"], columns="arm", values="labels")
    assert (same["scratch"] == same["pretrained"]).all()  # the same labelled subset for both arms
    for fraction, cells in summary["fractions"].items():
        for arm in ("scratch", "pretrained"):
            values = runs[(runs["fraction"] == float(fraction)) & (runs["arm"] == arm)]["test_ua"]
            assert cells[arm]["test_ua"]["mean"] == pytest.approx(values.mean())
            assert cells[arm]["test_ua"]["sd"] == pytest.approx(values.std(ddof=1))
        assert cells["verdict"] in ("pre-training helps", "pre-training hurts", "no gain beyond the seed spread")
    parent = mlflow.get_run(json.loads((tmp_path / "m.json").read_text())["mlflow_run_id"])
    children = mlflow.MlflowClient().search_runs([parent.info.experiment_id],
                                                 f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 8 and {c.data.tags["arm"] for c in children} == {"scratch", "pretrained"}
    curve = pd.read_csv(tmp_path / "plots" / "ua_by_fraction.csv")
    assert list(curve.columns) == ["fraction", "scratch_ua", "pretrained_ua"] and len(curve) == 2
    assert np.isfinite(curve[["scratch_ua", "pretrained_ua"]].to_numpy()).all()
