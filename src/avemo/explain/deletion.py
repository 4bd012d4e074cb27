"""The faithfulness check: does removing what a method calls important hurt the prediction
faster than removing units in random order?

For each clip, the units are set to the baseline one after another, most important first, and
the model's probability of the explained class is read after each removal: the deletion curve,
from the intact clip (fraction 0) to the all-baseline input (fraction 1). The same is done in
`repeats` random orders (seeded, the same for every method), whose curves are averaged. Both
curves start and end at the same two points, so their areas differ only by the order. The area
under the curve (AUC, over the fraction removed, so in [0, 1]) is lower when the order is
faithful.

Verdict, from an interval: the per-clip paired gain (random AUC - method AUC) is averaged over
the clips, with a 95 % Student t interval; the method **passes** if the interval's lower end is
above MARGIN = 0.01 (the word "better" of `stats.verdict`, as every verdict in the project). The interval makes the verdict hold against the clip-to-clip noise (it
narrows with more clips, and widens where the method helps on some clips and hurts on others);
the margin makes it matter: the AUC is a mean probability along the deletion path, so 0.01 is
one percentage point, the resolution at which the curves are read (p to two decimals). Without
it, a consistent but invisible gain passes: with silence as the baseline of the tests' audio
model, ranking moments gained 0.0005 [0.0002, 0.0007]. With fewer than two clips there is no
interval and the method fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats as scipy_stats

from avemo.explain.outputs import Scores
from avemo.explain.summary import number
from avemo.explain.units import remove_units
from avemo.stats import BETTER, LEVEL, Interval, verdict

MARGIN = 0.01


@dataclass(frozen=True)
class Deletion:
    """Deletion curves of one method on one kind of unit, and its verdict."""

    method: str
    unit: str
    curves: np.ndarray  # (clips, units + 1): p(target) after removing the k most important units
    random_curves: np.ndarray  # (clips, units + 1): the same in random orders, mean over the repeats

    @property
    def fractions(self) -> np.ndarray:
        return np.linspace(0, 1, self.curves.shape[1])

    @property
    def auc(self) -> np.ndarray:
        return area(self.curves)

    @property
    def random_auc(self) -> np.ndarray:
        return area(self.random_curves)

    @property
    def gain(self) -> np.ndarray:
        """Per clip: how much lower the method's area is than random's."""
        return self.random_auc - self.auc

    @property
    def interval(self) -> Interval:
        """The mean gain over the clips with its 95 % Student t interval (no bounds, NaN, for one clip)."""
        gain = self.gain
        if len(gain) < 2:
            return Interval(float(gain.mean()), math.nan, math.nan)
        half = scipy_stats.t.ppf(0.5 + LEVEL / 2, len(gain) - 1) * gain.std(ddof=1) / math.sqrt(len(gain))
        return Interval(float(gain.mean()), float(gain.mean() - half), float(gain.mean() + half))

    @property
    def passed(self) -> bool:
        """The project's verdict word from the interval alone: "better" than random by more than the margin."""
        return verdict(self.interval, MARGIN) == BETTER

    def summary(self) -> dict:
        """Plain numbers for a metrics file (null bounds for a single clip)."""
        gain = self.interval
        return {"clips": len(self.curves), "auc": float(self.auc.mean()), "random_auc": float(self.random_auc.mean()),
                "gain": gain.estimate, "gain_low": number(gain.low), "gain_high": number(gain.high),
                "margin": MARGIN, "passed": self.passed}


def area(curves: np.ndarray) -> np.ndarray:
    """Trapezoidal area under each curve over the fraction of units removed (0 to 1)."""
    return (curves[:, 1:] + curves[:, :-1]).sum(axis=1) / (2 * (curves.shape[1] - 1))


def most_important_first(importance: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit indices by decreasing importance; ties (e.g. a map that is zero everywhere) in random order."""
    return np.lexsort((rng.permutation(len(importance)), -importance))


def deletion_checks(unit: str, importance: dict[str, np.ndarray], scores: Scores, x: torch.Tensor,
                    mask: torch.Tensor, baseline: torch.Tensor, target: torch.Tensor,
                    context: tuple[torch.Tensor, ...] = (), repeats: int = 4, seed: int = 0,
                    batch: int = 64) -> dict[tuple[str, str], Deletion]:
    """{(method, unit): Deletion} for every clip of `x` (B, ...): each method's order of `importance`
    (method -> (B, units)) and `repeats` random orders, seeded and shared by the methods, so that
    their gains are paired on the same random reference and it is computed once."""
    rng = np.random.default_rng(seed)
    methods = list(importance)
    n_units = importance[methods[0]].shape[1]
    curves: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    random_curves = []
    for i in range(len(x)):
        orders = [most_important_first(importance[m][i], rng) for m in methods]
        orders += [rng.permutation(n_units) for _ in range(repeats)]
        p = probability_after_removals(scores, x[i: i + 1], mask, baseline, orders, int(target[i]),
                                       tuple(c[i: i + 1] for c in context), batch)
        for m, curve in zip(methods, p):
            curves[m].append(curve)
        random_curves.append(p[len(methods):].mean(0))
    return {(m, unit): Deletion(m, unit, np.array(curves[m]), np.array(random_curves)) for m in methods}


def probability_after_removals(scores: Scores, x: torch.Tensor, mask: torch.Tensor, baseline: torch.Tensor,
                               orders: list[np.ndarray], target: int, context: tuple[torch.Tensor, ...],
                               batch: int) -> np.ndarray:
    """(orders, units + 1): p(target) of one input after removing 0, 1, ..., all units in each order."""
    n_units = len(orders[0])
    ranks = np.argsort(np.stack(orders), axis=1)  # (orders, units): when each unit is removed
    steps = torch.from_numpy(np.arange(n_units + 1)[None, :, None] > ranks[:, None, :]).reshape(-1, n_units)
    out = []
    with torch.no_grad():
        for a in range(0, len(steps), batch):
            removed = steps[a: a + batch]
            copies = remove_units(x, baseline, mask, removed.to(x.device))
            extra = tuple(c.expand(len(removed), *c.shape[1:]) for c in context)
            out.append(scores(copies, *extra)[:, target].cpu())
    return torch.cat(out).numpy().reshape(len(orders), n_units + 1)
