"""The `tune_<family>` stage: one Optuna study, its workers, its MLflow parent run, its report.

Its first trial is the hand-set recipe of params.yaml (where the space can express it), so
the best trial is never worse than the starting point on the objective. The study's name is a hash of what it searches (space, base params, data, trial epochs), not
of its budget: raising `tune.<family>.trials` and re-running continues the same study and adds
only the missing trials; a killed stage, re-run, keeps every finished trial. Workers are
`avemo tune-worker` processes (one thread each); more can join from other machines.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

import optuna  # noqa: E402
from avemo.reports import write_json  # noqa: E402
from avemo.tracking import CLASSIC_ML, flatten, git_commit, input_hashes, tracking_uri  # noqa: E402
from avemo.training.resume import fingerprint  # noqa: E402
from avemo.tuning.space import apply, knobs_of  # noqa: E402
from avemo.tuning.study import (  # noqa: E402
    SearchConfig,
    load,
    make_pruner,
    open_storage,
    redact,
    work,
)

EXPERIMENT = "avemo-tune"


def search_config(family: str, kind: str, params: dict, data: dict[str, Path | None], stage: str) -> SearchConfig:
    tune = params["tune"]
    fam = tune[family]
    return SearchConfig(family=family, kind=kind, params=params, space=fam["space"], trials=fam["trials"],
                        timeout_s=fam["timeout_s"], epochs=fam["epochs"],
                        data={k: str(v) if v is not None else None for k, v in data.items()}, seed=tune["seed"],
                        pruner=tune["pruner"], threads=tune["threads"], max_retry=tune["max_retry"], stage=stage,
                        heartbeat_s=tune["heartbeat_s"], grace_s=tune["grace_s"])


def study_name(config: SearchConfig) -> str:
    """Named after what is searched, not after the budget: more trials continue the same study."""
    hashes = input_hashes([Path(p) for p in config.data.values() if p])
    key = fingerprint(config.family, config.kind, config.space, config.epochs, config.seed, config.pruner,
                      {k: config.params[k] for k in ("labels", "train", "models")}, hashes)
    return f"avemo-{config.family}-{key[:10]}"


def run_search(config: SearchConfig, storage_url: str, workers: int) -> optuna.Study:
    """Create (or continue) the study, open its MLflow parent run, run the workers, return the study."""
    name = study_name(config)
    storage = open_storage(storage_url, config.heartbeat_s, config.grace_s, config.max_retry)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=config.seed),
                                pruner=make_pruner(config.pruner, config.epochs))
    if not study.trials:  # the hand-set recipe first: the search never ends below its starting point
        knobs = knobs_of(config.params, config.space, config.family)
        if knobs is not None:
            study.enqueue_trial(knobs, user_attrs={"hand_set": True})
    previous = study.user_attrs.get("avemo", {})
    config.parent_run_id, config.experiment_id = _parent_run(name, config, previous.get("parent_run_id"), storage_url)
    study.set_user_attr("avemo", asdict(config))
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    print(f"tune {config.family}: study {name} in {redact(storage_url)}: {done} of {config.trials} trials done, "
          f"{workers} worker(s)", flush=True)
    if workers == 1:
        work(name, storage_url, 0)
    else:
        procs = [subprocess.Popen([sys.executable, "-m", "avemo.cli", "tune-worker", "--study", name,
                                   "--storage", storage_url, "--worker", str(k)]) for k in range(workers)]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise RuntimeError(f"tune {config.family}: worker exit codes {codes}")
    return load(name, storage_url)[0]


def _parent_run(name: str, config: SearchConfig, previous: str | None, storage_url: str) -> tuple[str, str]:
    """The study's MLflow parent run: the one an earlier attempt opened, else a new one."""
    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        Path("mlruns").mkdir(exist_ok=True)
        experiment_id = client.create_experiment(EXPERIMENT, tags=CLASSIC_ML, artifact_location=(
            Path("mlruns") / "artifacts" / EXPERIMENT).resolve().as_uri())
    else:
        experiment_id = experiment.experiment_id
    if previous:
        try:
            client.get_run(previous)
            client.update_run(previous, status="RUNNING")
            return previous, experiment_id
        except mlflow.exceptions.MlflowException:
            pass  # the tracking store was reset: a new parent run for the same study
    run = client.create_run(experiment_id, run_name=f"{config.stage} ({name})", tags={
        "dvc_stage": config.stage, "optuna.study": name, "optuna.storage": redact(storage_url),
        "git_commit": git_commit(), "family": config.family, "optuna.sampler": f"TPE seed {config.seed}"})
    client.log_batch(run.info.run_id, params=[mlflow.entities.Param(k, str(v)[:6000]) for k, v in flatten(
        {"space": config.space, "trials": config.trials, "epochs_per_trial": config.epochs,
         "pruner": config.pruner, "timeout_s": config.timeout_s}).items()])
    return run.info.run_id, experiment_id


