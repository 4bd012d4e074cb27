"""A training stage's records: MLflow parent and seed runs, lineage tags, DVC datasets, the metrics file with its
intervals, the predictions every comparison is made from, and a model file that rebuilds its model."""

import hashlib
import json

import mlflow
import numpy as np
import pytest
import torch

from avemo.models.checkpoint import load_checkpoint
from tests.conftest import details, run_stage

CLASSES = ["neutral", "happy", "angry", "sad"]


def train(params, tmp_path, variant, stage: str, family: str = "audio", video=None, *extra) -> dict:
    run_stage(params, "train", "--family", family, "--audio", variant, *(("--video", video) if video else ()),
              "--splits", tmp_path / "splits.parquet", "--stage", stage, "--model-dir", tmp_path / "models",
              "--metrics", tmp_path / "metrics.json", "--details", tmp_path / "details", *extra)
    return details(tmp_path / "details")


def runs_of(experiment: str) -> list:
    return mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name(experiment).experiment_id])


@pytest.mark.slow
def test_a_run_records_params_metrics_tags_inputs_confusion_and_a_model_file(tiny_variant, tiny_splits, tmp_path,
                                                                            project_dir):
    params, splits = project_dir
    params = params.override({"train.seeds": [0], "models.audio.kind": "cnn_rnn"})
    summary = train(params, tmp_path, tiny_variant, "train_audio@cnn_rnn-clip3s-raw")

    experiment = mlflow.get_experiment_by_name("avemo-audio")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on training runs
    runs = runs_of("avemo-audio")
    (run,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (child,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert run.data.params["model"] == "cnn_rnn" and run.data.params["train.loop.epochs"] == "2"
    assert run.data.metrics["test_ua"] == pytest.approx(summary["test"]["ua"]["mean"])
    assert summary["test"]["ua"]["sd"] is None and list(summary["test"]["ua"]["per_seed"]) == ["0"]
    assert {"val_ua", "val_wa", "train_loss", "lr", "test_wa", "test_f1_macro", "epochs_at_chance"} <= set(
        child.data.metrics)
    assert [m.step for m in mlflow.MlflowClient().get_metric_history(child.info.run_id, "val_ua")] == [0, 1]
    tags = run.data.tags
    assert tags["dvc_stage"] == "train_audio@cnn_rnn-clip3s-raw" and tags["dataset_variant"] == "clip3s-raw"
    assert tags["class_set"] == "standard4" and int(tags["items_test"]) > 0 and "git_commit" in tags
    # What determines the numbers besides seed and data: versions, threads, CPU code path, device.
    assert tags["env.threads"] == "2" and tags["env.onednn_max_cpu_isa"] == "AVX2" and tags["env.device"] == "cpu"
    assert tags["env.torch"] and tags["env.numpy"]
    assert tags[f"data.{splits.as_posix()}"] == hashlib.md5(splits.read_bytes()).hexdigest()
    array = tiny_variant / "spectrograms.npy"
    assert tags[f"data.{array.as_posix()}"] == hashlib.md5(array.read_bytes()).hexdigest()
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"clip3s-raw", "splits"}
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/confusion_counts.png", "evaluation/confusion_normalised.png", "evaluation/confusion.json",
            "evaluation/per_class.json", "evaluation/learning_curves.png"} <= artifacts
    confusion = json.loads(open(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="evaluation/confusion.json", dst_path=str(tmp_path / "dl"))).read())
    assert np.array(confusion["matrix"]).sum() == int(tags["items_test"])

    # The headline file `dvc metrics show` prints: the mean with its interval over test items and seeds.
    headline = json.loads((tmp_path / "metrics.json").read_text())
    assert set(headline) == {"ua", "ua_low", "ua_high", "wa", "f1", "seeds", "items"}
    assert headline["ua_low"] <= headline["ua"] <= headline["ua_high"] and headline["items"] == int(tags["items_test"])
    assert summary["mlflow_run_id"] == run.info.run_id
    answers = json.loads(open(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="predictions.json", dst_path=str(tmp_path / "dl2"))).read())
    assert len(answers["items"]) == headline["items"] and list(answers["seeds"]) == ["0"]
    assert (tmp_path / "details" / "confusion.csv").read_text().startswith("actual,predicted")

    # The model file rebuilds its model without params.yaml, and answers as the stage's model did.
    model, spec = load_checkpoint(tmp_path / "models" / "best.pt")
    assert spec.family == "audio" and spec.audio.kind == "cnn_rnn" and list(spec.classes) == CLASSES
    from avemo.data.datasets import SpectrogramDataset

    test = SpectrogramDataset(tiny_variant, tiny_splits, "test", CLASSES)
    with torch.no_grad():
        predicted = model(torch.stack([test[i][0] for i in range(len(test))])).argmax(1).tolist()
    assert predicted == answers["seeds"]["0"]


@pytest.mark.slow
def test_seeds_make_one_parent_run_whose_mean_and_interval_are_those_of_its_children(tiny_variant, tmp_path,
                                                                                    project_dir):
    params, _ = project_dir
    params = params.override({"train.loop.epochs": 1, "train.seeds": [0, 1, 2]})
    summary = train(params, tmp_path, tiny_variant, "train_audio_best")

    runs = runs_of("avemo-audio")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(c.data.tags["seed"]) for c in children) == [0, 1, 2] and len(runs) == 4
    for metric, key in (("ua", "ua"), ("wa", "wa"), ("f1", "f1_macro")):
        values = [c.data.metrics[f"test_{key}"] for c in children]
        assert parent.data.metrics[f"test_{metric}_mean"] == pytest.approx(np.mean(values))
        assert parent.data.metrics[f"test_{metric}_sd"] == pytest.approx(np.std(values, ddof=1))
        assert parent.data.metrics[f"test_{metric}_low"] <= np.mean(values) <= parent.data.metrics[f"test_{metric}_high"]
        assert summary["test"][metric]["per_seed"] == pytest.approx(
            {c.data.tags["seed"]: c.data.metrics[f"test_{key}"] for c in children})
    # The kept model is the seed with the best validation UA, chosen without the test set.
    best = max(children, key=lambda c: (c.data.metrics["best_val_ua"], -int(c.data.tags["seed"])))
    assert parent.data.tags["selected_seed"] == best.data.tags["seed"]
    # The runs table: a parent's test_ua is the headline mean over seeds, its best_val_ua the kept seed's.
    assert parent.data.metrics["test_ua"] == pytest.approx(summary["test"]["ua"]["mean"])
    assert parent.data.metrics["best_val_ua"] == pytest.approx(best.data.metrics["best_val_ua"])
    assert parent.data.metrics["kept_seed_test_ua"] == pytest.approx(best.data.metrics["test_ua"])
    parent_artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "evaluation")}
    assert "evaluation/confusion_normalised.png" in parent_artifacts  # the kept model's, one click from the parent
    models = tmp_path / "models"
    assert (models / "best.pt").read_bytes() == (models / f"seed-{best.data.tags['seed']}" / "best.pt").read_bytes()
    assert summary["model"]["seed"] == int(best.data.tags["seed"]) and summary["mlflow_run_id"] == parent.info.run_id
