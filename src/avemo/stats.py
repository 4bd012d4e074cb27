"""The intervals every figure and every verdict comes from.

On a test set of a hundred clips one seed's UA moves by points, so a figure is a mean with a 95 %
interval that counts both sources of noise: a hierarchical bootstrap resamples the test items
(with replacement, the same draw for every seed) and the seeds (with replacement). A comparison
is a paired difference on the same items (and the same seeds where both arms trained with them),
bootstrapped the same way, and its verdict word comes from the interval alone: "better" when
it lies above the margin, "worse" when it lies below minus the margin, "no difference shown"
otherwise. Across leave-one-session-out folds the figure is the mean over folds and its
interval a t-interval over the per-fold values, as the field reports LOSO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

LEVEL = 0.95
REPLICATES = 2000
BETTER, WORSE, UNDECIDED = "better", "worse", "no difference shown"


@dataclass
class Predictions:
    """A stage's answers on its test items: the true class of each item and each seed's prediction."""

    items: list[str]  # item ids (clip ids): what makes two stages' answers comparable
    y_true: np.ndarray  # (n,) class indices
    y_pred: np.ndarray  # (seeds, n) class indices
    seeds: list[str]
    classes: list[str]

    def __post_init__(self) -> None:
        self.y_true = np.asarray(self.y_true, dtype=np.int64)
        self.y_pred = np.atleast_2d(np.asarray(self.y_pred, dtype=np.int64))
        if self.y_pred.shape != (len(self.seeds), len(self.items)) or self.y_true.shape != (len(self.items),):
            raise ValueError(f"predictions: {self.y_pred.shape} answers for {len(self.seeds)} seeds and "
                             f"{len(self.items)} items")

    def to_dict(self) -> dict:
        return {"items": self.items, "y_true": self.y_true.tolist(), "classes": self.classes,
                "seeds": {s: p.tolist() for s, p in zip(self.seeds, self.y_pred)}}

    @classmethod
    def from_dict(cls, d: dict) -> "Predictions":
        return cls(d["items"], np.array(d["y_true"]), np.array(list(d["seeds"].values())), list(d["seeds"]),
                   d["classes"])

    def restricted(self, items: list[str]) -> "Predictions":
        """The same answers on a subset of the items, in the given order."""
        where = {item: k for k, item in enumerate(self.items)}
        index = np.array([where[i] for i in items], dtype=np.int64)
        return Predictions(list(items), self.y_true[index], self.y_pred[:, index], self.seeds, self.classes)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    level: float = LEVEL

    def text(self, digits: int = 3) -> str:
        return f"{self.estimate:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level}


@dataclass(frozen=True)
class Comparison:
    """A paired difference (a minus b), its interval, the verdict and how many seeds would decide it."""

    difference: Interval
    verdict: str
    margin: float = 0.0
    seeds_needed: int | None = None  # None: more seeds cannot decide (the items are the limit), or no need
    note: str = ""
    per_seed: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"difference": self.difference.to_dict(), "verdict": self.verdict, "margin": self.margin,
                "seeds_needed": self.seeds_needed, "note": self.note, "per_seed": self.per_seed}

    @classmethod
    def from_dict(cls, d: dict) -> "Comparison":
        return cls(Interval(**d["difference"]), d["verdict"], d["margin"], d["seeds_needed"], d["note"], d["per_seed"])


METRICS = ("ua", "wa", "f1")


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, weights: np.ndarray, metric: str) -> np.ndarray:
    """A metric of each seed's predictions under each bootstrap weighting of the items: (replicates, seeds).

    `weights` (replicates, n) are how often each item was drawn. UA is the mean recall over the
    classes present in a replicate, WA the accuracy, f1 the macro F1 over the classes present.
    """
    truth = np.eye(n_classes)[y_true]  # (n, C)
    support = weights @ truth  # (R, C)
    present = support > 0
    out = np.empty((weights.shape[0], y_pred.shape[0]))
    for s, pred in enumerate(y_pred):
        correct = (pred == y_true).astype(float)
        if metric == "wa":
            out[:, s] = weights @ correct / weights.sum(axis=1)
            continue
        hits = weights @ (truth * correct[:, None])  # (R, C) correct items of each true class
        recall = np.divide(hits, support, out=np.zeros_like(hits), where=present)
        if metric == "ua":
            out[:, s] = (recall * present).sum(axis=1) / present.sum(axis=1)
            continue
        predicted = weights @ np.eye(n_classes)[pred]  # (R, C) items predicted as each class
        precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(hits),
                       where=precision + recall > 0)
        out[:, s] = (f1 * present).sum(axis=1) / present.sum(axis=1)
    return out


def _item_weights(n: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap draws of n items as counts per item; the first row is the data itself (all ones)."""
    draws = rng.multinomial(n, np.full(n, 1 / n), size=replicates - 1).astype(float)
    return np.vstack([np.ones(n), draws])


