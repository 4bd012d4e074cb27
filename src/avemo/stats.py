"""The intervals every figure and every verdict comes from, with each source of noise counted once.

A figure is the mean over seeds of a test metric. Its noise has two sources, which test items were
drawn and how training went (the seed), and each seed's figure already carries both. So the
variance of the mean is split where each part can be seen once:

- the items' part: what two *different* seeds share because they answered the same items, the
  covariance between two seeds' figures over a bootstrap of the items (the noise a seed has of its
  own on those items is not shared, and is counted below);
- the seeds' part: the spread of the per-seed figures on these items, divided by the seeds.

The half-width adds the parts' half-widths in quadrature: the items' part with normal tails (hundreds of
items estimate it), the seeds' part with t tails of S - 1 degrees of freedom, so 3 seeds that disagree
give a wide interval and 3 that agree a narrow one.
With one seed the seeds' part is unknown: the interval is the items' alone, right for a fixed model
(a reference, a registered version) and said to be so for anything else. A comparison is the same
rule on the difference: paired on the same items (the arms must have answered the same items with
the same truths and classes, or it is refused) and on the per-seed differences where both arms
trained with the same seeds. Its verdict comes from the interval alone: "better" when it lies above
the margin, "worse" when it lies below minus the margin, "no difference shown" otherwise. Across
leave-one-session-out folds the figure is the mean over folds with a t-interval over the per-fold
values (sessions are the unit). Every rule's false-verdict rate and power are measured by
simulation (avemo.simulate, docs/statistics.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

LEVEL = 0.95
REPLICATES = 2000
BETTER, WORSE, UNDECIDED = "better", "worse", "no difference shown"
METHOD = ("mean over seeds +- sqrt((z x items SE)^2 + (t[S-1] x seeds SE)^2); items: the covariance of two seeds' "
          "figures over an item bootstrap; seeds: their spread on these items / S")


class NotAPair(ValueError):
    """Two sets of answers that a paired comparison cannot put side by side (other items, truths or classes)."""


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
        missing = [i for i in items if i not in where]
        if missing:
            raise NotAPair(f"{len(missing)} item(s) not among these answers, e.g. {missing[0]!r}")
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
    """A paired difference (a minus b), its interval, the verdict, and what the interval was made of."""

    difference: Interval
    verdict: str
    margin: float = 0.0
    note: str = ""
    per_seed: list[float] = field(default_factory=list)
    parts: dict = field(default_factory=dict)  # se, items_var, seeds_var, df, items, seeds

    def to_dict(self) -> dict:
        return {"difference": self.difference.to_dict(), "verdict": self.verdict, "margin": self.margin,
                "note": self.note, "per_seed": self.per_seed, "parts": self.parts}

    @classmethod
    def from_dict(cls, d: dict) -> "Comparison":
        return cls(Interval(**d["difference"]), d["verdict"], d["margin"], d.get("note", ""), d.get("per_seed", []),
                   d.get("parts", {}))


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


def _covariance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(Sx, Sy) covariances over the bootstrap replicates (row 0, the data itself, left out)."""
    xc, yc = x[1:] - x[1:].mean(axis=0), y[1:] - y[1:].mean(axis=0)
    return xc.T @ yc / (len(xc) - 1)


def _shared_by_seeds(values: np.ndarray) -> float:
    """The items' part of the variance of a mean over seeds: the mean covariance of two *different* seeds'
    figures over the item bootstrap. With one seed, that seed's whole item variance."""
    cov = _covariance(values, values)
    n_seeds = values.shape[1]
    if n_seeds == 1:
        return float(cov[0, 0])
    return float((cov.sum() - np.trace(cov)) / (n_seeds * (n_seeds - 1)))


def _seeds_part(values: np.ndarray) -> list[tuple[float, float]]:
    """The seeds' part of the variance of a mean over seeds, with its 95 % quantile: their spread on these
    items over S (each seed's own errors on the items and how its training went), known from S - 1 degrees of
    freedom, so t tails. One seed: nothing (its item noise is all in the items' part)."""
    n_seeds = values.shape[1]
    if n_seeds < 2:
        return []
    return [(float(np.var(values[0], ddof=1) / n_seeds), float(scipy_stats.t.ppf(0.5 + LEVEL / 2, n_seeds - 1)))]


def _interval(estimate: float, items_var: float, seeds: list[tuple[float, float]],
              bounds: tuple[float, float] | None = None) -> tuple[Interval, dict]:
    """estimate +- the half-widths of the parts added in quadrature: the items' with normal tails (hundreds of
    items estimate it), each seeds' part with its t tails. Measured in docs/statistics.md: Satterthwaite's
    pooled degrees of freedom, the textbook alternative, called 6-8 % of equal arms different at 3 seeds."""
    items_var = max(items_var, 0.0)
    z = scipy_stats.norm.ppf(0.5 + LEVEL / 2)
    half = math.sqrt(z * z * items_var + sum(q * q * v for v, q in seeds))
    low, high = estimate - half, estimate + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    parts = {"half_width": half, "items_se": math.sqrt(items_var),
             "seeds_se": math.sqrt(sum(v for v, _ in seeds)), "seeds_t": [q for _, q in seeds]}
    return Interval(float(estimate), float(low), float(high)), parts


