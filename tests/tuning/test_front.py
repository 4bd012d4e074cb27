"""The accuracy-size front (validation UA up, parameter count down) of constructed trials whose front is known, and
the compact pick: both computed from what the search computed, never from a measured latency."""

import dataclasses

import numpy as np

from avemo.stats import UNDECIDED, WORSE, Predictions
from avemo.tuning.front import Costed, compact, dominates, pareto_front

CLASSES = ["neutral", "happy", "angry", "sad"]
TRIALS = [Costed(0, 0.70, 9000), Costed(1, 0.65, 4000), Costed(2, 0.60, 6000), Costed(3, 0.65, 4000),
          Costed(4, 0.70, 12000), Costed(5, 0.50, 1000), Costed(6, 0.55, 4000)]


def test_the_front_keeps_undominated_trials_smallest_first_and_both_of_a_tie():
    front = pareto_front(TRIALS)
    # 2 is larger and less accurate than 1; 4 is as accurate as 0 but larger; 6 is as small as 1 but less accurate;
    # 1 and 3 tie on both axes: both stand, the earlier first
    assert [t.trial for t in front] == [5, 1, 3, 0]
    assert dominates(TRIALS[1], TRIALS[2]) and dominates(TRIALS[0], TRIALS[4]) and dominates(TRIALS[1], TRIALS[6])
    assert not dominates(TRIALS[1], TRIALS[3]) and not dominates(TRIALS[3], TRIALS[1])
    assert not dominates(TRIALS[5], TRIALS[0]) and not dominates(TRIALS[0], TRIALS[5])  # each wins one axis
    assert pareto_front([TRIALS[0]]) == [TRIALS[0]] and pareto_front([]) == []
    assert pareto_front(TRIALS[::-1]) == front  # the same front, in the same order, whatever order the trials came in


def test_a_trial_holds_no_latency():
    assert [f.name for f in dataclasses.fields(Costed)] == ["trial", "val_ua", "parameters"]
    assert TRIALS[0].to_dict() == {"trial": 0, "val_ua": 0.70, "parameters": 9000}


def answers(right: int, n: int = 200) -> Predictions:
    """A trial's selection-half answers: `right` of n items right (which ones: drawn per trial), the rest off by
    one class."""
    truth = np.arange(n) % 4
    predicted = truth.copy()
    wrong = np.random.default_rng(right).permutation(n)[: n - right]
    predicted[wrong] = (truth[wrong] + 1) % 4
    return Predictions([f"clip{k}" for k in range(n)], truth, [predicted], ["0"], CLASSES)


def test_the_compact_pick_is_the_smallest_front_trial_the_interval_rule_cannot_tell_from_the_best():
    front = pareto_front(TRIALS)
    best = TRIALS[0]
    by_trial = {5: answers(100), 1: answers(176), 3: answers(178), 0: answers(180)}
    pick, verdicts = compact(front, best, by_trial)
    assert verdicts[5].verdict == WORSE  # half right against 90 %: the items tell them apart
    assert verdicts[1].verdict == UNDECIDED and pick.trial == 1  # 4 items fewer: within what the items can tell
    assert verdicts[0].difference.estimate == 0 and verdicts[0].verdict == UNDECIDED
    assert set(verdicts) == {5, 1, 3, 0}


def test_the_best_is_the_pick_when_every_smaller_trial_is_worse():
    front = pareto_front(TRIALS)
    by_trial = {5: answers(60), 1: answers(80), 3: answers(90), 0: answers(180)}
    pick, verdicts = compact(front, TRIALS[0], by_trial)
    assert pick == TRIALS[0] and all(verdicts[t].verdict == WORSE for t in (5, 1, 3))


def test_a_smaller_trial_as_accurate_as_the_best_replaces_it_on_the_front_and_is_the_pick():
    best, smaller = Costed(0, 0.70, 9000), Costed(1, 0.70, 5000)
    front = pareto_front([best, smaller])
    assert front == [smaller]
    pick, verdicts = compact(front, best, {0: answers(140), 1: answers(140)})
    assert pick == smaller and verdicts[1].difference.estimate == 0
