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


def confirmation_half(items: pd.DataFrame, seed: int) -> np.ndarray:
    """A mask of the validation items that confirm a search's choice and never rank its trials.

    Half the utterances of each speaker and class (every clip of an utterance on the same side), drawn
    with `seed`: the two halves hold the same speakers and classes, and no item is in both.
    """
    rng = np.random.default_rng([seed, 7919])
    utterances = items.drop_duplicates("utterance_id").sort_values("utterance_id")
    confirming: set[str] = set()
    for _, group in utterances.groupby(["speaker", "class"], sort=True):
        ids = group["utterance_id"].to_numpy()
        confirming.update(rng.choice(ids, len(ids) // 2 + rng.integers(0, 2) * (len(ids) % 2), replace=False))
    return items["utterance_id"].isin(confirming).to_numpy()
