"""The decision rules' error rates, measured: simulated arms of known skill put through the project's own rules.

An arm answers `items` test items (four balanced classes) with each of `seeds` seeds. Seed s is right
on an item with probability p_s = skill + N(0, seed_sd) (training noise: some seeds come out better
than others), and items share a difficulty across seeds and arms (`item_share`: the correlation of
two answers to one item), as trained models do; a wrong answer names one of the other classes. Two
arms of equal skill give the null (any verdict but "no difference shown" is false); a known gain
gives the power, set beside the ideal test's: a z-test that knows the true spread of the difference.

Rules simulated: a comparison (`stats.compare`, seeds paired by id as the stages train them), the
promotion gate (two fixed models, one answer each), leave-one-session-out paired by fold
(`stats.compare_folds`), and the search's choice (the best of K trials on half of the validation
items, confirmed by fresh seeds of the chosen and the hand-set recipes on the other half).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from avemo.stats import BETTER, UNDECIDED, WORSE, Comparison, Predictions, compare, compare_folds, scores

CLASSES = ["neutral", "happy", "angry", "sad"]
Z = scipy_stats.norm.ppf(0.975)


@dataclass(frozen=True)
class Setting:
    """One cell of the simulation: how many items and seeds, how much seeds disagree, the true gain."""

    items: int
    seeds: int
    seed_sd: float
    gain: float = 0.0
    skill: float = 0.7
    item_share: float = 0.3


def truth(n: int) -> np.ndarray:
    return np.arange(n) % len(CLASSES)


def difficulty(n: int, rng: np.random.Generator) -> np.ndarray:
    """Each item's shared difficulty (standard normal)."""
    return rng.standard_normal(n)


def arm(setting: Setting, skill: float, hard: np.ndarray, rng: np.random.Generator, n_seeds: int | None = None,
        seed_sd: float | None = None) -> Predictions:
    """One arm's answers: seed s right where its latent draw falls below the quantile of p_s."""
    n, s = len(hard), n_seeds or setting.seeds
    sd = setting.seed_sd if seed_sd is None else seed_sd
    y = truth(n)
    p = np.clip(skill + sd * rng.standard_normal(s), 0.02, 0.98)
    latent = math.sqrt(setting.item_share) * hard + math.sqrt(1 - setting.item_share) * rng.standard_normal((s, n))
    right = latent < scipy_stats.norm.ppf(p)[:, None]
    wrong = (y + rng.integers(1, len(CLASSES), (s, n))) % len(CLASSES)
    return Predictions([f"item{k}" for k in range(n)], y, np.where(right, y, wrong), [str(k) for k in range(s)],
                       CLASSES)


def seed_mean_ua(p: Predictions) -> float:
    return float(scores(p.y_true, p.y_pred, len(p.classes), np.ones((1, len(p.items))), "ua")[0].mean())


@dataclass(frozen=True)
class Rates:
    """How often a rule said each word over `runs` simulated decisions, and the ideal test's power."""

    runs: int
    better: float
    worse: float
    ideal: float | None = None

    @property
    def verdicts(self) -> float:
        """Any verdict but "no difference shown": all of them false under the null."""
        return self.better + self.worse

    @property
    def error(self) -> float:
        """The simulation's own standard error for a rate of 5 %."""
        return math.sqrt(0.05 * 0.95 / self.runs)


def tally(words: list[str], ideal: float | None = None) -> Rates:
    n = len(words)
    return Rates(n, sum(w == BETTER for w in words) / n, sum(w == WORSE for w in words) / n, ideal)


