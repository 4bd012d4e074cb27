import hashlib
import json

import mlflow
import numpy as np
import pytest

from avemo.training.run import StagePaths, run_training

CLASSES = ["neutral", "happy", "angry", "sad"]


def stage_paths(tmp_path, audio, video=None) -> StagePaths:
    return StagePaths(audio, video, tmp_path / "splits.parquet", tmp_path / "models", tmp_path / "metrics.json",
                      tmp_path / "plots")


def runs_of(experiment: str) -> list:
    return mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name(experiment).experiment_id])


@pytest.mark.slow
def test_a_run_records_params_metrics_tags_inputs_confusion_and_a_loadable_model(tiny_variant, tiny_splits, tmp_path,
                                                                                project_dir):
    params, splits = project_dir
    params["train"]["log_model"] = True
    summary = run_training("audio", "cnn_rnn", "clip3s-raw", "train_audio@cnn_rnn-clip3s-raw", params,
                           stage_paths(tmp_path, tiny_variant))

    experiment = mlflow.get_experiment_by_name("avemo-audio")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on training runs
    (run,) = runs_of("avemo-audio")
    assert run.data.params["model"] == "cnn_rnn" and run.data.params["train.loop.epochs"] == "2"
    assert run.data.metrics["test_ua"] == pytest.approx(summary["test_ua"]["mean"])
    assert summary["test_ua"]["sd"] is None and summary["seeds"] == [0]
    assert {"val_ua", "val_wa", "train_loss", "lr", "test_wa", "test_f1_macro", "epochs_at_chance"} <= set(run.data.metrics)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_ua")
    assert [m.step for m in history] == [0, 1]
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

    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    from avemo.data.datasets import SpectrogramDataset

    x = SpectrogramDataset(tiny_variant, tiny_splits, "test", CLASSES)[0][0][None].numpy()
    assert model.predict(x).shape == (1, 4)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["mlflow_run_id"] == run.info.run_id and metrics["test_ua"]["mean"] == pytest.approx(
        run.data.metrics["test_ua"])
    assert (tmp_path / "plots" / "confusion.csv").read_text().startswith("actual,predicted")
    assert (tmp_path / "models" / "best.pt").exists() and not (tmp_path / "models" / "last.pt").exists()


@pytest.mark.slow
def test_seeds_make_one_parent_run_whose_mean_and_sd_are_those_of_its_children(tiny_variant, tmp_path, project_dir):
    params, _ = project_dir
    params["train"]["loop"]["epochs"] = 1
    summary = run_training("audio", "cnn", "clip3s-raw", "train_audio_best", params, stage_paths(tmp_path, tiny_variant),
                           seeds=[0, 1, 2])

    runs = runs_of("avemo-audio")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(c.data.tags["seed"]) for c in children) == [0, 1, 2] and len(runs) == 4
    for metric in ("ua", "wa", "f1_macro"):
        values = [c.data.metrics[f"test_{metric}"] for c in children]
        assert parent.data.metrics[f"test_{metric}_mean"] == pytest.approx(np.mean(values))
        assert parent.data.metrics[f"test_{metric}_sd"] == pytest.approx(np.std(values, ddof=1))
        assert summary[f"test_{metric}"]["per_seed"] == pytest.approx(
            {c.data.tags["seed"]: c.data.metrics[f"test_{metric}"] for c in children})
    # The kept model is the seed with the best validation UA, chosen without the test set.
    best = max(children, key=lambda c: (c.data.metrics["best_val_ua"], -int(c.data.tags["seed"])))
    assert parent.data.tags["selected_seed"] == best.data.tags["seed"]
    assert parent.data.metrics["test_ua"] == pytest.approx(best.data.metrics["test_ua"])
    parent_artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "evaluation")}
    assert "evaluation/confusion_normalised.png" in parent_artifacts  # the kept model's, one click from the parent
    models = tmp_path / "models"
    assert (models / "best.pt").read_bytes() == (models / f"seed-{best.data.tags['seed']}" / "best.pt").read_bytes()
    assert json.loads((tmp_path / "metrics.json").read_text())["mlflow_run_id"] == parent.info.run_id


@pytest.mark.slow
def test_a_fusion_run_logs_a_packed_model_that_takes_frames(tiny_variant, tiny_video, tiny_splits, tmp_path, project_dir):
    from avemo.data.datasets import AudioVisualDataset
    from avemo.models.packing import pack

    params, _ = project_dir
    params["train"]["loop"]["epochs"] = 1
    params["train"]["fusion"]["epochs"] = 1
    params["train"]["fusion_init"] = "scratch"
    params["train"]["log_model"] = True
    run_training("fusion", "cnn_rnn", "clip3s-raw", "train_fusion", params, stage_paths(tmp_path, tiny_variant, tiny_video[0]))

    (run,) = runs_of("avemo-fusion")
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"clip3s-raw", "splits", "video-clip3s"}
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    spec, frames, _ = AudioVisualDataset(tiny_variant, tiny_video[0], tiny_splits, "test", CLASSES)[0]
    a = model.predict(pack(spec[None], frames[None]).numpy())
    b = model.predict(pack(spec[None], frames[None] + 1.0).numpy())
    assert a.shape == (1, 4) and not np.allclose(a, b)  # the logged model reads the frames
    assert model.metadata.get_input_schema().inputs[0].shape == (-1, 64 * 300 + 3 * 20 * 60 * 100)
