"""Classification metrics, computed with scikit-learn: WA, UA, macro F1, per-class, confusion."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """WA = overall accuracy; UA = mean recall over the classes present in y_true."""
    labels = list(range(len(classes)))
    precision, recall, _, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = support > 0
    return {
        "wa": float(accuracy_score(y_true, y_pred)),
        "ua": float(recall[present].mean()) if present.any() else 0.0,
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "recall": {c: float(r) for c, r in zip(classes, recall)},
        "precision": {c: float(p) for c, p in zip(classes, precision)},
        "support": {c: int(s) for c, s in zip(classes, support)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


SUMMARY_METRICS = ("ua", "wa", "f1_macro")


def summarise_runs(results: dict[str, dict], kept: str) -> dict:
    """The metrics file of a stage: per metric the mean, the sample sd over runs (None for one run)
    and each run's value (runs are seeds, or a single deterministic fit); and the kept model's figures."""
    summary = {}
    for m in SUMMARY_METRICS:
        values = np.array([r[f"test_{m}"] for r in results.values()])
        summary[f"test_{m}"] = {"mean": float(values.mean()),
                                "sd": float(values.std(ddof=1)) if len(values) > 1 else None,
                                "per_seed": {str(s): float(r[f"test_{m}"]) for s, r in results.items()}}
    summary["seeds"] = [s for s in results if s != "none"]
    best = results[kept]
    summary["model"] = {"seed": kept, "mlflow_run_id": best["mlflow_run_id"],
                        **{f"test_{m}": best[f"test_{m}"] for m in SUMMARY_METRICS}, "test_recall": best["test_recall"]}
    return summary
