"""The decision rules' false-verdict rates and power, by simulation: the table of docs/statistics.md.

Each cell puts `BENCH_STATS_RUNS` (default 400) simulated decisions through the project's rule
(avemo.stats, via avemo.simulate) and, in the same run, through round 3's rule (a hierarchical
bootstrap that resamples items and seeds, each seed's figure already carrying the items' noise),
beside the ideal test (a z-test that knows the true spread of the difference). The search's rule is
set beside round 3's (the best trial judged on the items that ranked it). Writes the tables into
docs/statistics.md (everything after its MARKER line) and prints them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from avemo.simulate import Setting, comparison_rates, folds_rates, gate_rates, search_rates
from avemo.stats import BETTER, UNDECIDED, WORSE, Predictions, _item_weights, scores

OUT = Path(__file__).resolve().parents[1] / "docs" / "statistics.md"
MARKER = "<!-- bench_stats writes the tables below -->"


def round3_rule(a: Predictions, b: Predictions, replicates: int = 1000, seed: int = 0) -> str:
    """Round 3's comparison (stats.py at 2f5ebef): items and seeds both resampled with replacement, percentiles."""
    rng = np.random.default_rng(seed)
    weights = _item_weights(len(a.items), replicates, rng)
    va, vb = (scores(p.y_true, p.y_pred, len(p.classes), weights, "ua") for p in (a, b))
    draws = rng.integers(0, va.shape[1], va.shape)
    draws[0] = np.arange(va.shape[1])
    diff = np.take_along_axis(va, draws, axis=1).mean(axis=1) - np.take_along_axis(vb, draws, axis=1).mean(axis=1)
    low, high = np.percentile(diff[1:], [2.5, 97.5])
    return BETTER if low > 0 else WORSE if high < 0 else UNDECIDED


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def main() -> None:
    runs = int(os.environ.get("BENCH_STATS_RUNS", "400"))
    started = time.time()
    lines = [f"Made by `make bench` (`python -m benchmarks bench_stats`), {runs} simulated decisions a cell "
             f"(simulation error of a 5 % rate: ±{100 * 2 * np.sqrt(0.05 * 0.95 / runs):.1f} points at two standard "
             "errors); arms of skill 0.7, items sharing difficulty (correlation 0.3), four balanced classes.", "",
             "### Comparisons of equal arms: verdicts other than \"no difference shown\" (want <= 5 %)", "",
             "| items | seeds | seed sd | this rule | round 3's rule |", "|---|---|---|---|---|"]
    for items in (94, 400):
        for seeds in (3, 5):
            for sd in (0.02, 0.07, 0.11):
                setting = Setting(items, seeds, sd)
                new = comparison_rates(setting, runs)
                old = comparison_rates(setting, runs, rule=round3_rule)
                lines.append(f"| {items} | {seeds} | {sd} | {pct(new.verdicts)} | {pct(old.verdicts)} |")
    lines += ["", "### Power: a true gain found (\"better\"), beside the ideal test", "",
              "| items | seeds | seed sd | gain | this rule | round 3's rule | ideal |", "|---|---|---|---|---|---|---|"]
    for items in (94, 400):
        for seeds in (3, 5):
            for sd in (0.02, 0.07, 0.11):
                for gain in (0.05, 0.10):
                    setting = Setting(items, seeds, sd, gain)
                    new = comparison_rates(setting, runs)
                    old = comparison_rates(setting, runs, rule=round3_rule)
                    lines.append(f"| {items} | {seeds} | {sd} | {gain} | {pct(new.better)} | {pct(old.better)} | "
                                 f"{pct(new.ideal)} |")
    lines += ["", "### The search's choice: trials of equal skill, a non-hand-set trial kept (want <= 5 %)", "",
              "Each trial is one seed of its configuration (seed sd 0.03), ranked on 47 selection items; this rule "
              "confirms the best with 3 fresh seeds of it and of the hand-set configuration on 47 other items; round "
              "3's judged the best on the 47 items that ranked it.", "",
              "| trials | this rule | round 3's rule |", "|---|---|---|"]
    for trials in (6, 20, 50, 200):
        confirmed, unconfirmed = search_rates(trials, Setting(47, 1, 0.03), 3, runs)
        lines.append(f"| {trials} | {pct(confirmed.better)} | {pct(unconfirmed.better)} |")
    better, _ = search_rates(20, Setting(47, 1, 0.03), 3, runs, best_gain=0.15)
    lines += ["", f"One of 20 configurations better by 0.15: kept in {pct(better.better)} of searches.", "",
              "### The promotion gate (two fixed models, one answer each, 94 test utterances) and leave-one-session-out",
              "", "| rule | case | verdict rate |", "|---|---|---|"]
    for gain in (0.0, 0.10, 0.20):
        rates = gate_rates(94, gain, runs)
        lines.append(f"| gate | challenger {'+' if gain else ''}{gain} | promoted {pct(rates.better)} |")
    for sd in (0.02, 0.11):
        for gain in (0.0, 0.05):
            rates = folds_rates(Setting(94, 3, sd, gain), 5, runs)
            what = "any verdict" if gain == 0 else "better"
            lines.append(f"| LOSO, 5 folds, seed sd {sd} | gain {gain} | {what} "
                         f"{pct(rates.verdicts if gain == 0 else rates.better)} |")
    lines += ["", f"Wall time: {time.time() - started:.0f} s."]
    page = OUT.read_text()
    OUT.write_text(page[:page.index(MARKER) + len(MARKER)] + "\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