def comparison_rates(setting: Setting, runs: int, replicates: int = 1000, seed: int = 0,
                     rule: Callable[[Predictions, Predictions], Comparison | str] | None = None) -> Rates:
    """`runs` comparisons of an arm with `setting.gain` more skill against one without, on shared items.

    The ideal test's power uses the true spread of the difference, measured on the same draws' seed means.
    """
    rng = np.random.default_rng([seed, setting.items, setting.seeds, round(setting.seed_sd * 1000),
                                 round(setting.gain * 1000)])
    rule = rule or (lambda a, b: compare(a, b, replicates=replicates, seed=int(rng.integers(1 << 31))))
    words, differences = [], []
    for _ in range(runs):
        hard = difficulty(setting.items, rng)
        a = arm(setting, setting.skill + setting.gain, hard, rng)
        b = arm(setting, setting.skill, hard, rng)
        result = rule(a, b)
        words.append(result if isinstance(result, str) else result.verdict)
        differences.append(seed_mean_ua(a) - seed_mean_ua(b))
    spread = float(np.std(differences, ddof=1))
    ideal = float(scipy_stats.norm.cdf(setting.gain / spread - Z)) if setting.gain and spread > 0 else None
    return tally(words, ideal)


def gate_rates(items: int, gain: float, runs: int, replicates: int = 1000, seed: int = 0,
               item_share: float = 0.3) -> Rates:
    """The promotion gate: a challenger and a champion, one fixed model each, on the same test utterances."""
    setting = Setting(items, 1, 0.0, gain, item_share=item_share)
    return comparison_rates(setting, runs, replicates, seed)


def folds_rates(setting: Setting, folds: int, runs: int, seed: int = 0) -> Rates:
    """Leave-one-session-out: per fold an arm pair on that fold's items, their seed means paired by fold."""
    rng = np.random.default_rng([seed, folds, setting.items, round(setting.seed_sd * 1000), round(setting.gain * 1000)])
    words = []
    for _ in range(runs):
        a, b = [], []
        for _ in range(folds):
            hard = difficulty(setting.items, rng)
            a.append(seed_mean_ua(arm(setting, setting.skill + setting.gain, hard, rng)))
            b.append(seed_mean_ua(arm(setting, setting.skill, hard, rng)))
        words.append(compare_folds(a, b).verdict)
    return tally(words)


def search_rates(trials: int, setting: Setting, confirm_seeds: int, runs: int, replicates: int = 1000,
                 seed: int = 0, best_gain: float = 0.0) -> tuple[Rates, Rates]:
    """The search's choice, (confirmed, unconfirmed): how often a non-hand-set trial is kept.

    Trial 0 is the hand-set recipe; every trial is one seed of its configuration. Configurations are of
    equal skill, except (best_gain > 0) the last, better by best_gain. The trials are ranked on the
    selection half of the validation items (`setting.items`); the unconfirmed rule (round 3's) keeps the
    best if its paired gain over trial 0 on those same items is "better"; the confirmed rule trains
    `confirm_seeds` fresh seeds of the best and of the hand-set configurations and compares them on the
    confirmation half (as many items, never used to rank).
    """
    rng = np.random.default_rng([seed, trials, setting.items, confirm_seeds, round(setting.seed_sd * 1000),
                                 round(best_gain * 1000)])
    skills = np.full(trials, setting.skill)
    skills[-1] += best_gain
    confirmed, unconfirmed = [], []
    for _ in range(runs):
        hard = difficulty(setting.items, rng)
        answers = [arm(setting, s, hard, rng, n_seeds=1) for s in skills]
        best = int(np.argmax([seed_mean_ua(a) for a in answers]))
        if best == 0:
            confirmed.append(UNDECIDED)
            unconfirmed.append(UNDECIDED)
            continue
        unconfirmed.append(compare(answers[best], answers[0], replicates=replicates,
                                   seed=int(rng.integers(1 << 31))).verdict)
        held_out = difficulty(setting.items, rng)
        fresh = [arm(setting, skills[k], held_out, rng, n_seeds=confirm_seeds) for k in (best, 0)]
        confirmed.append(compare(*fresh, replicates=replicates, seed=int(rng.integers(1 << 31))).verdict)
    return tally(confirmed), tally(unconfirmed)
