"""Classification metrics of the four papers, from predictions (scikit-learn underneath).

Paper 001 Tables III–IV: recall, specificity, precision, F1, accuracy. Paper 002 Table 3: per
class precision, recall, F1, specificity, their average, Cohen's kappa and accuracy. Paper 003
Tables 2–5: accuracy, per class precision / recall / F1. Paper 004: accuracy and loss.

Specificity has no scikit-learn function: for class c it is TN / (TN + FP) read off the
one-vs-rest confusion matrix (`multilabel_confusion_matrix`).

A metric that is undefined on the given predictions (AUC with one class present, Cohen's kappa
when truth and prediction share a single label) is None; scikit-learn's
`UndefinedMetricWarning` for it is silenced here, so it never interrupts a command's output.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    log_loss,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

PER_CLASS_KEYS = ("precision", "recall", "specificity", "f1", "support")


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b > 0)


def specificity_per_class(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """TN / (TN + FP) for each class, one-vs-rest."""
    mcm = multilabel_confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))
    tn, fp = mcm[:, 0, 0].astype(float), mcm[:, 0, 1].astype(float)
    return _safe_div(tn, tn + fp)


def roc_auc(y_true: np.ndarray, probs: np.ndarray) -> float | None:
    """One-vs-rest macro ROC AUC (binary: AUC of the positive class); None when undefined."""
    n_classes = probs.shape[1]
    present = np.unique(y_true)
    if len(present) < 2:
        return None
    if n_classes == 2:
        return float(roc_auc_score(y_true, probs[:, 1]))
    if len(present) < n_classes:
        # AUC is only defined for classes present in y_true: average over those.
        scores = [roc_auc_score(y_true == c, probs[:, c]) for c in present]
        return float(np.mean(scores))
    return float(roc_auc_score(y_true, probs, multi_class="ovr", average="macro", labels=list(range(n_classes))))


def compute_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str],
                    y_pred: np.ndarray | None = None) -> dict[str, Any]:
    """All metrics of the run-folder contract (`metrics.json`) from true indices and probabilities.

    `probs` is (N, C) with rows summing to 1; the prediction is its arg-max unless `y_pred`
    gives it (a two-stage chain decides stage by stage, not by the arg-max of the product).
    Undefined metrics are None, without scikit-learn's warning.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return _compute_metrics(y_true, probs, classes, y_pred)


def _compute_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str],
                     y_pred: np.ndarray | None) -> dict[str, Any]:
    y_true = np.asarray(y_true, dtype=int)
    probs = np.asarray(probs, dtype=float)
    n_classes = len(classes)
    labels = list(range(n_classes))
    y_pred = probs.argmax(axis=1) if y_pred is None else np.asarray(y_pred, dtype=int)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    specificity = specificity_per_class(y_true, y_pred, n_classes)
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "specificity": float(specificity[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    }
    weights = support / support.sum() if support.sum() else np.zeros(n_classes)

    def average(w: np.ndarray) -> dict[str, float]:
        return {
            "precision": float(np.dot(w, precision)),
            "recall": float(np.dot(w, recall)),
            "specificity": float(np.dot(w, specificity)),
            "f1": float(np.dot(w, f1)),
        }

    kappa = cohen_kappa_score(y_true, y_pred, labels=labels) if len(y_true) else float("nan")
    clipped = np.clip(probs, 1e-12, 1.0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "kappa": None if math.isnan(kappa) else float(kappa),
        "auc": roc_auc(y_true, probs),
        "loss": float(log_loss(y_true, clipped / clipped.sum(1, keepdims=True), labels=labels)),
        "n": int(len(y_true)),
        "classes": list(classes),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "per_class": per_class,
        "macro": average(np.full(n_classes, 1.0 / n_classes)),
        "weighted": average(weights),
    }


def _numeric_leaves(d: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], float]:
    leaves: dict[tuple[str, ...], float] = {}
    for key, value in d.items():
        if key in ("classes", "confusion_matrix"):
            continue
        if isinstance(value, dict):
            leaves.update(_numeric_leaves(value, prefix + (key,)))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            leaves[prefix + (key,)] = float(value)
    return leaves


def _nest(flat: dict[tuple[str, ...], float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def aggregate(metrics: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Mean and (sample, ddof=1) standard deviation over folds, with the metrics' own keys.

    Only numeric values are aggregated; a value missing in some fold (e.g. an undefined AUC) is
    averaged over the folds that have it.
    """
    leaves = [_numeric_leaves(m) for m in metrics]
    keys = list(dict.fromkeys(k for leaf in leaves for k in leaf))
    mean, std = {}, {}
    for key in keys:
        values = np.array([leaf[key] for leaf in leaves if key in leaf], dtype=float)
        mean[key] = float(values.mean())
        std[key] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return _nest(mean), _nest(std)
