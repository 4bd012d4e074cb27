"""Intervals and verdicts on constructed predictions: a known difference is found, no difference is never called a
win, the interval counts both the test items and the seeds, and an open verdict says what would settle it."""

import numpy as np
import pytest

from avemo.stats import (
    BETTER,
    UNDECIDED,
    WORSE,
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


def test_no_difference_is_not_called_a_win_and_the_verdict_says_what_would_settle_it():
    truth = np.arange(100) % 4
    wins = sum(compare(answers(100, 0.7, seed=s, truth=truth), answers(100, 0.7, seed=100 + s, truth=truth)).verdict
               == BETTER for s in range(20))
    assert wins <= 2  # equal models: a 95 % interval excludes 0 about once in twenty, by chance, in either direction
    same = compare(answers(100, 0.7, seed=5, truth=truth), answers(100, 0.7, seed=5, truth=truth))
    assert same.verdict == UNDECIDED and same.difference.estimate == 0
    small = compare(answers(100, [0.74, 0.70, 0.78], seed=7, truth=truth),
                    answers(100, [0.70, 0.66, 0.69], seed=8, truth=truth))
    if small.verdict == UNDECIDED:
        assert small.seeds_needed or "test items" in small.note


def test_an_open_verdict_says_why_no_seed_count_is_given():
    truth = np.arange(40) % 4
    one_seed = compare(answers(40, [0.75], seed=1, truth=truth), answers(40, [0.70], seed=2, truth=truth))
    assert one_seed.verdict == UNDECIDED and one_seed.seeds_needed is None
    assert one_seed.note.startswith("one seed per arm")
    same = compare(answers(40, 0.7, seed=5, truth=truth), answers(40, 0.7, seed=5, truth=truth), margin=0.01)
    assert same.verdict == UNDECIDED and same.note.startswith("the difference is within the margin")


def test_pairing_uses_only_the_items_both_answered():
    a = answers(80, 0.8, seed=1)
    b = answers(80, 0.5, seed=2).restricted([f"clip{k}" for k in range(40, 80)])
    result = compare(a, b)
    assert result.difference.estimate == pytest.approx(figure(a.restricted(b.items)).estimate - figure(b).estimate)
    with pytest.raises(ValueError, match="share no test item"):
        compare(a.restricted(["clip0"]), b)


def test_leave_one_session_out_is_a_mean_over_folds_with_a_t_interval():
    folds = [0.60, 0.70, 0.65, 0.75, 0.72]
    interval = folds_figure(folds)
    assert interval.estimate == pytest.approx(np.mean(folds))
    half = 2.776 * np.std(folds, ddof=1) / np.sqrt(5)  # t(0.975, 4 df)
    assert interval.high - interval.estimate == pytest.approx(half, rel=1e-3)
    assert compare_folds([f + 0.1 for f in folds], folds).verdict == BETTER
    assert compare_folds([0.6, 0.7, 0.6, 0.7, 0.6], [0.7, 0.6, 0.7, 0.6, 0.65]).verdict == UNDECIDED