def summarise(study: optuna.Study, config: SearchConfig, out_json: Path, figures: Path, min_gain: float = 0.0) -> dict:
    """reports/tune/<family>.json (a DVC metric), the study's plots, and the parent run's final record.

    `best_overrides` (what the *_best stages train) are the best trial's, unless it beats the
    hand-set trial by less than `min_gain` validation UA: then the hand-set params are kept.
    """
    counts = {state.name.lower(): sum(t.state == state for t in study.trials)
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"tune {config.family}: no trial completed ({counts}); see the trials' reasons in MLflow")
    best = study.best_trial
    hand_set = next((t for t in complete if t.user_attrs.get("hand_set")), None)
    chosen, why = best, "the best trial"
    if hand_set is not None and best.value - hand_set.value < min_gain:
        chosen = hand_set
        why = (f"the hand-set params: the best trial gains {best.value - hand_set.value:+.3f} validation UA, "
               f"less than tune.min_gain={min_gain} (within the noise of one validation split)")
    summary = {"study": study.study_name, "best_value_val_ua": best.value, "best_trial": best.number,
               "hand_set_value_val_ua": hand_set.value if hand_set else None, "best_params": best.params,
               "chosen_trial": chosen.number, "chosen": why, "best_overrides": chosen.user_attrs["overrides"],
               "trials": counts,
               "trials_wanted": config.trials, "epochs_per_trial": config.epochs, "sampler_seed": config.seed,
               "pruner": config.pruner, "mlflow_parent_run_id": config.parent_run_id}
    write_json(out_json, summary)
    figures.mkdir(parents=True, exist_ok=True)
    _plots(study, figures)
    client = mlflow.MlflowClient()
    client.log_batch(config.parent_run_id, metrics=[mlflow.entities.Metric(k, float(v), int(time.time() * 1000), 0)
                                                    for k, v in {"best_val_ua": best.value, "best_trial": best.number,
                                                                 **{f"trials_{k}": v for k, v in counts.items()}}.items()])
    client.set_tag(config.parent_run_id, "best_params", str(best.params)[:5000])
    client.set_tag(config.parent_run_id, "chosen", why)
    for png in sorted(figures.glob("*.png")):
        client.log_artifact(config.parent_run_id, str(png), artifact_path="study")
    client.log_artifact(config.parent_run_id, str(out_json), artifact_path="study")
    client.set_terminated(config.parent_run_id)
    return summary


def _plots(study: optuna.Study, folder: Path) -> None:
    """Optimisation history, parameter importances, parallel coordinates (what can be drawn yet)."""
    import warnings

    from optuna.visualization import matplotlib as vis

    drawings = {"history": vis.plot_optimization_history, "importances": vis.plot_param_importances,
                "parallel_coordinate": vis.plot_parallel_coordinate}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        for name, draw in drawings.items():
            try:
                ax = draw(study)
                figure = (ax[0] if hasattr(ax, "__len__") else ax).figure
            except (ValueError, RuntimeError) as exc:  # e.g. importances need two complete trials
                figure, axes = plt.subplots(figsize=(6, 2))
                axes.axis("off")
                axes.text(0.5, 0.5, f"{name}: not drawn yet ({exc})", ha="center", va="center", wrap=True, fontsize=8)
            figure.set_size_inches(9, 5)
            figure.tight_layout()
            figure.savefig(folder / f"{name}.png", dpi=80)
            plt.close(figure)


def best_params(params: dict, best_json: Path) -> dict:
    """params.yaml with a search's best overrides applied (what the `*_best` stages train)."""
    import json

    best = json.loads(Path(best_json).read_text())
    return apply(params, best["best_overrides"])