def _seed_means(values: np.ndarray, rng: np.random.Generator, paired_draws: np.ndarray | None = None) -> np.ndarray:
    """Each replicate's mean over a bootstrap draw of the seeds (row 0: the plain mean over all seeds)."""
    replicates, n_seeds = values.shape
    draws = paired_draws if paired_draws is not None else rng.integers(0, n_seeds, (replicates, n_seeds))
    draws[0] = np.arange(n_seeds)
    return np.take_along_axis(values, draws, axis=1).mean(axis=1)


def _percentiles(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples[1:], [tail, 100 - tail])
    return float(low), float(high)


def figure(p: Predictions, metric: str = "ua", replicates: int = REPLICATES, seed: int = 0) -> Interval:
    """The mean over seeds of a test metric, with a 95 % interval over test items and seeds."""
    rng = np.random.default_rng(seed)
    values = scores(p.y_true, p.y_pred, len(p.classes), _item_weights(len(p.items), replicates, rng), metric)
    means = _seed_means(values, rng)
    return Interval(float(means[0]), *_percentiles(means))


def compare(a: Predictions, b: Predictions, metric: str = "ua", margin: float = 0.0, paired: bool = True,
            replicates: int = REPLICATES, seed: int = 0) -> Comparison:
    """a minus b on the items both answered (paired), or on their own items each (paired=False: other test sets).

    Seeds are drawn together when both arms trained with the same seeds (seed k of one started
    like seed k of the other), independently otherwise.
    """
    rng = np.random.default_rng(seed)
    if paired:
        common = [i for i in a.items if i in set(b.items)]
        if not common:
            raise ValueError("compare: the two sets of predictions share no test item")
        a, b = a.restricted(common), b.restricted(common)
        weights_a = weights_b = _item_weights(len(common), replicates, rng)
    else:
        weights_a = _item_weights(len(a.items), replicates, rng)
        weights_b = _item_weights(len(b.items), replicates, rng)
    values_a = scores(a.y_true, a.y_pred, len(a.classes), weights_a, metric)
    values_b = scores(b.y_true, b.y_pred, len(b.classes), weights_b, metric)
    same_seeds = paired and a.seeds == b.seeds and len(a.seeds) > 1
    draws = rng.integers(0, len(a.seeds), (replicates, len(a.seeds))) if same_seeds else None
    diff = _seed_means(values_a, rng, draws) - _seed_means(values_b, rng, None if draws is None else draws.copy())
    interval = Interval(float(diff[0]), *_percentiles(diff))
    per_seed = (values_a[0] - values_b[0]).tolist() if same_seeds else []
    needed, note = _seeds_needed(values_a, values_b, interval, margin, same_seeds)
    return Comparison(interval, verdict(interval, margin), margin, needed, note, per_seed)


def verdict(interval: Interval, margin: float = 0.0) -> str:
    """The word a comparison earns: from the interval alone."""
    if interval.low > margin:
        return BETTER
    if interval.high < -margin:
        return WORSE
    return UNDECIDED


def _seeds_needed(values_a: np.ndarray, values_b: np.ndarray, interval: Interval, margin: float,
                  same_seeds: bool) -> tuple[int | None, str]:
    """How many seeds per arm would make the interval exclude the margin, if the difference is what it seems.

    The difference's variance is the items' part (the bootstrap spread with the seeds held) plus the
    seeds' part (their spread divided by the number of seeds); only the second shrinks with seeds.
    """
    if verdict(interval, margin) != UNDECIDED:
        return None, ""
    n_seeds = values_a.shape[1]
    gap = abs(interval.estimate) - margin
    if gap <= 0:
        return None, "the difference is within the margin: more seeds cannot make it one"
    if n_seeds < 2:
        return None, "one seed per arm: the spread over seeds is unknown, so no seed count is given"
    if same_seeds:
        per_seed_diff = values_a - values_b  # (R, S)
        item_var = float(np.var(per_seed_diff[1:].mean(axis=1)))  # seeds held, items resampled
        seed_var = float(np.var(per_seed_diff[0], ddof=1))
    else:
        item_var = float(np.var(values_a[1:].mean(axis=1)) + np.var(values_b[1:].mean(axis=1)))
        seed_var = float(np.var(values_a[0], ddof=1) + (np.var(values_b[0], ddof=1) if values_b.shape[1] > 1 else 0))
    z = scipy_stats.norm.ppf(0.5 + LEVEL / 2)
    room = (gap / z) ** 2 - item_var
    if room <= 0:
        return None, "the test items alone leave it open: more seeds cannot decide it (a larger test set can)"
    return max(n_seeds + 1, math.ceil(seed_var / room)), ""


def folds_figure(per_fold: list[float], level: float = LEVEL) -> Interval:
    """Mean over leave-one-session-out folds, with a t-interval over the folds (sessions are the unit)."""
    values = np.asarray(per_fold, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, math.nan, math.nan, level)
    half = scipy_stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, level)


def compare_folds(a: list[float], b: list[float], margin: float = 0.0) -> Comparison:
    """a minus b paired by fold, with a t-interval over the folds."""
    difference = folds_figure([x - y for x, y in zip(a, b)])
    return Comparison(difference, verdict(difference, margin), margin)
