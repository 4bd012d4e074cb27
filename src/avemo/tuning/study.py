"""Optuna studies: storage, the objective (one call of the training recipe), workers, MLflow trial runs.

A study holds everything a worker needs in its user attributes (the base params, the space,
the data paths, the MLflow parent run), so `avemo tune-worker --study NAME --storage URL`
joins it from any process or machine and trains exactly what the others train.

Storage: `journal:<file>` (Optuna's journal file: any number of processes on one machine),
or a database URL (`sqlite:///...`, `postgresql://...`: several machines). Database storage
has heartbeats: a killed worker's trial is failed after the grace period and retried with
the same parameters (RetryFailedTrialCallback). The journal has none, so a worker starting on
a machine fails and retries the trials that dead processes of that machine left running.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow.entities import Metric, Param, RunStatus
from optuna.storages import JournalStorage, RDBStorage, RetryFailedTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

import optuna
from avemo.determinism import pin_cpu
from avemo.labels import class_set
from avemo.tracking import tracking_uri
from avemo.training.loop import TrainingDiverged
from avemo.training.recipe import (
    StageData,
    build_datasets,
    fit,
    fusion_init,
    prepare_model,
)
from avemo.tuning.space import apply, sample

IN_FLIGHT = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


@dataclass
class SearchConfig:
    """What every worker of a study trains: stored in the study, identical for all."""

    family: str
    kind: str  # the audio model kind when the space does not choose it
    params: dict  # the base params.yaml (for fusion: with the audio search's best applied)
    space: dict
    trials: int  # COMPLETE + PRUNED trials wanted
    timeout_s: float  # no new trial starts after this long (per worker run)
    epochs: int  # per trial
    data: dict  # audio, video, splits, init_audio, init_video, init_pretrained: paths or None
    seed: int  # TPE seed; worker k samples with seed + k
    pruner: str
    threads: int  # intra-op threads per worker
    max_retry: int
    parent_run_id: str = ""
    experiment_id: str = ""
    stage: str = ""
    heartbeat_s: int = 10
    grace_s: int = 30
    extra: dict = field(default_factory=dict)


class RetryDeadTrial:
    """A trial whose worker died: its MLflow run is marked failed with the reason, then Optuna's
    RetryFailedTrialCallback queues a new trial with the same parameters."""

    def __init__(self, max_retry: int):
        self.retry = RetryFailedTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        reason = f"worker {trial.user_attrs.get('worker', '?')} died mid-trial"
        _end_trial_run(trial.user_attrs.get("mlflow_run_id"), "FAIL", reason)
        self.retry(study, trial)


def open_storage(url: str, heartbeat_s: int = 10, grace_s: int = 30, max_retry: int = 2):
    """Journal file or database storage; databases get heartbeats and retries of crashed trials."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    return RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=grace_s,
                      heartbeat_stale_trial_callback=RetryDeadTrial(max_retry))


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":  # a trial below the median of earlier trials at the same epoch stops
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 3))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, epochs // 4), max_resource=epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"tune.pruner must be 'median', 'hyperband' or 'none', not {name!r}")


def load(study_name: str, storage_url: str, worker: int = 0) -> tuple[optuna.Study, SearchConfig]:
    """A running study and its search configuration, for worker number `worker`."""
    storage = open_storage(storage_url)
    try:
        config = SearchConfig(**optuna.load_study(study_name=study_name, storage=storage).user_attrs["avemo"])
    except KeyError:
        raise ValueError(f"study {study_name!r} in {redact(storage_url)} does not exist or was not made by avemo tune") from None
    storage = open_storage(storage_url, config.heartbeat_s, config.grace_s, config.max_retry)
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=config.seed + worker),
                              pruner=make_pruner(config.pruner, config.epochs))
    return study, config


