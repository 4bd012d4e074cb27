"""`tune_<family>`: one Optuna search, its MLflow parent run, and which params the final model trains.

The method: the first trial is the hand-set recipe of params.yaml (where the space can express it),
so the search never ends below its starting point; TPE samples the rest, the pruner stops trials
that trail, every trial is ranked on the selection half of the validation items. The budget is a
number of trials of a number of epochs, the same on any corpus and machine (a time limit, where set,
is reported as such). What chose the best trial never judges it: the `*_best` stages train it only
if its configuration, trained again with fresh seeds (`tune.confirm_seeds`) beside the hand-set one,
beats it on the confirmation half of the validation items (never used to rank) by the project's
interval rule (stats.py) above `tune.min_gain`; a search that completed fewer than `min_complete`
trials says that it searched too little. The study's name is a hash of what it
searches, not of its budget: raising `trials` and re-running adds only the missing trials.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from avemo.params import Params
from avemo.stages import options

EXPERIMENT = "avemo-tune"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", choices=["audio", "fusion"], required=True,
                   help="which search: the audio model's or the fusion model's (tune.<family>)")
    options.data(p, video="video folder (fusion)")
    options.stage(p)
    p.add_argument("--out", type=Path, required=True, help="reports/tune/<family>.json: the choice and the counts")
    p.add_argument("--metrics", type=Path, required=True, help="headline: best validation UA, trials done (DVC metrics)")
    p.add_argument("--compact-out", type=Path,
                   help="also write the compact pick as a choice (`chosen`) a training stage's --best reads")
    p.add_argument("--figures", type=Path, required=True, help="folder for the study's plots")
    options.best(p, "--base-best", "start from the params another search chose")
    options.branch_inits(p)
    p.add_argument("--storage", help="Optuna storage (default tune.storage): journal:<file>, sqlite:///..., postgresql://...")
    p.add_argument("--trials", type=int, help="trials wanted (default tune.<family>.trials)")
    p.add_argument("--workers", type=int, help="local worker processes (default tune.workers; 0: only remote ones)")


def run(args: argparse.Namespace, params: Params) -> None:
    from avemo.stages.frame import Frame, searched
    from avemo.stages.show import console
    from avemo.tuning.study import redact

    params = searched(params, args.base_best, args.set)
    if args.trials is not None:
        params = params.override({f"tune.{args.family}.trials": args.trials})
    data = {"audio": args.audio, "video": args.video, "splits": args.splits, "init_audio": args.init_audio,
            "init_video": args.init_video, "init_pretrained": args.init_pretrained}
    frame = Frame(args.stage, params, data.values())
    config = search_config(args.family, params, data, args.stage)
    storage = args.storage or params.tune.storage
    workers = params.tune.workers if args.workers is None else args.workers
    started = time.time()
    study = run_search(config, frame, storage, workers)
    summary = summarise(study, config, params.tune.min_gain, params.tune.confirm_seeds)
    write_outputs(summary, study, config, args, time.time() - started)
    console.print(f"tune {args.family}: study {study.study_name} in {redact(storage)}: {summary['trials']}; "
                  f"best validation UA {summary['best']['val_ua']:.3f} (trial {summary['best']['trial']}); "
                  f"the *_best stage trains {summary['chosen']['why']}", markup=False)


def search_config(family: str, params: Params, data: dict, stage: str):
    from avemo.tuning.study import SearchConfig

    tune, search = params.tune, getattr(params.tune, family)
    return SearchConfig(family=family, params=params.model_dump(mode="json"), space=search.space,
                        trials=search.trials, epochs=search.epochs, timeout_s=search.timeout_s,
                        min_complete=search.min_complete,
                        data={k: str(v) if v is not None else None for k, v in data.items()}, seed=tune.seed,
                        pruner=tune.pruner, max_retry=tune.max_retry, stage=stage, heartbeat_s=tune.heartbeat_s,
                        grace_s=tune.grace_s)


def study_name(config, frame) -> str:
    """Named after what is searched, not after the budget: more trials continue the same study. Another stage's
    search (the study's tune_<family>_study) is its own study even over the same space and epochs, with its own
    parent run; the default stage's key is left as it was, so its studies keep their names."""
    from avemo.tracking import fingerprint

    p = config.params
    own = () if config.stage == f"tune_{config.family}" else (config.stage,)
    key = fingerprint(config.family, config.space, config.epochs, config.seed, config.pruner,
                      {k: p[k] for k in ("labels", "train", "models")}, frame.hashes, *own)
    return f"avemo-{config.family}-{key[:10]}"


def run_search(config, frame, storage_url: str, workers: int):
    """Create (or continue) the study, open its MLflow parent run, run the workers, return the study."""
    import warnings
    from dataclasses import asdict

    import optuna
    from optuna.trial import TrialState

    from avemo.trial_runs import TrialRuns
    from avemo.tuning.space import knobs_of
    from avemo.tuning.study import make_pruner, open_storage, redact, work

    name = study_name(config, frame)
    study = optuna.create_study(study_name=name, direction="maximize", load_if_exists=True,
                                storage=open_storage(storage_url, config.heartbeat_s, config.grace_s, config.max_retry),
                                sampler=optuna.samplers.TPESampler(seed=config.seed),
                                pruner=make_pruner(config.pruner, config.epochs))
    with warnings.catch_warnings():  # experimental in Optuna 5, stable in use: optuna-dashboard's objective label
        warnings.simplefilter("ignore")
        study.set_metric_names(["validation UA (selection half)"])
    if not study.trials:  # the hand-set recipe first: the search never ends below its starting point
        knobs = knobs_of(config.typed(), config.space, config.family)
        if knobs is not None:
            study.enqueue_trial(knobs, user_attrs={"hand_set": True})
    previous = study.user_attrs.get("avemo", {}).get("tracking", {})
    config.tracking = parent_run(name, config, frame, previous.get("parent_run_id"), storage_url)
    study.set_user_attr("avemo", asdict(config))
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    print(f"tune {config.family}: study {name} in {redact(storage_url)}: {done} of {config.trials} trials done, "
          f"{workers} local worker(s)", flush=True)
    if workers == 1:
        work(name, storage_url, 0, TrialRuns())
    elif workers > 1:
        procs = [subprocess.Popen([sys.executable, "-m", "avemo.cli", "tune-worker", "--study", name,
                                   "--storage", storage_url, "--worker", str(k)]) for k in range(workers)]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise RuntimeError(f"tune {config.family}: worker exit codes {codes}")
    return optuna.load_study(study_name=name, storage=open_storage(storage_url))


def parent_run(name: str, config, frame, previous: str | None, storage_url: str) -> dict:
    """The study's MLflow parent run: the one an earlier attempt opened, else a new one."""
    import mlflow

    from avemo.tracking import flatten, use_experiment
    from avemo.tuning.study import redact

    experiment_id = use_experiment("tune")
    client = mlflow.MlflowClient()
    if previous:
        try:
            client.get_run(previous)
            client.update_run(previous, status="RUNNING")
            return {"parent_run_id": previous, "experiment_id": experiment_id}
        except mlflow.exceptions.MlflowException:
            pass  # the tracking store was reset: a new parent run for the same study
    run = client.create_run(experiment_id, run_name=f"{config.stage} ({name})", tags={
        **frame.lineage(), "optuna.study": name, "optuna.storage": redact(storage_url), "family": config.family,
        "optuna.sampler": f"TPE seed {config.seed}", **dashboard_tags(name, storage_url)})
    client.log_batch(run.info.run_id, params=[mlflow.entities.Param(k, str(v)[:6000]) for k, v in flatten(
        {"space": config.space, "trials": config.trials, "epochs_per_trial": config.epochs, "pruner": config.pruner,
         "timeout_s": config.timeout_s}).items()])
    return {"parent_run_id": run.info.run_id, "experiment_id": experiment_id}


def dashboard_tags(name: str, storage_url: str) -> dict[str, str]:
    """How to open the study in optuna-dashboard, on the parent run (a tag, and the run page's description).

    `make dashboard` runs in the project root, where a relative journal path points; a database URL is
    shown without its password, which the user puts back.
    """
    from avemo.tuning.study import redact

    command = f"make dashboard STORAGE={redact(storage_url.removeprefix('journal:'))}"
    note = (f"Optuna study `{name}`: `{command}`, then http://127.0.0.1:8080 (optuna-dashboard: history, "
            "importances, every trial).")
    return {"optuna.dashboard": command, "mlflow.note.content": note}


def summarise(study, config, min_gain: float, confirm_seeds: tuple[int, ...]) -> dict:
    """The trial counts, the best and the hand-set trials, and which one the `*_best` stages train, and why.

    The training stages depend on this file, so it holds what the search decided and nothing that
    differs from one run of it to the next (its time, its MLflow run and its trials' measured latencies are
    on that run and its trials' runs).
    """
    from optuna.trial import TrialState

    counts = {state.name.lower(): sum(t.state == state for t in study.trials)
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"tune {config.family}: no trial completed ({counts}); see the trials' reasons in MLflow")
    best = study.best_trial
    hand_set = next((t for t in complete if t.user_attrs.get("hand_set")), None)
    minimum = config.min_complete
    chosen, why, confirmation = choose(best, hand_set, config, min_gain, confirm_seeds, len(complete), minimum)
    limit_hit = config.timeout_s is not None and counts["complete"] + counts["pruned"] < config.trials
    return {"study": study.study_name, "stage": config.stage,
            "budget": {"trials": config.trials, "epochs_per_trial": config.epochs, "timeout_s": config.timeout_s,
                       "min_complete": minimum},
            "trials": counts, "time_limit_reached": limit_hit, "searched_enough": len(complete) >= minimum,
            "selection_items": len(best.user_attrs["val_predictions"]["items"]),
            "best": {"trial": best.number, "val_ua": best.value, "params": best.params},
            "hand_set": {"trial": hand_set.number, "val_ua": hand_set.value} if hand_set else None,
            "confirmation": confirmation,
            "chosen": {"trial": chosen.number, "overrides": chosen.user_attrs["overrides"], "why": why},
            "sampler_seed": config.seed, "pruner": config.pruner, "space": config.space,
            **cost_front(complete, best)}


def cost_front(complete: list, best) -> dict:
    """The completed trials with their parameter counts, the accuracy-size front (validation UA up, parameter count
    down, smallest first, each compared with the best on the selection half) and the compact pick, the smallest front
    trial the interval rule cannot tell from the best (tuning/front.py). Trials without a parameter count (run before
    it was recorded) stand in the list without one and on no front.

    The front and the pick are on parameter count because a measured latency would make this output, which the
    training stages depend on, differ between runs and machines. Latency is measured and recorded beside it, not
    here: each trial's `latency_ms` user attr in the study and metric on its MLflow run (tuning/cost.py).
    """
    from avemo.stats import Predictions
    from avemo.tuning.front import Costed, compact, pareto_front

    def costed(t) -> Costed | None:
        a = t.user_attrs
        return Costed(t.number, t.value, a["parameters"]) if "parameters" in a else None

    listed = [{"trial": t.number, "val_ua": t.value, "parameters": t.user_attrs.get("parameters")} for t in complete]
    points = [c for t in complete if (c := costed(t))]
    if costed(best) is None:
        return {"trial_list": listed, "front": [], "compact": None}
    answers = {t.number: Predictions(a["items"], a["y_true"], [a["y_pred"]], ["trial"], a["classes"])
               for t in complete if (a := t.user_attrs.get("val_predictions"))}
    front = pareto_front(points)
    pick, verdicts = compact(front, costed(best), answers)
    by_number = {t.number: t for t in complete}
    return {"trial_list": listed,
            "front": [{**t.to_dict(), "vs_best": verdicts[t.trial].to_dict()} for t in front],
            "compact": {**pick.to_dict(), "overrides": by_number[pick.trial].user_attrs["overrides"],
                        "why": (f"the smallest trial of the front (fewest parameters) whose selection-half answers "
                                f"are not worse than the best trial's ({best.number}): "
                                f"{verdicts[pick.trial].verdict}")}}


def choose(best, hand_set, config, min_gain: float, seeds: tuple[int, ...], complete: int, minimum: int):
    """(the trial the `*_best` stages train, why, the confirmation record or None).

    The best trial is kept only if the confirmation (fresh seeds, the items that did not rank it) finds its
    configuration better than the hand-set one by the interval rule, above `min_gain`.
    """
    from avemo.stats import BETTER
    from avemo.tuning.study import confirm_choice

    if hand_set is None or best.number == hand_set.number:
        return best, "the best trial" + (" (the hand-set params)" if hand_set else ""), None
    if complete < minimum:
        return hand_set, (f"the hand-set params: the search searched too little ({complete} completed trials, "
                          f"fewer than min_complete={minimum}), so nothing was chosen"), None
    print(f"tune {config.family}: trial {best.number} ranked best; confirming it against the hand-set params with "
          f"seeds {list(seeds)} on the confirmation half of the validation items", flush=True)
    confirmation = confirm_choice(config, best.user_attrs["overrides"], hand_set.user_attrs["overrides"], seeds,
                                  min_gain, on_seed=lambda arm, seed: print(f"  confirm {arm} seed {seed} done",
                                                                            flush=True))
    d = confirmation["comparison"]["difference"]
    how = (f"{d['estimate']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] (paired, 95 % interval over the "
           f"{len(confirmation['items'])} confirmation items and seeds {list(seeds)}, which ranked no trial)")
    if confirmation["verdict"] == BETTER:
        return best, (f"the best trial ({best.number}), confirmed: its configuration's gain over the hand-set "
                      f"params is {how}"), confirmation
    return hand_set, (f"the hand-set params: the best trial's ({best.number}) gain over them, confirmed with fresh "
                      f"seeds, is {how}: {confirmation['verdict']}, not above tune.min_gain={min_gain}"), confirmation


def write_outputs(summary: dict, study, config, args: argparse.Namespace, seconds: float) -> None:
    """reports/tune/<family>.json, the headline metrics, the study's plots and record (`<figures>/search.json`:
    history, importances, rank correlations; not a dep of any training stage), and the parent run's record."""
    import mlflow

    from avemo.handover import SearchChoice, SearchRecord, SearchSummary
    from avemo.reports import write_json
    from avemo.tuning.history import search_record
    from avemo.tuning.study import judged_from

    write_json(args.out, SearchSummary.checked(summary, args.out))
    if args.compact_out:
        pick = summary["compact"] or {**summary["chosen"],
                                      "why": "no trial recorded its parameter count: the chosen trial"}
        compact = {"study": summary["study"], "chosen": {k: pick[k] for k in ("trial", "overrides", "why")}}
        write_json(args.compact_out, SearchChoice.checked(compact, args.compact_out))
    write_json(args.metrics, {"val_ua": round(summary["best"]["val_ua"], 4), "complete": summary["trials"]["complete"],
                              "pruned": summary["trials"]["pruned"]})
    args.figures.mkdir(parents=True, exist_ok=True)
    draw_study(study, args.figures)
    record = args.figures / "search.json"
    write_json(record, SearchRecord.checked(search_record(study, config.epochs, judged_from(config.pruner,
                                                                                          config.epochs)), record))
    run_id = config.tracking.get("parent_run_id")
    if not run_id:
        return
    client = mlflow.MlflowClient()
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, float(v), now, 0) for k, v in {
        "best_val_ua": summary["best"]["val_ua"], "best_trial": summary["best"]["trial"], "search_seconds": seconds,
        **{f"trials_{k}": v for k, v in summary["trials"].items()}}.items()])
    client.set_tag(run_id, "best_params", str(summary["best"]["params"])[:5000])
    client.set_tag(run_id, "chosen", summary["chosen"]["why"][:5000])
    for png in sorted(args.figures.glob("*.png")):
        client.log_artifact(run_id, str(png), artifact_path="study")
    client.log_artifact(run_id, str(args.out), artifact_path="study")
    client.set_terminated(run_id)


def draw_study(study, folder: Path) -> None:
    """Optimisation history, parameter importances, parallel coordinates (what can be drawn yet)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
