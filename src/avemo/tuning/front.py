"""The search's accuracy-cost front, and the smallest model the interval rule cannot tell from the best.

A single-objective search (validation UA) says nothing about what its trials cost to serve. The front
is the completed trials that no other trial beats on both axes: validation UA at least as high and
single-clip latency at most as low, one of them strictly (Optuna's own front helpers are for
multi-objective studies only, so it is computed here). The compact pick is the fastest trial of the
front whose answers on the selection half, compared with the best trial's (stats.compare, paired on the
same items, one seed each), are not **worse**: what a user serving on a small machine gives up for
it is within what the items can tell. The front always holds a trial as accurate as the best (the
best itself, or a faster trial of equal UA), whose difference from it is 0, never worse: there always
is a pick.
"""

from __future__ import annotations

from dataclasses import dataclass

from avemo.stats import WORSE, Comparison, Predictions, compare


@dataclass(frozen=True)
class Costed:
    """A completed trial: its number, its objective and its cost (tuning/cost.py)."""

    trial: int
    val_ua: float
    latency_ms: float
    parameters: int

    def to_dict(self) -> dict:
        return {"trial": self.trial, "val_ua": self.val_ua, "latency_ms": self.latency_ms,
                "parameters": self.parameters}


def dominates(a: Costed, b: Costed) -> bool:
    """a is at least as accurate and as fast as b, and strictly one of them."""
    return (a.val_ua >= b.val_ua and a.latency_ms <= b.latency_ms
            and (a.val_ua > b.val_ua or a.latency_ms < b.latency_ms))


def pareto_front(trials: list[Costed]) -> list[Costed]:
    """The trials no other trial dominates, fastest first (ties: more accurate, then smaller, then earlier)."""
    front = [t for t in trials if not any(dominates(other, t) for other in trials)]
    return sorted(front, key=lambda t: (t.latency_ms, -t.val_ua, t.parameters, t.trial))


def compact(front: list[Costed], best: Costed, answers: dict[int, Predictions],
            margin: float = 0.0) -> tuple[Costed, dict[int, Comparison]]:
    """(the fastest front trial not worse than `best` by the interval rule, each front trial's comparison with
    the best: its answers minus the best's). `answers`: each front trial's selection-half predictions."""
    verdicts = {t.trial: compare(answers[t.trial], answers[best.trial], margin=margin) for t in front}
    pick = next(t for t in front if verdicts[t.trial].verdict != WORSE)
    return pick, verdicts
