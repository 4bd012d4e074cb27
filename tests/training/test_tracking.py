import json

import mlflow
import numpy as np
import pytest
import yaml

from avemo.training.run import StagePaths, run_training
from tests.conftest import PROJECT


@pytest.mark.slow
def test_a_run_records_params_metrics_tags_confusion_and_a_loadable_model(tiny_variant, tiny_splits, tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["train"]["loop"].update(epochs=2, batch_size=8)
    splits = tmp_path / "splits.parquet"
    tiny_splits.to_parquet(splits)
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
