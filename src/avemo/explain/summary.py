"""Summaries of per-clip explanations: means over the clips of each true class, counts, and
plain numbers for a metrics file."""

from __future__ import annotations

import numpy as np


def class_means(values: np.ndarray, labels: np.ndarray | None, n_classes: int) -> np.ndarray:
    """(classes, ...) mean of `values` (clips, ...) over the clips of each class; NaN clips are
    left out, and a class without clips is NaN."""
    if labels is None:
        raise ValueError("per-class summaries need the clips' true classes (labels)")
    out = np.full((n_classes, *values.shape[1:]), np.nan)
    for c in range(n_classes):
        chosen = values[labels == c]
        valid = ~np.isnan(chosen)
        count = valid.sum(axis=0)
        out[c] = np.where(count > 0, np.where(valid, chosen, 0).sum(axis=0) / np.maximum(count, 1), np.nan)
    return out


def class_counts(labels: np.ndarray, targets: np.ndarray, classes: list[str]) -> dict[str, dict[str, int]]:
    """{class: {clips, explained_as_own}}: the clips of each true class, and how many of them were
    explained for their own class (with predicted targets: how many the model got right). A class
    mean over clips explained for other classes mixes in why the model said something else."""
    return {name: {"clips": int((labels == c).sum()), "explained_as_own": int(((labels == c) & (targets == c)).sum())}
            for c, name in enumerate(classes)}


def number(value: float) -> float | None:
    """JSON-safe: NaN (nothing to average) becomes null."""
    return None if np.isnan(value) else float(value)


def mean(values: np.ndarray) -> float | None:
    """The mean of the non-NaN values; null when there are none."""
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if len(valid) else None


def ranked(values: np.ndarray, k: int = 5) -> list[int]:
    """The k units of largest value, largest first; none where the values are NaN (no clips)."""
    return [] if np.isnan(values).all() else [int(i) for i in np.argsort(-values, kind="stable")[:k]]
