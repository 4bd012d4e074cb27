"""Searches on the tiny corpus: trials are calls of the training recipe, tracked, resumable, pruned with a reason,
and the best trial is kept only when fresh seeds on items that did not rank it confirm it."""

import json
import socket
from types import SimpleNamespace

import mlflow
import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from avemo.stages.tune import choose
from avemo.tuning.study import fail_dead_trials, load
from tests.conftest import run_stage

TINY_SPACE = {"train.loop.lr": {"low": 0.001, "high": 0.01, "log": True}, "train.crop_ratio": {"low": 0.0, "high": 0.6}}
CLASSES = ["neutral", "happy", "angry", "sad"]
AUDIO = SimpleNamespace(family="audio")  # what `choose` reads of a search config when confirmation is faked


def tune(params, variant, splits, tmp_path, storage, space=TINY_SPACE, trials=2, epochs=2, **search) -> dict:
    """`avemo tune --family audio` in this process; returns reports/tune/audio.json."""
    params = params.override({"tune.workers": 1, "tune.audio.space": space, "tune.audio.trials": trials,
                              "tune.audio.epochs": epochs, **{f"tune.audio.{k}": v for k, v in search.items()}})
    run_stage(params, "tune", "--family", "audio", "--audio", variant, "--splits", splits, "--stage", "tune_audio",
              "--out", tmp_path / "audio.json", "--metrics", tmp_path / "tune_audio.json", "--figures",
              tmp_path / "figures", "--storage", storage)
    return json.loads((tmp_path / "audio.json").read_text())


