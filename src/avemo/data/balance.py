"""Class balancing of the training split (after the split, so no copy crosses into val/test)."""

from __future__ import annotations

import numpy as np


def target_count(counts: np.ndarray, per_class: int | str) -> int:
    """Items per class after re-sampling: a number (the study: 1600), or 'median' / 'max' of the counts."""
    if per_class == "median":
        return int(np.median(counts))
    if per_class == "max":
        return int(counts.max())
    if isinstance(per_class, int) and per_class > 0:
        return per_class
    raise ValueError(f"balance.per_class must be a positive integer, 'median' or 'max', not {per_class!r}")


def resample_indices(targets: np.ndarray, n_classes: int, per_class: int | str, seed: int) -> np.ndarray:
    """The study's over/under-sampling: duplicate scarce classes, thin out common ones, to N each."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(targets, minlength=n_classes)
    n = target_count(counts[counts > 0], per_class)
    chosen = []
    for c in range(n_classes):
        members = np.flatnonzero(targets == c)
        if len(members) == 0:
            continue
        if len(members) >= n:
            chosen.append(rng.choice(members, n, replace=False))
        else:
            chosen.append(np.concatenate([members, rng.choice(members, n - len(members), replace=True)]))
    return np.sort(np.concatenate(chosen))


def class_weights(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency weights for the loss, mean 1 over the classes present."""
    counts = np.bincount(targets, minlength=n_classes).astype(float)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0)
    return weights
