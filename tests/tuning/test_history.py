"""A search's record on constructed trials whose history, ranking and important knob are known."""

from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from avemo.handover import SearchRecord
from avemo.tuning.history import best_after, rank_correlations, search_record
from avemo.tuning.study import judged_from, make_pruner

DISTRIBUTIONS = {"lr": FloatDistribution(0.0, 1.0), "pooling": CategoricalDistribution(["mean", "max"])}


def trial(lr: float, pooling: str, curve: list[float], state: TrialState = TrialState.COMPLETE, **attrs):
    return create_trial(params={"lr": lr, "pooling": pooling}, distributions=DISTRIBUTIONS, state=state,
                        value=curve[-1] if state == TrialState.COMPLETE else None,
                        intermediate_values=dict(enumerate(curve)), user_attrs=attrs)


def constructed_study() -> optuna.Study:
    """Ten completed trials whose final UA is the learning rate (pooling does nothing), one pruned at epoch 1.
    Epoch 0 ranks the trials in the opposite order of the last epoch; epoch 1 in the same order."""
    study = optuna.create_study(direction="maximize")
    lrs = [0.5, 0.9, 0.1, 0.7, 0.3, 0.6, 0.2, 0.8, 0.4, 0.95]
    for k, lr in enumerate(lrs):
        study.add_trial(trial(lr, ["mean", "max"][k % 2], [1 - lr, lr / 2, lr], hand_set=k == 0))
    study.add_trial(trial(0.2, "max", [0.4, 0.05], state=TrialState.PRUNED, pruned_reason="pruned at epoch 1"))
    return study


def test_the_rank_correlation_of_each_epoch_with_the_last():
    study = constructed_study()
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert rank_correlations(complete, 3) == [{"epoch": 0, "rho": -1.0, "trials": 10},
                                              {"epoch": 1, "rho": 1.0, "trials": 10}]
    assert rank_correlations(complete[:2], 3) == []  # two trials rank nothing
    flat = [trial(0.5, "mean", [0.3, 0.3, v]) for v in (0.1, 0.2, 0.3)]
    assert rank_correlations(flat, 3)[0]["rho"] is None  # a constant epoch has no rank


def test_the_best_so_far_after_each_checkpoint_counts_every_trial_started():
    trials = constructed_study().get_trials()
    assert best_after(trials) == [{"trials": 1, "best_trial": 0, "best_value": 0.5},
                                  {"trials": 5, "best_trial": 1, "best_value": 0.9},
                                  {"trials": 10, "best_trial": 9, "best_value": 0.95},
                                  {"trials": 11, "best_trial": 9, "best_value": 0.95}]


def test_the_record_names_the_knob_that_decides_and_keeps_every_trial_with_its_reason():
    record = search_record(constructed_study(), epochs=3, judged_from=1)
    assert list(record["importances"]) == ["lr", "pooling"] and record["importances"]["lr"] > 0.6
    assert record == search_record(constructed_study(), epochs=3, judged_from=1)  # seeded: the same figures
    typed = SearchRecord.parse(record, Path("search.json"))  # what the report reads back, as the tune stage wrote it
    assert typed.ranking.judged_from_epoch == 1 and typed.best_after[-1].best_trial == 9
    rows = record["trials"]
    assert [r["state"] for r in rows] == ["complete"] * 10 + ["pruned"]
    assert rows[10] == {"trial": 10, "state": "pruned", "value": None, "epochs_run": 2, "hand_set": False,
                       "params": {"lr": 0.2, "pooling": "max"}, "reason": "pruned at epoch 1"}
    assert rows[0]["hand_set"] and record["ranking"]["judged_from_epoch"] == 1
    assert search_record(optuna.create_study(), 3, 1)["importances"] == {}


def test_the_judged_epoch_is_where_the_pruner_first_may_stop_a_trial():
    for epochs in (20, 6, 2):
        study = optuna.create_study(direction="maximize", pruner=make_pruner("median", epochs))
        for _ in range(5):  # finished trials far better than the one that follows
            study.add_trial(trial(0.9, "mean", [0.9] * epochs))
        bad = study.ask()
        stopped = None
        for epoch in range(epochs):
            bad.report(0.0, epoch)
            if bad.should_prune():
                stopped = epoch
                break
        assert stopped == judged_from("median", epochs) == max(1, epochs // 3)
    # Hyperband's earliest rung (its first bracket's) is its minimum resource; the pruner is built from it
    assert make_pruner("hyperband", 20)._min_resource == judged_from("hyperband", 20) == 5
    assert judged_from("none", 20) == 19