def test_a_second_run_adds_only_the_missing_trials_and_reports_to_one_mlflow_parent(tiny_variant, tmp_path, project_dir):
    params, splits = project_dir
    storage = f"journal:{tmp_path / 'journal.log'}"
    first = tune(params, tiny_variant, splits, tmp_path, storage, trials=2)
    again = tune(params, tiny_variant, splits, tmp_path, storage, trials=3)
    assert again["study"] == first["study"]
    study, _ = load(again["study"], storage)
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert again["trials"]["complete"] + again["trials"]["pruned"] == 3 and again["budget"]["trials"] == 3
    assert again["searched_enough"] and not again["time_limit_reached"]
    assert {p.name for p in (tmp_path / "figures").glob("*.png")} == {"history.png", "importances.png",
                                                                      "parallel_coordinate.png"}
    record = json.loads((tmp_path / "figures" / "search.json").read_text())  # the report's record of the search
    assert [r["trial"] for r in record["trials"]] == [0, 1, 2] and record["trials"][0]["hand_set"]
    assert record["best_after"][-1] == {"trials": 3, "best_trial": again["best"]["trial"],
                                        "best_value": again["best"]["val_ua"]}
    assert record["ranking"]["epochs"] == 2 and record["ranking"]["judged_from_epoch"] == 1
    headline = json.loads((tmp_path / "tune_audio.json").read_text())
    assert headline == {"val_ua": round(again["best"]["val_ua"], 4), "complete": again["trials"]["complete"],
                        "pruned": again["trials"]["pruned"]}
    runs = mlflow.MlflowClient().search_runs([mlflow.get_experiment_by_name("avemo-tune").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(c.data.tags["optuna.trial"]) for c in children) == [0, 1, 2]
    assert all(c.data.tags["state"] in ("COMPLETE", "PRUNED") for c in children)
    complete = [c for c in children if c.data.tags["state"] == "COMPLETE"]
    assert all("value_val_ua" in c.data.metrics and "train.audio.lr" in c.data.params for c in complete)
    assert [m.step for m in mlflow.MlflowClient().get_metric_history(complete[0].info.run_id, "val_ua")] == [0, 1]
    assert parent.data.metrics["best_val_ua"] == pytest.approx(again["best"]["val_ua"])
    assert parent.data.tags["optuna.dashboard"] == f"make dashboard STORAGE={tmp_path / 'journal.log'}"

    # The hand-set recipe is trial 0 and every complete trial kept its validation answers for the choice.
    hand_set = study.trials[0]
    assert hand_set.user_attrs["hand_set"] and hand_set.params["train.loop.lr"] == params.train.loop.lr
    answers = hand_set.user_attrs["val_predictions"]
    assert len(answers["items"]) == len(answers["y_true"]) == len(answers["y_pred"]) > 0
    assert again["selection_items"] == len(answers["items"])

    # Each completed trial records what its model costs to serve, in the study and on its run; the report file holds
    # its parameter count and the front and compact pick drawn from it, and no measured latency (which differs
    # between runs and machines, and the training stages depend on that file).
    assert hand_set.user_attrs["parameters"] > 1000 and hand_set.user_attrs["latency_ms"] > 0
    assert complete[0].data.metrics["latency_ms"] > 0 and complete[0].data.metrics["parameters"] > 1000
    assert "latency" not in (tmp_path / "audio.json").read_text()
    listed = {t["trial"]: t for t in again["trial_list"]}
    assert listed[0] == {"trial": 0, "val_ua": hand_set.value, "parameters": hand_set.user_attrs["parameters"]}
    front = [t["trial"] for t in again["front"]]
    assert again["compact"]["trial"] in front and max(t["val_ua"] for t in again["front"]) == again["best"]["val_ua"]
    assert again["compact"]["parameters"] <= listed[again["best"]["trial"]]["parameters"]
    assert again["space"] == TINY_SPACE


def test_a_bad_learning_rate_is_pruned_at_once_with_its_reason(tiny_variant, tmp_path, project_dir):
    params, splits = project_dir
    space = {"train.loop.lr": [1.0e4], "train.loop.clip_grad_norm": [0.0], "train.loop.warmup_epochs": [0]}
    storage = f"journal:{tmp_path / 'j.log'}"
    with pytest.raises(RuntimeError, match="no trial completed"):
        tune(params, tiny_variant, splits, tmp_path, storage, space, trials=1, epochs=8)
    (trial,) = optuna.load_study(study_name=optuna.get_all_study_names(storage=_journal(storage))[0],
                                 storage=_journal(storage)).trials
    assert trial.state == TrialState.PRUNED
    reason = trial.user_attrs["pruned_reason"]
    assert "the training loss is nan" in reason and int(reason.split(":")[0].removeprefix("epoch ")) <= 2
    assert len(trial.intermediate_values) <= 2  # stopped early: it never reported the later epochs


def _journal(storage: str):
    from avemo.tuning.study import open_storage

    return open_storage(storage)


def test_a_configuration_that_cannot_fit_the_input_is_pruned_with_its_reason(tiny_variant, tmp_path, project_dir):
    params, splits = project_dir
    space = {"blocks": [3], "kernel": ["7x7"], "padding": [False], "models.audio.pool": [4]}
    storage = f"journal:{tmp_path / 'j.log'}"
    with pytest.raises(RuntimeError, match="no trial completed"):
        tune(params, tiny_variant, splits, tmp_path, storage, space, trials=1)
    (name,) = optuna.get_all_study_names(storage=_journal(storage))
    (trial,) = optuna.load_study(study_name=name, storage=_journal(storage)).trials
    assert trial.state == TrialState.PRUNED and "shrinks the (64, 300) input" in trial.user_attrs["pruned_reason"]


def test_the_crop_ratio_a_trial_samples_reaches_the_dataset(tiny_variant, tmp_path, project_dir, monkeypatch):
    import pandas as pd

    from avemo.data.datasets import SpectrogramDataset
    from avemo.training import recipe

    params, splits = project_dir
    seen = []
    real_fit = recipe.fit

    def spy(model, family, params, data, *args, **kwargs):
        seen.append((data.train.crop_ratio, data.val.crop_ratio, data.train[0][0]))
        return real_fit(model, family, params, data, *args, **kwargs)

    monkeypatch.setattr(recipe, "fit", spy)
    result = tune(params, tiny_variant, splits, tmp_path, f"journal:{tmp_path / 'j.log'}", {"train.crop_ratio": [0.5]},
                  trials=1)
    assert result["best"]["params"]["train.crop_ratio"] == 0.5
    (train_crop, val_crop, item), = seen
    assert train_crop == val_crop == 0.5
    cropped = SpectrogramDataset(tiny_variant, pd.read_parquet(splits), "train", CLASSES, crop_ratio=0.5,
                                 balance=params.train.balance)
    assert torch.equal(item, cropped[0][0])


def test_a_trial_left_running_by_a_dead_process_fails_and_is_retried(tiny_variant, tmp_path, project_dir):
    """Journal storage has no heartbeat: a worker starting on the machine cleans up after dead ones."""
    params, splits = project_dir
    storage = f"journal:{tmp_path / 'j.log'}"
    result = tune(params, tiny_variant, splits, tmp_path, storage, trials=1)
    study, config = load(result["study"], storage)
    orphan = study.ask({"train.loop.lr": FloatDistribution(0.001, 0.01, log=True)})
    orphan.set_user_attr("worker", f"{socket.gethostname()}:999999999")  # a process that no longer exists
    ended = []

    class Hooks:
        def started(self, *args): ...

        def epoch(self, *args): ...

        def ended(self, trial, state, reason, value):
            ended.append((trial.number, state, reason))

    assert fail_dead_trials(study, storage, config, Hooks()) == [orphan.number]
    trials = study.get_trials(deepcopy=False)
    assert trials[orphan.number].state == TrialState.FAIL
    retry = trials[-1]
    assert retry.state == TrialState.WAITING and retry.system_attrs["failed_trial"] == orphan.number
    assert retry.params == trials[orphan.number].params
    assert ended == [(orphan.number, "FAIL", f"worker {socket.gethostname()}:999999999 died mid-trial")]


def test_the_best_trial_is_kept_only_when_fresh_seeds_on_other_items_confirm_it(monkeypatch):
    """The confirmation decides, not the ranking: constructed confirmations of a clearly better, an equal and a
    barely better configuration; a search below min_complete confirms nothing."""
    from avemo.stats import Predictions, compare
    from avemo.tuning import study as study_module

    truth = np.arange(200) % 4
    wrong = (truth + 1) % 4

    def arm(shares):
        rng = np.random.default_rng(len(shares) * 7 + int(shares[0] * 100))
        return Predictions([f"c{k}" for k in range(200)], truth,
                           [np.where(rng.random(200) < s, truth, wrong) for s in shares], ["101", "102", "103"], CLASSES)

    confirmations = {"clearly": (arm([0.9, 0.88, 0.91]), arm([0.5, 0.52, 0.49])),
                     "equal": (arm([0.7, 0.71, 0.69]), arm([0.7, 0.69, 0.71])),
                     "barely": (arm([0.73, 0.72, 0.74]), arm([0.71, 0.70, 0.72]))}
    calls = []

    def fake_confirm(config, best, hand_set, seeds, margin, on_seed=None):
        calls.append(best["case"])
        result = compare(*confirmations[best["case"]], margin=margin)
        return {"items": confirmations[best["case"]][0].items, "seeds": list(seeds), "comparison": result.to_dict(),
                "verdict": result.verdict}

    monkeypatch.setattr(study_module, "confirm_choice", fake_confirm)
    hand = create_trial(value=0.5, params={"x": 0.0}, distributions={"x": FloatDistribution(0, 10)},
                        user_attrs={"hand_set": True, "overrides": {"case": "hand"}})
    hand.number = 0
    trials = {}
    for number, case in enumerate(("clearly", "equal", "barely"), start=1):
        trials[case] = create_trial(value=0.9, params={"x": float(number)}, distributions={"x": FloatDistribution(0, 10)},
                                    user_attrs={"overrides": {"case": case}})
        trials[case].number = number
    seeds = (101, 102, 103)
    chosen, why, record = choose(trials["clearly"], hand, AUDIO, 0.0, seeds, complete=3, minimum=3)
    assert chosen.number == 1 and record["verdict"] == "better" and "confirmed" in why
    chosen, why, record = choose(trials["equal"], hand, AUDIO, 0.0, seeds, complete=3, minimum=3)
    assert chosen.number == 0 and record["verdict"] == "no difference shown"
    chosen, why, record = choose(trials["barely"], hand, AUDIO, 0.0, seeds, complete=3, minimum=3)
    assert chosen.number == 0 and record["verdict"] == "no difference shown"  # +0.02 with 3 seeds: not shown
    chosen, why, record = choose(trials["clearly"], hand, AUDIO, 0.5, seeds, complete=3, minimum=3)
    assert chosen.number == 0 and record["comparison"]["difference"]["low"] < 0.5  # a margin it cannot clear
    assert calls == ["clearly", "equal", "barely", "clearly"]
    chosen, why, record = choose(trials["clearly"], hand, AUDIO, 0.0, seeds, complete=2, minimum=3)
    assert chosen.number == 0 and "searched too little" in why and record is None and len(calls) == 4
    chosen, why, record = choose(hand, hand, AUDIO, 0.0, seeds, complete=3, minimum=3)
    assert chosen.number == 0 and record is None and len(calls) == 4  # the hand-set won: nothing to confirm


def test_the_confirmation_trains_fresh_seeds_on_the_items_that_ranked_no_trial(tiny_variant, tmp_path, project_dir):
    """Two configurations of a search, each trained with the confirm seeds: answers on the validation items that
    the trials were not ranked on, and the paired comparison of the two."""
    from avemo.tuning.study import confirm_choice

    params, splits = project_dir
    storage = f"journal:{tmp_path / 'c.log'}"
    result = tune(params, tiny_variant, splits, tmp_path, storage, trials=1, min_complete=1)
    study, config = load(result["study"], storage)
    record = confirm_choice(config, {"train.loop.lr": 0.005}, {"train.loop.lr": 0.001}, (11, 12), 0.0)
    ranked = set(study.trials[0].user_attrs["val_predictions"]["items"])
    assert record["seeds"] == [11, 12] and ranked and record["items"]
    assert ranked.isdisjoint(record["items"])  # the items that chose a trial never judge it
    assert len(record["ua"]["best"]) == len(record["ua"]["hand_set"]) == 2
    comparison = record["comparison"]
    assert comparison["parts"]["paired_seeds"] and comparison["parts"]["items"] == len(record["items"])
    assert comparison["difference"]["estimate"] == pytest.approx(np.mean(record["ua"]["best"]) -
                                                                 np.mean(record["ua"]["hand_set"]))
    assert record["verdict"] == comparison["verdict"]
