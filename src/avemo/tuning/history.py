"""What a search did, for its report: the history, the importances, and whether short runs rank as long ones.

Three questions a reader of a search asks. How the best value grew with the trials (did more trials buy
anything?). Which knobs mattered (Optuna's fANOVA importances, seeded, so the same trials give the same
figures). And whether the epochs the pruner judges at rank the trials as their last epoch does: the
Spearman correlation, over the completed trials, between the validation UA at each epoch and at the last
one; a low one says the pruner stops trials on noise, a high one at the judged epoch says the budget can
be cut there.
"""

from __future__ import annotations

import warnings

import optuna
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import spearmanr

#: the best-so-far value is reported after these many trials (and after the last)
CHECKPOINTS = (1, 5, 10, 20, 30, 40, 60, 100, 200)


def search_record(study: optuna.Study, epochs: int, judged_from: int) -> dict:
    """The record of one search: trial by trial, the best value so far, the importances and the rank
    correlations of each epoch with the last (`judged_from`: the first epoch the pruner may stop a trial at)."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return {"trials": [_trial_row(t) for t in trials],
            "best_after": best_after(trials),
            "importances": importances(study, complete),
            "ranking": {"judged_from_epoch": judged_from, "epochs": epochs,
                        "by_epoch": rank_correlations(complete, epochs)}}


def _trial_row(t: FrozenTrial) -> dict:
    reason = t.user_attrs.get("pruned_reason") or t.user_attrs.get("fail_reason") or ""
    return {"trial": t.number, "state": t.state.name.lower(), "value": t.value,
            "epochs_run": len(t.intermediate_values), "hand_set": bool(t.user_attrs.get("hand_set")),
            "params": t.params, "reason": reason}


def best_after(trials: list[FrozenTrial]) -> list[dict]:
    """The best completed value after the first n trials (counting every trial started), at CHECKPOINTS."""
    best, rows = None, []
    marks = {n for n in CHECKPOINTS if n < len(trials)} | {len(trials)}
    for n, t in enumerate(trials, start=1):
        if t.state == TrialState.COMPLETE and (best is None or t.value > best[1]):
            best = (t.number, t.value)
        if n in marks and best is not None:
            rows.append({"trials": n, "best_trial": best[0], "best_value": best[1]})
    return rows


def importances(study: optuna.Study, complete: list[FrozenTrial]) -> dict[str, float]:
    """fANOVA importances over the completed trials (seed 0), largest first; empty below 3 completed trials or
    when no parameter varied."""
    if len(complete) < 3:
        return {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (ValueError, RuntimeError):
            return {}
    return {k: round(float(v), 4) for k, v in found.items()}


def rank_correlations(complete: list[FrozenTrial], epochs: int) -> list[dict]:
    """Spearman's rho between each epoch's validation UA and the last epoch's, over the completed trials."""
    last = epochs - 1
    rows = []
    for epoch in range(epochs - 1):
        pairs = [(t.intermediate_values[epoch], t.intermediate_values[last]) for t in complete
                 if epoch in t.intermediate_values and last in t.intermediate_values]
        if len(pairs) < 3:
            continue
        early, final = zip(*pairs)
        rho = spearmanr(early, final).statistic if len(set(early)) > 1 and len(set(final)) > 1 else float("nan")
        rows.append({"epoch": epoch, "rho": None if rho != rho else round(float(rho), 3), "trials": len(pairs)})
    return rows
