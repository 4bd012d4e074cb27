"""Optuna studies: storage, the objective (one call of the training recipe), workers.

A study holds everything a worker needs in its user attributes (the base params, the space, the
data paths, the budget), so a worker joins it from any process or machine and trains exactly
what the others train. What a trial leaves besides its value (a tracking run, say) is the
caller's: `work` takes `TrialHooks`, called when a trial starts, at each epoch and when it ends.

Storage: `journal:<file>` (Optuna's journal file: any number of processes on one machine), or a
database URL (`sqlite:///...`, `postgresql://...`: several machines). Database storage has
heartbeats: a killed worker's trial is failed after the grace period and retried with the same
parameters (RetryHeartbeatStaleTrialCallback). The journal has none, so a worker starting on a machine
fails and retries the trials that dead processes of that machine left running.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from avemo.labels import class_set
from avemo.models import DoesNotFit
from avemo.params import Params, validate
from avemo.training.loop import TrainingDiverged
from avemo.tuning.space import sample

IN_FLIGHT = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
TRACEBACK_CHARS = 5000  # the end of a failed trial's traceback, kept on the trial and its MLflow run


@dataclass
class SearchConfig:
    """What every worker of a study trains: stored in the study, identical for all."""

    family: str
    params: dict  # the base params.yaml, as plain values (for fusion: with the audio search's choice applied)
    space: dict
    trials: int  # COMPLETE + PRUNED trials wanted
    epochs: int  # per trial
    data: dict  # audio, video, splits, init_audio, init_video, init_pretrained: paths or None
    seed: int  # TPE seed; worker k samples with seed + k
    pruner: str
    max_retry: int
    min_complete: int = 1  # fewer completed trials: the search searched too little to choose anything
    timeout_s: float | None = None  # optional: no new trial starts after this long (per worker run)
    heartbeat_s: int = 10
    grace_s: int = 30
    stage: str = ""
    tracking: dict = field(default_factory=dict)  # the caller's: e.g. where trial runs are recorded

    def typed(self) -> Params:
        return validate(self.params, f"study of tune_{self.family}")


class TrialHooks(Protocol):
    def started(self, trial: optuna.Trial, config: SearchConfig, overrides: dict) -> None: ...
    def epoch(self, trial: optuna.Trial, epoch: int, record: dict) -> None: ...
    def ended(self, trial: FrozenTrial | optuna.Trial, state: str, reason: str, value: float | None) -> None: ...


class NoHooks:
    """A search that records nothing besides the study itself."""

    def started(self, trial, config, overrides) -> None:
        return None

    def epoch(self, trial, epoch, record) -> None:
        return None

    def ended(self, trial, state, reason, value) -> None:
        return None


class RetryDeadTrial:
    """A trial whose worker died: the hooks hear of it, then Optuna's RetryHeartbeatStaleTrialCallback queues a
    new trial with the same parameters."""

    def __init__(self, max_retry: int, hooks: TrialHooks):
        self.retry, self.hooks = RetryHeartbeatStaleTrialCallback(max_retry=max_retry), hooks

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.hooks.ended(trial, "FAIL", f"worker {trial.user_attrs.get('worker', '?')} died mid-trial", None)
        self.retry(study, trial)


def open_storage(url: str, heartbeat_s: int = 10, grace_s: int = 30, max_retry: int = 2,
                 hooks: TrialHooks | None = None):
    """Journal file or database storage; databases get heartbeats and retries of crashed trials."""
    if is_journal(url):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    return RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=grace_s,
                      heartbeat_stale_trial_callback=RetryDeadTrial(max_retry, hooks or NoHooks()))


def is_journal(url: str) -> bool:
    return url.startswith("journal:")


def judged_from(name: str, epochs: int) -> int:
    """The first epoch (0-based) at which the pruner may stop a trial."""
    return {"median": max(1, epochs // 3), "hyperband": max(1, epochs // 4)}.get(name, epochs - 1)


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    if name == "median":  # a trial below the median of earlier trials at the same epoch stops
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=judged_from(name, epochs))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=judged_from(name, epochs), max_resource=epochs,
                                              reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"tune.pruner must be 'median', 'hyperband' or 'none', not {name!r}")


def load(study_name: str, storage_url: str, worker: int = 0,
         hooks: TrialHooks | None = None) -> tuple[optuna.Study, SearchConfig]:
    """A running study and its search configuration, for worker number `worker`."""
    try:
        attrs = optuna.load_study(study_name=study_name, storage=open_storage(storage_url)).user_attrs["avemo"]
    except KeyError:
        raise ValueError(f"study {study_name!r} in {redact(storage_url)} does not exist or was not made by avemo tune") from None
    config = SearchConfig(**attrs)
    storage = open_storage(storage_url, config.heartbeat_s, config.grace_s, config.max_retry, hooks)
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


def work(study_name: str, storage_url: str, worker: int = 0, hooks: TrialHooks | None = None) -> int:
    """Run trials of a study until it has its trial count or its time limit (if any) is spent; return how many ran."""
    hooks = hooks or NoHooks()
    study, config = load(study_name, storage_url, worker, hooks)
    deadline, ran = time.time() + (config.timeout_s or float("inf")), 0
    while time.time() < deadline:
        fail_dead_trials(study, storage_url, config, hooks)  # their retries count as wanted trials again
        if sum(_spent(t) for t in study.get_trials(deepcopy=False)) >= config.trials:
            break
        study.optimize(lambda trial: objective(trial, config, hooks), n_trials=1, catch=(Exception,))
        ran += 1
    return ran


def _spent(trial: FrozenTrial) -> bool:
    """A trial of the budget: in flight, or failed by an error (which would fail again: no endless retrying)."""
    return trial.state in IN_FLIGHT or (trial.state == TrialState.FAIL and "traceback" in trial.user_attrs)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_trials(study: optuna.Study, storage_url: str, config: SearchConfig, hooks: TrialHooks) -> list[int]:
    """Fail the RUNNING trials of dead workers and queue their retries; return their numbers.

    Database storage: trials whose heartbeat is older than the grace period (Optuna's own check).
    Journal storage has no heartbeat: trials of dead processes of this machine.
    """
    if not is_journal(storage_url):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        optuna.storages.fail_stale_trials(study)
        return sorted({t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))} - before)
    failed, host = [], socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner_host, _, pid = trial.user_attrs.get("worker", ":").rpartition(":")
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        study.tell(trial.number, state=TrialState.FAIL)
        dead = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        RetryDeadTrial(config.max_retry, hooks)(study, dead)
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


def objective(trial: optuna.Trial, config: SearchConfig, hooks: TrialHooks) -> float:
    """One trial = one call of the training recipe with the sampled params; returns validation UA.

    The value is the validation UA on the selection half of the validation items (`train_candidate`); the
    trial keeps its answers there (`val_predictions`) for the record. Whether the best trial beats the
    hand-set one is settled elsewhere, on other items and seeds (`confirm_choice`).
    """
    trial.set_user_attr("worker", worker_id())
    ahead = [t for t in trial.study.get_trials(deepcopy=False, states=IN_FLIGHT) if t.number < trial.number]
    if len(ahead) >= config.trials:
        trial.set_user_attr("fail_reason", f"surplus: the study already has its {config.trials} trials")
        raise SurplusTrial(trial.user_attrs["fail_reason"])
    overrides = sample(trial, config.space, config.family)
    trial.set_user_attr("overrides", overrides)
    hooks.started(trial, config, overrides)

    def report(epoch: int, record: dict) -> None:
        hooks.epoch(trial, epoch, record)
        trial.report(record["val_ua"], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch}: validation UA {record['val_ua']:.3f} "
                                     "below the median of earlier trials at that epoch")

    try:
        params = config.typed().override({**overrides, f"train.{config.family}.epochs": config.epochs})
        value, answers, cost = train_trial(trial, config, params, report)
    except optuna.TrialPruned as exc:
        _end(trial, hooks, "PRUNED", str(exc))
        raise
    except (DoesNotFit, TrainingDiverged) as exc:  # a configuration that cannot fit the input, or diverges
        _end(trial, hooks, "PRUNED", str(exc))
        raise optuna.TrialPruned(str(exc)) from exc
    except Exception as exc:  # anything else is a bug or a broken configuration: never a quiet pruning
        trial.set_user_attr("traceback", traceback.format_exc()[-TRACEBACK_CHARS:])
        _end(trial, hooks, "FAIL", f"{type(exc).__name__}: {exc}")
        raise
    trial.set_user_attr("val_predictions", answers)
    for key, figure in cost.items():  # what the model costs to serve (tuning/cost.py), beside what it scores
        trial.set_user_attr(key, figure)
    _end(trial, hooks, "COMPLETE", "", value)
    return value


def _end(trial: optuna.Trial, hooks: TrialHooks, state: str, reason: str, value: float | None = None) -> None:
    if reason:
        trial.set_user_attr("fail_reason" if state == "FAIL" else "pruned_reason", reason)
    hooks.ended(trial, state, reason, value)


def train_trial(trial: optuna.Trial, config: SearchConfig, params: Params,
                report) -> tuple[float, dict[str, Any], dict[str, float | int]]:
    """Train the trial's model; its validation UA, its answers on the selection half of the validation items and
    its cost (parameters, single-clip latency)."""
    folder = Path(".avemo") / "trials" / f"{trial.study.study_name}-{trial.number}"
    return train_candidate(config, params, params.train.loop.seed, folder, report)


def train_candidate(config: SearchConfig, params: Params, seed: int, folder: Path, report=None,
                    confirming: bool = False) -> tuple[float, dict[str, Any], dict[str, float | int]]:
    """One configuration trained with one seed: (the selection half's validation UA, the answers on the
    selection half, or on the confirmation half when `confirming`, the model's cost: tuning/cost.py on one
    validation item, a stored 3 s clip; none for a confirmation run, which is no trial).

    The validation items are split once for the study (`confirmation_half`): the loop, the pruner and the
    ranking see only the selection half; the confirmation half answers only after training, for
    `confirm_choice`, so the items that choose a trial never judge it.
    """
    from avemo.data.subsets import confirmation_half
    from avemo.determinism import pick_device, pin_torch
    from avemo.training.recipe import Splits, StageData, build_datasets, fusion_init, model_spec, train_and_answer
    from avemo.tuning.cost import cost

    if params.train.refit:
        raise ValueError("a search ranks its trials on the validation items: train.refit (which trains on them) "
                         "is for final fits only")
    pin_torch(params.train.threads, params.compute.cpu_isa)
    d = config.data
    data = build_datasets(config.family, params, StageData(Path(d["audio"]), d["video"] and Path(d["video"]),
                                                           Path(d["splits"])), class_set(params.labels))
    half = confirmation_half(data.val.items, config.seed)
    selection, confirmation = data.val.restricted(~half), data.val.restricted(half)
    data = Splits(data.train, selection, data.test)
    inits = {k: d.get(k) and Path(d[k]) for k in ("init_audio", "init_video", "init_pretrained")}
    init = fusion_init(params.train.fusion_init, inits, seed) if config.family == "fusion" else (None, None)
    part = confirmation if confirming else selection
    try:
        trained = train_and_answer(model_spec(config.family, params, data), params, data, seed, folder, part,
                                   pick_device(params.train.loop.device), init, on_epoch=report)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    answers = {"items": list(part.items["clip_id"]), "y_true": trained.y_true.tolist(),
               "y_pred": trained.y_pred.tolist(), "classes": part.classes}
    history = trained.history
    value = history.epochs[-1]["val_ua"] if params.train.loop.select == "last" else history.best_score
    # a confirmation run's cost is no trial's
    return value, answers, {} if confirming else cost(trained.model, part[0][:-1])


def confirm_choice(config: SearchConfig, best: dict, hand_set: dict, seeds: tuple[int, ...], margin: float,
                   on_seed=None) -> dict:
    """The best trial's configuration against the hand-set one, each trained again with fresh `seeds`, paired on
    the confirmation half of the validation items: the comparison (stats.compare) that decides the search.

    Fresh seeds and fresh items: the trial that won on the selection half with its one seed carries both
    kinds of luck (the winner's curse); neither is in this comparison.
    """
    from avemo.stats import Predictions, compare

    arms = {}
    for name, overrides in (("best", best), ("hand_set", hand_set)):
        params = config.typed().override({**overrides, f"train.{config.family}.epochs": config.epochs})
        runs = []
        for seed in seeds:
            folder = Path(".avemo") / "trials" / f"confirm-{config.family}-{name}-{seed}"
            runs.append(train_candidate(config, params, seed, folder, confirming=True)[1])
            if on_seed:
                on_seed(name, seed)
        arms[name] = Predictions(runs[0]["items"], runs[0]["y_true"], [r["y_pred"] for r in runs],
                                 [str(s) for s in seeds], runs[0]["classes"])
    result = compare(arms["best"], arms["hand_set"], margin=margin)
    return {"items": arms["best"].items, "seeds": list(seeds), "comparison": result.to_dict(),
            "verdict": result.verdict,
            "ua": {name: [float(v) for v in _per_seed_ua(p)] for name, p in arms.items()}}


def _per_seed_ua(p) -> list[float]:
    from avemo.metrics import classification_metrics

    return [classification_metrics(p.y_true, pred, p.classes)["ua"] for pred in p.y_pred]
