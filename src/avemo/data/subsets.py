"""Subsets of the training labels (the label-efficiency curve)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def label_subset(items: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """A mask keeping `fraction` of each class's training items (at least one), drawn with `seed`."""
    rng = np.random.default_rng([seed, round(fraction * 1000)])
    keep = np.zeros(len(items), bool)
    for _, members in items.groupby("class").indices.items():
        chosen = rng.choice(members, max(1, round(fraction * len(members))), replace=False)
        keep[chosen] = True
    return keep
