"""The accuracy-latency front of constructed trials whose front is known, and the compact pick."""

import numpy as np

from avemo.stats import UNDECIDED, WORSE, Predictions
from avemo.tuning.front import Costed, compact, dominates, pareto_front

CLASSES = ["neutral", "happy", "angry", "sad"]
TRIALS = [Costed(0, 0.70, 10.0, 9000), Costed(1, 0.65, 5.0, 4000), Costed(2, 0.60, 8.0, 6000),
          Costed(3, 0.65, 5.0, 3000), Costed(4, 0.70, 12.0, 12000), Costed(5, 0.50, 2.0, 1000)]


def test_the_front_keeps_undominated_trials_fastest_first_and_both_of_a_tie():
    front = pareto_front(TRIALS)
    # 2 is slower and less accurate than 1; 4 is as accurate as 0 but slower; 1 and 3 tie (the smaller first)
    assert [t.trial for t in front] == [5, 3, 1, 0]
    assert dominates(TRIALS[1], TRIALS[2]) and dominates(TRIALS[0], TRIALS[4])
    assert not dominates(TRIALS[1], TRIALS[3]) and not dominates(TRIALS[3], TRIALS[1])
    assert pareto_front([TRIALS[0]]) == [TRIALS[0]] and pareto_front([]) == []


def answers(right: int, n: int = 200) -> Predictions:
    """A trial's selection-half answers: `right` of n items right (which ones: drawn per trial), the rest off by
    one class."""
    truth = np.arange(n) % 4
    predicted = truth.copy()
    wrong = np.random.default_rng(right).permutation(n)[: n - right]
    predicted[wrong] = (truth[wrong] + 1) % 4
    return Predictions([f"clip{k}" for k in range(n)], truth, [predicted], ["0"], CLASSES)


def test_the_compact_pick_is_the_fastest_front_trial_the_interval_rule_cannot_tell_from_the_best():
    front = pareto_front(TRIALS)
    best = TRIALS[0]
    by_trial = {5: answers(100), 3: answers(176), 1: answers(178), 0: answers(180)}
    pick, verdicts = compact(front, best, by_trial)
    assert verdicts[5].verdict == WORSE  # half right against 90 %: the items tell them apart
    assert verdicts[3].verdict == UNDECIDED and pick.trial == 3  # 4 items fewer: within what the items can tell
    assert verdicts[0].difference.estimate == 0 and verdicts[0].verdict == UNDECIDED


def test_the_best_is_the_pick_when_every_faster_trial_is_worse():
    front = pareto_front(TRIALS)
    by_trial = {5: answers(60), 3: answers(80), 1: answers(90), 0: answers(180)}
    pick, verdicts = compact(front, TRIALS[0], by_trial)
    assert pick == TRIALS[0] and all(verdicts[t].verdict == WORSE for t in (5, 3, 1))