def redact(url: str) -> str:
    """A storage URL without its password, for logs and reports."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':')[0]}:***@{host}"
    return url


def work(study_name: str, storage_url: str, worker: int = 0) -> int:
    """Run trials of a study until it has its trial count or the time budget is spent; return how many ran."""
    study, config = load(study_name, storage_url, worker)
    pin_cpu(config.threads, config.params["train"]["cpu_isa"])
    mlflow.set_tracking_uri(tracking_uri())
    deadline, ran = time.time() + config.timeout_s, 0
    while time.time() < deadline:
        fail_dead_trials(study, config)  # their retries count as wanted trials again
        if sum(t.state in IN_FLIGHT for t in study.get_trials(deepcopy=False)) >= config.trials:
            break
        study.optimize(lambda trial: objective(trial, config), n_trials=1, catch=(Exception,))
        ran += 1
    return ran


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_trials(study: optuna.Study, config: SearchConfig) -> list[int]:
    """Fail the RUNNING trials of dead workers and queue their retries; return their numbers.

    Database storage: trials whose heartbeat is older than the grace period (Optuna's own check).
    Journal storage has no heartbeat: trials of dead processes of this machine.
    """
    if not isinstance(study._storage, JournalStorage):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        optuna.storages.fail_stale_trials(study)
        return sorted({t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))} - before)
    failed = []
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner_host, _, pid = trial.user_attrs.get("worker", ":").rpartition(":")
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", f"worker {owner_host}:{pid} died mid-trial")
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        RetryDeadTrial(config.max_retry)(study, study._storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SurplusTrial(Exception):
    """Two workers started the study's last trial at once: the later one is not run."""


def objective(trial: optuna.Trial, config: SearchConfig) -> float:
    """One trial = one call of the training recipe with the sampled params; returns validation UA."""
    trial.set_user_attr("worker", worker_id())
    ahead = [t for t in trial.study.get_trials(deepcopy=False, states=IN_FLIGHT) if t.number < trial.number]
    if len(ahead) >= config.trials:
        trial.set_user_attr("fail_reason", f"surplus: the study already has its {config.trials} trials")
        raise SurplusTrial(trial.user_attrs["fail_reason"])
    overrides = sample(trial, config.space, config.family)
    trial.set_user_attr("overrides", overrides)
    params = apply(config.params, {**overrides, f"train.{config.family}.epochs": config.epochs,
                                   "train.log_model": False})
    run_id = _start_trial_run(trial, config, overrides)
    records: list[dict] = []

    def report(epoch: int, record: dict) -> None:
        records.append(record)
        _log_epoch(run_id, epoch, record)
        trial.report(record["val_ua"], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: validation UA {record['val_ua']:.3f} "
                                     "below the median of earlier trials at that epoch")

    try:
        value = _train_trial(trial, config, params, report)
    except optuna.TrialPruned as exc:
        _finish(trial, run_id, "PRUNED", str(exc))
        raise
    except (ValueError, TrainingDiverged) as exc:  # a configuration that cannot fit the input, or diverges
        _finish(trial, run_id, "PRUNED", str(exc))
        raise optuna.TrialPruned(str(exc)) from exc
    except Exception as exc:
        _finish(trial, run_id, "FAIL", f"{type(exc).__name__}: {exc}")
        raise
    _finish(trial, run_id, "COMPLETE", "", value)
    return value


def _train_trial(trial: optuna.Trial, config: SearchConfig, params: dict, report) -> float:
    classes = class_set(params["labels"])
    d = config.data
    data = build_datasets(config.family, params, StageData(Path(d["audio"]), d["video"] and Path(d["video"]),
                                                           Path(d["splits"])), classes)
    kind = params["models"]["audio"].get("kind", config.kind)
    seed = params["train"]["loop"]["seed"]
    init = fusion_init(params, {k: d.get(k) and Path(d[k]) for k in ("init_audio", "init_video", "init_pretrained")},
                       seed) if config.family == "fusion" else (None, None)
    model = prepare_model(config.family, kind, params, data, seed, init)
    folder = Path(".avemo") / "trials" / f"{trial.study.study_name}-{trial.number}"
    try:
        history = fit(model, config.family, params, data, seed, folder, on_epoch=report)
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return history.epochs[-1]["val_ua"] if params["train"]["loop"]["select"] == "last" else history.best_score


def _start_trial_run(trial: optuna.Trial, config: SearchConfig, overrides: dict) -> str | None:
    """The trial's nested MLflow run (under the study's parent run), created when the trial starts."""
    if not config.parent_run_id:
        return None
    client = mlflow.MlflowClient()
    run = client.create_run(config.experiment_id, run_name=f"trial {trial.number}", tags={
        "mlflow.parentRunId": config.parent_run_id, "optuna.study": trial.study.study_name,
        "optuna.trial": str(trial.number), "worker": worker_id(), "dvc_stage": config.stage, "state": "RUNNING"})
    client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in overrides.items()])
    trial.set_user_attr("mlflow_run_id", run.info.run_id)
    return run.info.run_id


def _log_epoch(run_id: str | None, epoch: int, record: dict) -> None:
    if run_id:
        now = int(time.time() * 1000)
        mlflow.MlflowClient().log_batch(run_id, metrics=[Metric(k, float(v), now, epoch) for k, v in record.items()
                                                         if k != "epoch"])


def _finish(trial: optuna.Trial, run_id: str | None, state: str, reason: str, value: float | None = None) -> None:
    if reason:
        trial.set_user_attr("fail_reason" if state == "FAIL" else "pruned_reason", reason)
    if value is not None and run_id:
        mlflow.MlflowClient().log_metric(run_id, "value_val_ua", value)
    _end_trial_run(run_id, state, reason)


def _end_trial_run(run_id: str | None, state: str, reason: str) -> None:
    if not run_id:
        return
    client = mlflow.MlflowClient()
    client.set_tag(run_id, "state", state)
    if reason:
        client.set_tag(run_id, "reason", reason[:5000])
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED if state == "FAIL" else RunStatus.FINISHED))

