"""Classification metrics, computed with scikit-learn: WA, UA, macro F1, per-class, confusion."""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """WA = overall accuracy; UA and macro F1 = means over the classes present in y_true (as stats.scores)."""
    # Imported here: the served model imports this module (through the training recipe) and never
    # scores, and scikit-learn's import is a tenth of `avemo predict`'s cold start.
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    labels = list(range(len(classes)))
    precision, recall, _, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = support > 0
    return {
        "wa": float(accuracy_score(y_true, y_pred)),
        "ua": float(recall[present].mean()) if present.any() else 0.0,
        "f1_macro": float(f1_score(y_true, y_pred, labels=np.flatnonzero(present), average="macro", zero_division=0))
        if present.any() else 0.0,
        "recall": {c: float(r) for c, r in zip(classes, recall)},
        "precision": {c: float(p) for c, p in zip(classes, precision)},
        "support": {c: int(s) for c, s in zip(classes, support)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
