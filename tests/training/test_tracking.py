import json

import mlflow
import numpy as np
import pytest
import yaml

from avemo.training.run import StagePaths, run_training
from tests.conftest import PROJECT


@pytest.fixture
def project(tmp_path, monkeypatch, tiny_splits):
    """A working directory with its own MLflow store, the project's params, and the tiny splits."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["train"]["loop"].update(batch_size=8)
    splits = tmp_path / "splits.parquet"
    tiny_splits.to_parquet(splits)
    return params, splits


@pytest.mark.slow
def test_a_run_records_params_metrics_tags_confusion_and_a_loadable_model(tiny_variant, tiny_splits, tmp_path, project):
    params, splits = project
    params["train"]["loop"]["epochs"] = 2
    paths = StagePaths(tiny_variant, None, splits, tmp_path / "models", tmp_path / "metrics.json", tmp_path / "plots")
    test = run_training("audio", "cnn_rnn", "clip3s-raw", "train_audio@cnn_rnn-clip3s-raw", params, paths)

    assert (tmp_path / "mlruns" / "mlflow.db").exists()
    experiment = mlflow.get_experiment_by_name("avemo-audio")
    run = mlflow.MlflowClient().search_runs([experiment.experiment_id])[0]
    assert run.data.params["model"] == "cnn_rnn" and run.data.params["train.loop.epochs"] == "2"
    assert run.data.metrics["test_ua"] == pytest.approx(test["ua"])
    assert {"val_ua", "val_wa", "train_loss", "test_wa", "test_f1_macro"} <= set(run.data.metrics)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_ua")
    assert [m.step for m in history] == [0, 1]
    tags = run.data.tags
    assert tags["dvc_stage"] == "train_audio@cnn_rnn-clip3s-raw" and tags["dataset_variant"] == "clip3s-raw"
    assert tags["class_set"] == "standard4" and int(tags["items_test"]) > 0 and "git_commit" in tags
    import hashlib

    assert tags[f"data.{splits.as_posix()}"] == hashlib.md5(splits.read_bytes()).hexdigest()
    array = tiny_variant / "spectrograms.npy"
    assert tags[f"data.{array.as_posix()}"] == hashlib.md5(array.read_bytes()).hexdigest()
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/confusion_counts.png", "evaluation/confusion_normalised.png", "evaluation/confusion.json",
            "evaluation/per_class.json", "evaluation/learning_curves.png"} <= artifacts
    confusion = json.loads(open(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="evaluation/confusion.json", dst_path=str(tmp_path / "dl"))).read())
    assert np.array(confusion["matrix"]).sum() == int(tags["items_test"])

    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    from avemo.data.datasets import SpectrogramDataset

    x = SpectrogramDataset(tiny_variant, tiny_splits, "test", confusion["classes"])[0][0][None].numpy()
    assert model.predict(x).shape == (1, 4)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["mlflow_run_id"] == run.info.run_id and metrics["test_ua"] == pytest.approx(test["ua"])
    assert (tmp_path / "plots" / "confusion.csv").read_text().startswith("actual,predicted")


@pytest.mark.slow
def test_a_fusion_run_logs_a_packed_model_that_takes_frames(tiny_variant, tiny_video, tiny_splits, tmp_path, project):
    from avemo.data.datasets import AudioVisualDataset
    from avemo.models.packing import pack

    params, splits = project
    params["train"]["loop"]["epochs"] = 1
    paths = StagePaths(tiny_variant, tiny_video[0], splits, tmp_path / "models", tmp_path / "m.json", tmp_path / "p")
    run_training("fusion", "cnn_rnn", "clip3s-raw", "train_fusion", params, paths)

    experiment = mlflow.get_experiment_by_name("avemo-fusion")
    run = mlflow.MlflowClient().search_runs([experiment.experiment_id])[0]
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    spec, frames, _ = AudioVisualDataset(tiny_variant, tiny_video[0], tiny_splits, "test",
                                         ["neutral", "happy", "angry", "sad"])[0]
    a = model.predict(pack(spec[None], frames[None]).numpy())
    b = model.predict(pack(spec[None], frames[None] + 1.0).numpy())
    assert a.shape == (1, 4) and not np.allclose(a, b)  # the logged model reads the frames
    assert model.metadata.get_input_schema().inputs[0].shape == (-1, 200 * 300 + 3 * 20 * 60 * 100)
