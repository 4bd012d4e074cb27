"""Intervals and verdicts on constructed predictions: a known difference is found, no difference is never called a
win, the interval counts the test items and the seeds once each, and arms that are not a pair are refused."""

import numpy as np
import pytest

from avemo.stats import (
    BETTER,
    UNDECIDED,
    WORSE,
    NotAPair,
    Predictions,
    compare,
    compare_folds,
    figure,
    folds_figure,
    scores,
)

CLASSES = ["neutral", "happy", "angry", "sad"]


def answers(n: int, right: float | list[float], seed: int = 0, truth: np.ndarray | None = None) -> Predictions:
    """Each seed right on about `right` of the items (a list: one share per seed), wrong the next class otherwise."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 4 if truth is None else truth
    shares = right if isinstance(right, list) else [right] * 3
    rows = [np.where(rng.random(n) < share, truth, (truth + 1) % 4) for share in shares]
    return Predictions([f"clip{k}" for k in range(n)], truth, rows, [str(s) for s in range(len(rows))], CLASSES)


@pytest.mark.parametrize("classes_in_test", [4, 3])
def test_scores_equal_the_metrics_on_unit_weights(classes_in_test):
    """Also when a class is absent from the test items (a tiny split): both average over the classes present."""
    from avemo.metrics import classification_metrics

    p = answers(40, 0.6, seed=3, truth=np.arange(40) % classes_in_test)
    expected = [classification_metrics(p.y_true, pred, CLASSES) for pred in p.y_pred]
    for metric, key in (("ua", "ua"), ("wa", "wa"), ("f1", "f1_macro")):
        assert scores(p.y_true, p.y_pred, 4, np.ones((1, 40)), metric)[0] == pytest.approx([e[key] for e in expected])


def test_a_figure_is_the_mean_over_seeds_inside_its_interval_and_seeds_widen_it():
    steady = answers(200, [0.7, 0.7, 0.7], seed=1)
    shaky = answers(200, [0.55, 0.7, 0.85], seed=1)
    a, b = figure(steady), figure(shaky)
    per_seed = scores(steady.y_true, steady.y_pred, 4, np.ones((1, 200)), "ua")[0]
    assert a.estimate == pytest.approx(per_seed.mean()) and a.low < a.estimate < a.high
    assert (b.high - b.low) > (a.high - a.low)  # the seeds' spread counts
    assert figure(steady) == a  # seeded: the same interval every time


def test_a_known_difference_is_found_and_its_direction_named():
    truth = np.arange(300) % 4
    good, bad = answers(300, 0.85, seed=1, truth=truth), answers(300, 0.55, seed=2, truth=truth)
    better = compare(good, bad)
    assert better.verdict == BETTER and better.difference.low > 0.15 and better.difference.estimate == pytest.approx(
        figure(good).estimate - figure(bad).estimate)
    assert compare(bad, good).verdict == WORSE
    assert compare(good, bad, margin=0.5).verdict == UNDECIDED  # a margin the interval cannot clear


def test_no_difference_is_not_called_a_win():
    truth = np.arange(100) % 4
    wins = sum(compare(answers(100, 0.7, seed=s, truth=truth), answers(100, 0.7, seed=100 + s, truth=truth)).verdict
               == BETTER for s in range(20))
    assert wins <= 2  # equal models: a 95 % interval excludes 0 about once in twenty, by chance, in either direction
    same = compare(answers(100, 0.7, seed=5, truth=truth), answers(100, 0.7, seed=5, truth=truth))
    assert same.verdict == UNDECIDED and same.difference.estimate == 0


def test_seeds_that_disagree_widen_the_interval_with_t_tails_and_seeds_that_agree_do_not():
    """Three seeds spread by 0.15 leave a gain of 0.10 open; the same gain with seeds that agree is found."""
    truth = np.arange(400) % 4
    shaky = compare(answers(400, [0.90, 0.65, 0.80], seed=1, truth=truth),
                    answers(400, [0.70, 0.75, 0.60], seed=2, truth=truth))
    steady = compare(answers(400, [0.78, 0.78, 0.78], seed=1, truth=truth),
                     answers(400, [0.68, 0.68, 0.68], seed=2, truth=truth))
    assert shaky.verdict == UNDECIDED and steady.verdict == BETTER
    d = shaky.difference
    per_seed = np.array(shaky.per_seed)
    t2 = 4.303  # t(0.975, 2 df): three per-seed differences
    # the seeds' half-width alone is t(2) x their sd / sqrt(3): the interval is at least that wide on each side
    assert d.high - d.estimate >= t2 * per_seed.std(ddof=1) / np.sqrt(3) - 1e-9
    assert shaky.parts["seeds_t"] == [pytest.approx(t2, abs=1e-3)] and shaky.parts["paired_seeds"]


def test_each_source_of_noise_is_counted_once():
    """Seeds answering independently on the same items: all their item noise is their own, so the items' part
    (what two seeds share) is near zero and the seeds' spread carries it; one seed has it all in the items' part."""
    p = answers(400, [0.7, 0.7, 0.7], seed=3)
    one = Predictions(p.items, p.y_true, p.y_pred[:1], p.seeds[:1], p.classes)
    many = compare(p, answers(400, [0.7, 0.7, 0.7], seed=4))
    single = compare(one, Predictions(p.items, p.y_true, answers(400, [0.7], seed=4).y_pred, ["0"], p.classes))
    assert many.parts["items_se"] < 0.3 * many.parts["seeds_se"]
    assert single.parts["seeds_se"] == 0 and single.parts["items_se"] > 0.02
    assert single.note.startswith("one seed per arm")


def test_a_comparison_refuses_arms_that_are_not_a_pair():
    a = answers(80, 0.8, seed=1)
    with pytest.raises(NotAPair, match="answered other items"):
        compare(a, answers(80, 0.5, seed=2).restricted([f"clip{k}" for k in range(40, 80)]))
    other_truth = answers(80, 0.5, seed=2, truth=(np.arange(80) + 1) % 4)
    with pytest.raises(NotAPair, match="true class of 80 item"):
        compare(a, other_truth)
    three = answers(80, 0.5, seed=2)
    three.classes = ["neutral", "angry", "sad"]
    with pytest.raises(NotAPair, match="other class sets"):
        compare(a, three)
    shuffled = a.restricted(list(reversed(a.items)))  # the same answers in another order: a pair
    assert compare(a, shuffled).difference.estimate == pytest.approx(0)
    assert compare(a, answers(40, 0.5, seed=2), paired=False).parts["items"] == 80  # other test sets, said unpaired


def test_leave_one_session_out_is_a_mean_over_folds_with_a_t_interval():
    folds = [0.60, 0.70, 0.65, 0.75, 0.72]
    interval = folds_figure(folds)
    assert interval.estimate == pytest.approx(np.mean(folds))
    half = 2.776 * np.std(folds, ddof=1) / np.sqrt(5)  # t(0.975, 4 df)
    assert interval.high - interval.estimate == pytest.approx(half, rel=1e-3)
    assert compare_folds([f + 0.1 for f in folds], folds).verdict == BETTER
    assert compare_folds([0.6, 0.7, 0.6, 0.7, 0.6], [0.7, 0.6, 0.7, 0.6, 0.65]).verdict == UNDECIDED