def figure(p: Predictions, metric: str = "ua", replicates: int = REPLICATES, seed: int = 0) -> Interval:
    """The mean over seeds of a test metric, with a 95 % interval that counts the test items and the seeds once each."""
    values = scores(p.y_true, p.y_pred, len(p.classes), _item_weights(len(p.items), replicates,
                                                                      np.random.default_rng(seed)), metric)
    interval, _ = _interval(float(values[0].mean()), _shared_by_seeds(values), _seeds_part(values), bounds=(0.0, 1.0))
    return interval


def check_pair(a: Predictions, b: Predictions) -> Predictions:
    """b in a's item order, if the two are answers to the same question: the same items, truths and classes.

    A paired difference of answers to other items, other truths or another class set (a 4-class run against a
    3-class one with the same clip ids) would look like a comparison and be none: refused, naming what differs.
    """
    if list(a.classes) != list(b.classes):
        raise NotAPair(f"the two arms have other class sets: {list(a.classes)} vs {list(b.classes)}")
    if set(a.items) != set(b.items) or len(a.items) != len(b.items):
        only_a, only_b = sorted(set(a.items) - set(b.items)), sorted(set(b.items) - set(a.items))
        raise NotAPair(f"the two arms answered other items ({len(a.items)} vs {len(b.items)}; {len(only_a)} only in "
                       f"the first, {len(only_b)} only in the second, e.g. {(only_a or only_b or ['a repeated id'])[0]!r})"
                       ": restrict both to the items they share, and say so")
    b = b.restricted(a.items)
    differ = np.flatnonzero(a.y_true != b.y_true)
    if len(differ):
        raise NotAPair(f"the two arms disagree on the true class of {len(differ)} item(s), e.g. {a.items[differ[0]]!r}: "
                       "other labels or another class mapping")
    return b


def compare(a: Predictions, b: Predictions, metric: str = "ua", margin: float = 0.0, paired: bool = True,
            replicates: int = REPLICATES, seed: int = 0) -> Comparison:
    """a minus b, paired on the same items (paired=False: two other test sets, drawn independently).

    Where both arms trained with the same seeds (seed k of one started like seed k of the other), the
    rule runs on the per-seed differences; otherwise each arm's seeds count on their own.
    """
    rng = np.random.default_rng(seed)
    if paired:
        b = check_pair(a, b)
        weights_a = weights_b = _item_weights(len(a.items), replicates, rng)
    else:
        weights_a = _item_weights(len(a.items), replicates, rng)
        weights_b = _item_weights(len(b.items), replicates, rng)
    values_a = scores(a.y_true, a.y_pred, len(a.classes), weights_a, metric)
    values_b = scores(b.y_true, b.y_pred, len(b.classes), weights_b, metric)
    estimate = float(values_a[0].mean() - values_b[0].mean())
    same_seeds = paired and a.seeds == b.seeds and len(a.seeds) > 1
    if same_seeds:
        differences = values_a - values_b
        interval, parts = _interval(estimate, _shared_by_seeds(differences), _seeds_part(differences))
    else:
        cross = float(_covariance(values_a, values_b).mean()) if paired else 0.0
        items_var = _shared_by_seeds(values_a) + _shared_by_seeds(values_b) - 2 * cross
        interval, parts = _interval(estimate, items_var, [*_seeds_part(values_a), *_seeds_part(values_b)])
    note = ("one seed per arm: the interval counts the test items only (right for two fixed models; the training "
            "noise of a recipe is not in it)" if len(a.seeds) == len(b.seeds) == 1 else "")
    parts |= {"items": len(a.items), "seeds": [len(a.seeds), len(b.seeds)], "paired_seeds": same_seeds}
    per_seed = (values_a[0] - values_b[0]).tolist() if same_seeds else []
    return Comparison(interval, verdict(interval, margin), margin, note, per_seed, parts)


def verdict(interval: Interval, margin: float = 0.0) -> str:
    """The word a comparison earns: from the interval alone."""
    if interval.low > margin:
        return BETTER
    if interval.high < -margin:
        return WORSE
    return UNDECIDED


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
    if len(a) != len(b):
        raise NotAPair(f"compare_folds: {len(a)} folds against {len(b)}")
    difference = folds_figure([x - y for x, y in zip(a, b)])
    return Comparison(difference, verdict(difference, margin), margin,
                      parts={"folds": len(a), "df": len(a) - 1})
