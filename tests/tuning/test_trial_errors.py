"""A trial whose configuration does not fit the input is pruned with its reason (models.DoesNotFit); any other
error fails it, with its traceback on the trial and its MLflow run, and the search counts it."""

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from avemo.models import DoesNotFit
from avemo.models.audio import AudioNetConfig, feature_map_shape
from tests.tuning.test_study import _journal, tune


def test_a_configuration_too_deep_for_its_input_raises_does_not_fit():
    with pytest.raises(DoesNotFit, match="shrinks the"):
        feature_map_shape(AudioNetConfig(channels=(4,) * 6, kernels=((15, 15),) * 6, padding=(False,) * 6))


def test_an_error_in_a_trial_fails_it_with_its_traceback_and_the_search_counts_it(tiny_variant, tmp_path,
                                                                                  project_dir, monkeypatch):
    from avemo.training import recipe

    params, splits = project_dir

    def broken(*args, **kwargs):
        raise ValueError("a half-added model kind")  # an error, not a configuration that does not fit

    monkeypatch.setattr(recipe, "fit", broken)
    storage = f"journal:{tmp_path / 'j.log'}"
    with pytest.raises(RuntimeError, match=r"no trial completed \({'complete': 0, 'pruned': 0, 'fail': 1"):
        tune(params, tiny_variant, splits, tmp_path, storage, {"train.crop_ratio": [0.0]}, trials=1)
    (name,) = optuna.get_all_study_names(storage=_journal(storage))
    (trial,) = optuna.load_study(study_name=name, storage=_journal(storage)).trials  # spent: not tried again
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "ValueError: a half-added model kind"
    assert "Traceback" in trial.user_attrs["traceback"] and "a half-added model kind" in trial.user_attrs["traceback"]
    client = mlflow.MlflowClient()
    (run,) = [r for r in client.search_runs([mlflow.get_experiment_by_name("avemo-tune").experiment_id])
              if r.data.tags.get("optuna.trial") == "0"]
    assert run.info.status == "FAILED" and run.data.tags["state"] == "FAIL"
    text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/traceback.txt")
    assert "ValueError: a half-added model kind" in text
