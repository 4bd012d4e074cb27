"""A real distributed search: a PostgreSQL server (started by the fixture), worker processes joining one study."""

import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest
from optuna.trial import TrialState

from avemo.stages.frame import Frame
from avemo.stages.tune import run_search, search_config, study_name
from avemo.tuning.study import load

SPACE = {"train.loop.lr": {"low": 0.001, "high": 0.01, "log": True}, "models.audio.dropout": {"low": 0.0, "high": 0.5}}


def config_for(params, tiny_variant, splits, trials, epochs):
    params = params.override({"tune.heartbeat_s": 1, "tune.grace_s": 3, "tune.pruner": "none", "tune.audio.space": SPACE,
                              "tune.audio.trials": trials, "tune.audio.epochs": epochs, "train.threads": 1})
    data = {"audio": tiny_variant, "video": None, "splits": splits}
    return search_config("audio", params, data, "tune_audio"), Frame("tune_audio", params, data.values())


@pytest.mark.slow
def test_two_worker_processes_run_one_study_on_postgresql(tiny_variant, project_dir, postgres_url):
    params, splits = project_dir
    study = run_search(*config_for(params, tiny_variant, splits, trials=6, epochs=2), postgres_url, workers=2)

    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert len({t.user_attrs["worker"] for t in finished}) == 2  # both workers contributed
    runs = mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name("avemo-tune").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(c.data.tags["optuna.trial"]) for c in children) == sorted(t.number for t in study.trials)
    assert parent.data.tags["optuna.study"] == study.study_name


@pytest.mark.slow
def test_a_killed_worker_s_trial_fails_by_heartbeat_and_is_retried(tiny_variant, project_dir, postgres_url):
    params, splits = project_dir
    config, frame = config_for(params, tiny_variant, splits, trials=1, epochs=200)
    run_search(config, frame, postgres_url, workers=0)  # creates the study and its parent run; no worker yet
    name = study_name(config, frame)
    worker = subprocess.Popen([sys.executable, "-m", "avemo.cli", "tune-worker", "--study", name,
                               "--storage", postgres_url], start_new_session=True)
    study, _ = load(name, postgres_url)
    deadline = time.time() + 120
    while not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        assert time.time() < deadline and worker.poll() is None
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()

    study = load(name, postgres_url)[0]  # the retry is short (its parameters are the killed trial's)
    study.set_user_attr("avemo", {**study.user_attrs["avemo"], "epochs": 2})
    time.sleep(4)  # past the grace period: the killed trial's heartbeat is stale
    subprocess.run([sys.executable, "-m", "avemo.cli", "tune-worker", "--study", name, "--storage", postgres_url],
                   check=True)
    trials = load(name, postgres_url)[0].trials
    killed, retry = trials[0], trials[1]
    assert killed.state == TrialState.FAIL
    assert retry.state == TrialState.COMPLETE and retry.system_attrs["failed_trial"] == 0
    assert retry.params == killed.params
    runs = {r.data.tags["optuna.trial"]: r for r in mlflow.MlflowClient().search_runs(
        [mlflow.get_experiment_by_name("avemo-tune").experiment_id]) if "optuna.trial" in r.data.tags}
    assert runs["0"].info.status == "FAILED" and "died mid-trial" in runs["0"].data.tags["reason"]
    assert runs["1"].info.status == "FINISHED"
