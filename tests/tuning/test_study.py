"""Searches on the tiny corpus: trials are calls of the training recipe, tracked, resumable, pruned with a reason."""

import json

import mlflow
import pytest
import torch
from optuna.trial import TrialState

import optuna
from avemo.tuning import study as study_module
from avemo.tuning.stage import run_search, search_config, study_name, summarise
from avemo.tuning.study import fail_dead_trials, load

TINY_SPACE = {"train.loop.lr": {"low": 0.001, "high": 0.01, "log": True}, "train.crop_ratio": {"low": 0.0, "high": 0.6}}


def config_for(params, tiny_variant, splits, space=TINY_SPACE, trials=2, epochs=2):
    params["tune"].update(workers=1, threads=2)
    params["tune"]["audio"].update(space=space, trials=trials, epochs=epochs, timeout_s=300)
    data = {"audio": tiny_variant, "video": None, "splits": splits}
    return search_config("audio", "cnn", params, data, "tune_audio")


def test_a_second_run_adds_only_the_missing_trials_and_reports_to_one_mlflow_parent(tiny_variant, tmp_path, project_dir):
    params, splits = project_dir
    storage = f"journal:{tmp_path / 'journal.log'}"
    first = run_search(config_for(params, tiny_variant, splits, trials=2), storage, 1)
    assert [t.number for t in first.trials] == [0, 1]
    again = run_search(config_for(params, tiny_variant, splits, trials=3), storage, 1)
    assert again.study_name == first.study_name and [t.number for t in again.trials] == [0, 1, 2]

    config = config_for(params, tiny_variant, splits, trials=3)
    config.parent_run_id = again.user_attrs["avemo"]["parent_run_id"]
    summary = summarise(again, config, tmp_path / "audio.json", tmp_path / "figures")
    assert summary["trials"]["complete"] + summary["trials"]["pruned"] == 3
    assert json.loads((tmp_path / "audio.json").read_text())["best_trial"] == again.best_trial.number
    assert {p.name for p in (tmp_path / "figures").glob("*.png")} == {"history.png", "importances.png",
                                                                      "parallel_coordinate.png"}
    runs = mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name("avemo-tune").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(c.data.tags["optuna.trial"]) for c in children) == [0, 1, 2]
    assert all(c.data.tags["state"] in ("COMPLETE", "PRUNED") for c in children)
    complete = [c for c in children if c.data.tags["state"] == "COMPLETE"]
    assert all("value_val_ua" in c.data.metrics and "train.audio.lr" in c.data.params for c in complete)
    assert [m.step for m in mlflow.MlflowClient().get_metric_history(complete[0].info.run_id, "val_ua")] == [0, 1]
    assert parent.data.metrics["best_val_ua"] == pytest.approx(again.best_value)

    # The hand-set recipe is trial 0; the *_best stages keep it unless a trial beats it by tune.min_gain.
    hand_set = again.trials[0]
    assert hand_set.user_attrs["hand_set"] and hand_set.params["train.loop.lr"] == params["train"]["loop"]["lr"]
    kept = summarise(again, config, tmp_path / "kept.json", tmp_path / "figures", min_gain=1.0)
    assert kept["chosen_trial"] == 0 and kept["best_overrides"] == hand_set.user_attrs["overrides"]


def test_a_bad_learning_rate_is_pruned_at_once_with_its_reason(tiny_variant, tmp_path, project_dir):
    params, splits = project_dir
    space = {"train.loop.lr": [1.0e4], "train.loop.clip_grad_norm": [0.0], "train.loop.warmup_epochs": [0]}
    study = run_search(config_for(params, tiny_variant, splits, space, trials=1, epochs=8),
                       f"journal:{tmp_path / 'j.log'}", 1)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    reason = trial.user_attrs["pruned_reason"]
    assert "the training loss is nan" in reason and int(reason.split(":")[0].removeprefix("epoch ")) <= 2
    assert len(trial.intermediate_values) <= 2  # stopped early: it never reported the later epochs


def test_a_configuration_that_cannot_fit_the_input_is_pruned_with_its_reason(tiny_variant, tmp_path, project_dir):
    params, splits = project_dir
    space = {"blocks": [3], "kernel": ["7x7"], "padding": [False], "models.audio.pool": [4]}
    study = run_search(config_for(params, tiny_variant, splits, space, trials=1), f"journal:{tmp_path / 'j.log'}", 1)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED and "shrinks the (64, 300) input" in trial.user_attrs["pruned_reason"]


def test_the_crop_ratio_a_trial_samples_reaches_the_dataset(tiny_variant, tmp_path, project_dir, monkeypatch):
    params, splits = project_dir
    seen = []
    real_fit = study_module.fit

    def spy(model, family, params, data, *args, **kwargs):
        seen.append((data.train.crop_ratio, data.val.crop_ratio, data.train[0][0]))
        return real_fit(model, family, params, data, *args, **kwargs)

    monkeypatch.setattr(study_module, "fit", spy)
    study = run_search(config_for(params, tiny_variant, splits, {"train.crop_ratio": [0.5]}, trials=1),
                       f"journal:{tmp_path / 'j.log'}", 1)
    assert study.trials[0].params["train.crop_ratio"] == 0.5
    (train_crop, val_crop, item), = seen
    assert train_crop == val_crop == 0.5
    import pandas as pd

    from avemo.data.datasets import BalanceParams, SpectrogramDataset

    cropped = SpectrogramDataset(tiny_variant, pd.read_parquet(splits), "train", ["neutral", "happy", "angry", "sad"],
                                 crop_ratio=0.5, balance=BalanceParams(**params["train"]["balance"]))
    assert torch.equal(item, cropped[0][0])


def test_a_trial_left_running_by_a_dead_process_fails_and_is_retried(tiny_variant, tmp_path, project_dir):
    """Journal storage has no heartbeat: a worker starting on the machine cleans up after dead ones."""
    params, splits = project_dir
    storage = f"journal:{tmp_path / 'j.log'}"
    run_search(config_for(params, tiny_variant, splits, trials=1), storage, 1)
    study, config = load(study_name(config_for(params, tiny_variant, splits, trials=1)), storage)
    orphan = study.ask({"train.loop.lr": optuna.distributions.FloatDistribution(0.001, 0.01, log=True)})
    import socket

    study._storage.set_trial_user_attr(orphan._trial_id, "worker", f"{socket.gethostname()}:999999999")
    assert fail_dead_trials(study, config) == [orphan.number]
    trials = study.get_trials(deepcopy=False)
    assert trials[orphan.number].state == TrialState.FAIL
    retry = trials[-1]
    assert retry.state == TrialState.WAITING and retry.system_attrs["failed_trial"] == orphan.number
    assert retry.params == trials[orphan.number].params
    assert "died mid-trial" in trials[orphan.number].user_attrs["fail_reason"]
