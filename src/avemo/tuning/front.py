"""The search's accuracy-size front, and the smallest model the interval rule cannot tell from the best.

A single-objective search (validation UA) says nothing about what its trials cost to serve. The front
is the completed trials that no other trial beats on both axes: validation UA at least as high and
parameter count at most as low, one of them strictly (Optuna's own front helpers are for
multi-objective studies only, so it is computed here). The compact pick is the smallest (fewest
parameters) trial of the front whose answers on the selection half, compared with the best trial's
(stats.compare, paired on the same items, one seed each), are not **worse**: what a user serving on a
small machine gives up for it is within what the items can tell. The front always holds a trial as
accurate as the best (the best itself, or a smaller trial of equal UA), whose difference from it is 0,
never worse: there always is a pick.

The front and the pick are on parameter count, not on latency: a measured latency differs between runs
and machines, so a front drawn from it would make the search's output (reports/tune/<family>.json, which
the training stages depend on) differ too, and a fresh clone's `dvc repro` would not write the committed
bytes. Both axes here are what the search computed, the same on every run and machine. Each trial's
single-clip latency is still measured and recorded beside them (tuning/cost.py: the trial's Optuna user
attrs and metrics on its MLflow run), never in the search's output.
"""

from __future__ import annotations

from dataclasses import dataclass

from avemo.stats import WORSE, Comparison, Predictions, compare


@dataclass(frozen=True)
class Costed:
    """A completed trial: its number, its objective and its size (tuning/cost.py's parameter count)."""

    trial: int
    val_ua: float
    parameters: int

    def to_dict(self) -> dict:
        return {"trial": self.trial, "val_ua": self.val_ua, "parameters": self.parameters}


def dominates(a: Costed, b: Costed) -> bool:
    """a is at least as accurate and as small as b, and strictly one of them."""
    return (a.val_ua >= b.val_ua and a.parameters <= b.parameters
            and (a.val_ua > b.val_ua or a.parameters < b.parameters))


def pareto_front(trials: list[Costed]) -> list[Costed]:
    """The trials no other trial dominates, smallest first (ties: more accurate, then earlier); trials equal on
    both axes all stand on it."""
    front = [t for t in trials if not any(dominates(other, t) for other in trials)]
    return sorted(front, key=lambda t: (t.parameters, -t.val_ua, t.trial))


def compact(front: list[Costed], best: Costed, answers: dict[int, Predictions],
            margin: float = 0.0) -> tuple[Costed, dict[int, Comparison]]:
    """(the smallest front trial not worse than `best` by the interval rule, each front trial's comparison with
    the best: its answers minus the best's). `front`: smallest first (`pareto_front`); `answers`: each front
    trial's selection-half predictions, and the best's."""
    verdicts = {t.trial: compare(answers[t.trial], answers[best.trial], margin=margin) for t in front}
    pick = next(t for t in front if verdicts[t.trial].verdict != WORSE)
    return pick, verdicts
