"""The audio network joined with the field's reference: a product of experts (issue 33).

The network reads the spectrogram, eGeMAPS + logistic regression reads openSMILE's functionals; each gives
class probabilities for a clip. The joined answer multiplies them and renormalises (sums their
log-probabilities): the combination that is right when the two read independent evidence, and one that
fits no weight on anybody's answers (a head fitted on the network's answers to its own training clips leans
on them, docs/recipe.md). The reference is fit on the very items the network trains on, so nothing that
tests the joined model chose any part of it. Items without functionals (the egemaps stage's skip table says
why) cannot be answered by the reference, so they leave every role here, recorded with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from avemo.baselines import fit_reference, read_egemaps
from avemo.references import REFERENCES

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from avemo.data.datasets import SpectrogramDataset
    from avemo.params import Baseline
    from avemo.training.recipe import Splits

#: The references a network can be joined with: the audio references on eGeMAPS alone whose model gives class
#: probabilities (logistic regression; the SVM answers classes only).
JOINABLE = tuple(name for name, r in REFERENCES.items()
                 if r.family == "audio" and r.features == ("egemaps",) and r.model == "logistic_regression")


def product_of_experts(*probabilities: np.ndarray) -> np.ndarray:
    """Rows of class probabilities multiplied across models and renormalised (a zero is floored at 1e-12)."""
    log = sum(np.log(np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)) for p in probabilities)
    log = log - log.max(axis=1, keepdims=True)
    joined = np.exp(log)
    return joined / joined.sum(axis=1, keepdims=True)


@dataclass
class JoinedReference:
    """The fitted reference of a joined model, and its class probabilities on the test items (their order)."""

    model: Pipeline
    test_probabilities: np.ndarray

    def answer(self, network_probabilities: np.ndarray) -> np.ndarray:
        """The joined model's class index per test item, given the network's probabilities on the same items."""
        return product_of_experts(network_probabilities, self.test_probabilities).argmax(axis=1)


def with_features(dataset: SpectrogramDataset, table: pd.DataFrame) -> SpectrogramDataset:
    """The role's items that have functionals; the others join its skipped items, with the reason."""
    keep = dataset.items["clip_id"].isin(table.index).to_numpy()
    if keep.all():
        return dataset
    subset = dataset.restricted(keep)
    gone = pd.DataFrame({"clip_id": dataset.items.loc[~keep, "clip_id"], "role": dataset.role,
                         "reason": "no eGeMAPS functionals (reports/egemaps_skipped says why): the joined model's "
                                   "reference cannot answer it"})
    subset.skipped = pd.concat([dataset.skipped, gone], ignore_index=True)
    return subset


def join_reference(name: str, egemaps_dir: Path, data: Splits, params: Baseline) -> tuple[JoinedReference, Splits]:
    """Fit the reference `name` on the training role's items (each once), answer the test role's; the roles
    restricted to items with functionals."""
    from avemo.training.recipe import Splits

    if name not in JOINABLE:
        raise ValueError(f"--join {name}: a network joins one of {list(JOINABLE)} (audio references on eGeMAPS)")
    table = read_egemaps(egemaps_dir)
    data = Splits(*(with_features(d, table) for d in (data.train, data.val, data.test)))
    train = data.train.items
    model = fit_reference(table.loc[train["clip_id"]].to_numpy(np.float64), train["target"].to_numpy(),
                          REFERENCES[name], params)
    probabilities = model.predict_proba(table.loc[data.test.items["clip_id"]].to_numpy(np.float64))
    return JoinedReference(model, probabilities), data
