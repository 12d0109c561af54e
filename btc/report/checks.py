"""Refuse corrupt metric values before the report formats them (a `metrics.json` or `cv.json`).

The report reads the numbers btc's `compute_metrics` writes: rates (accuracy, AUC, precision,
recall, specificity, F1) in [0, 1], kappa in [−1, 1], loss and counts ≥ 0, the confusion matrix
as rows of counts. A value that is not a number (`"abc"`, `[1]`, `true`) or lies outside its
range (an accuracy of 5 would print as 500.00 %) makes the file corrupt: `check_metrics` raises
one `BtcError` naming the file and the field, as `btc.runfolder` does for a file it cannot parse.
A missing value, None or NaN is "not available" (an undefined AUC), except the accuracy.
A CV's standard deviations are ≥ 0 and at most the width of their metric's range.

**The numbers must follow from the predictions** (`check_against_predictions`): every metric
that is a function of the confusion matrix (the count, accuracy, Cohen's kappa, each class's
precision, recall, specificity, F1 and support, their macro and weighted averages, the matrix
itself) is recomputed from the run's `predictions.csv` (its true and predicted labels) and must
equal what `metrics.json`, or a CV fold's entry in `cv.json`, says (within 1e-6). A CV's mean and
standard deviation (ddof 1) must be those of its folds (`check_cv_aggregate`). A file edited by
hand, or copied from another run, thus stops the report with one line instead of printing a
number the predictions do not give. AUC and loss, which need the probabilities at full
precision, are range-checked only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from btc.errors import BtcError

RATES = ("accuracy", "auc", "precision", "recall", "specificity", "f1")
BOUNDS: dict[str, tuple[float, float]] = {**{name: (0.0, 1.0) for name in RATES}, "kappa": (-1.0, 1.0),
                                          "loss": (0.0, math.inf), "n": (0.0, math.inf),
                                          "support": (0.0, math.inf)}
TOP_LEVEL = ("accuracy", "kappa", "auc", "loss", "n")
AVERAGES = ("macro", "weighted")
REQUIRED = ("accuracy",)
REMEDY = "delete it and run the same command again (btc train: with --resume; btc cv resumes by itself)"
SHOWN = 40  # characters of a corrupt value quoted in the message


def metric_fields(metrics: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(dotted field, value) of every number the report reads: `accuracy`, `macro.recall`,
    `per_class.glioma.f1` …"""
    for key in TOP_LEVEL:
        if key in metrics:
            yield key, metrics[key]
    groups = [(group, metrics.get(group)) for group in AVERAGES]
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict):
        groups += [(f"per_class.{name}", values) for name, values in per_class.items()]
    for prefix, values in groups:
        if isinstance(values, dict):
            yield from ((f"{prefix}.{key}", value) for key, value in values.items() if key in BOUNDS)


def _bounds(field: str, spread: bool) -> tuple[float, float]:
    low, high = BOUNDS[field.rsplit(".", 1)[-1]]
    return (0.0, high - low) if spread else (low, high)


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool; an int too large for a float is no number either)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _range_text(low: float, high: float) -> str:
    return f"a number ≥ {low:g}" if math.isinf(high) else f"a number in [{low:g}, {high:g}]"


def _corrupt(source: Path, field: str, value: Any, wanted: str) -> BtcError:
    shown = repr(value)
    shown = shown if len(shown) <= SHOWN else shown[:SHOWN] + "…"
    return BtcError(f"{source}: {field} is {shown}, not {wanted}: the file is corrupt; {REMEDY}")


def _check_confusion(metrics: dict[str, Any], source: Path, where: str) -> None:
    matrix = metrics.get("confusion_matrix")
    if matrix is None:
        return
    rows_ok = isinstance(matrix, list) and all(isinstance(row, list) for row in matrix)
    if not (rows_ok and len({len(row) for row in matrix}) <= 1
            and all(_is_number(v) and float(v).is_integer() and v >= 0 for row in matrix for v in row)):
        raise _corrupt(source, f"{where}confusion_matrix", matrix, "rows of counts of equal length")


def check_metrics(metrics: dict[str, Any], source: Path, where: str = "", spread: bool = False) -> None:
    """Raise a one-line `BtcError` naming `source` and the field when a value the report reads is
    corrupt. `where` prefixes the field ("mean ", "fold 2 "); `spread`: standard deviations."""
    classes = metrics.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise _corrupt(source, where + "classes", classes, "a list of class names")
    for group in ("per_class", *AVERAGES):
        values = metrics.get(group)
        if values is not None and not isinstance(values, dict):
            raise _corrupt(source, where + group, values, "a mapping")
    for name, values in (metrics.get("per_class") or {}).items():
        if not isinstance(values, dict):
            raise _corrupt(source, f"{where}per_class.{name}", values, "a mapping of metrics")
    for field, value in metric_fields(metrics):
        low, high = _bounds(field, spread)
        if _absent(value) and (spread or field not in REQUIRED):
            continue
        if not (_is_number(value) and low <= value <= high):
            raise _corrupt(source, where + field, value, _range_text(low, high))
    if not spread:
        _check_confusion(metrics, source, where)


TOLERANCE = 1e-6
DISAGREE = ("the two files disagree (one was edited, or copied from another run); delete both and run the "
            "same command again (btc train: with --resume; btc cv resumes by itself)")


def confusion_metrics(targets: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict[str, Any]:
    """The metrics of `metrics.json` that the confusion matrix alone gives (rows: true class),
    with `btc.engine.metrics.compute_metrics`'s definitions (tests: equal to it)."""
    cm = np.bincount(np.asarray(targets, dtype=int) * n_classes + np.asarray(predicted, dtype=int),
                     minlength=n_classes * n_classes).reshape(n_classes, n_classes).astype(float)
    n = cm.sum()
    tp = np.diag(cm)
    support, called = cm.sum(1), cm.sum(0)

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)

    precision, recall = ratio(tp, called), ratio(tp, support)
    specificity = ratio(n - support - called + tp, n - support)
    f1 = ratio(2 * precision * recall, precision + recall)
    weights = support / n if n else np.zeros(n_classes)
    expected = float(support @ called) / n**2 if n else 0.0
    observed = float(tp.sum() / n) if n else float("nan")
    kappa = (observed - expected) / (1 - expected) if n and expected < 1 else None

    def average(w: np.ndarray) -> dict[str, float]:
        return {"precision": float(w @ precision), "recall": float(w @ recall),
                "specificity": float(w @ specificity), "f1": float(w @ f1)}

    return {"n": int(n), "accuracy": observed, "kappa": kappa, "confusion_matrix": cm.astype(int).tolist(),
            "per_class": [{"precision": float(precision[i]), "recall": float(recall[i]),
                           "specificity": float(specificity[i]), "f1": float(f1[i]), "support": int(support[i])}
                          for i in range(n_classes)],
            "macro": average(np.full(n_classes, 1.0 / n_classes)), "weighted": average(weights)}


def _differs(recorded: Any, computed: Any) -> bool:
    if _absent(recorded) or computed is None:
        return False  # not available on one side (an undefined kappa): nothing to compare
    return not _is_number(recorded) or abs(float(recorded) - float(computed)) > TOLERANCE


def check_against_predictions(metrics: dict[str, Any], targets: np.ndarray, predicted: np.ndarray,
                              classes: list[str], source: Path, predictions_source: Path, where: str = "") -> None:
    """Raise a one-line `BtcError` when a metric of `metrics` (from `source`) is not what the
    predictions (from `predictions_source`) give (see the module docstring). `classes` are the
    predictions' class order; the metrics' own order (`classes`), when recorded, is followed."""
    order = metrics.get("classes")
    if isinstance(order, list) and order != list(classes):
        if sorted(map(str, order)) != sorted(classes):
            raise BtcError(f"{source}: {where}classes {order} are not those of {predictions_source} "
                           f"({list(classes)}): {DISAGREE}")
        position = np.array([order.index(c) for c in classes])
        targets, predicted, classes = position[targets], position[predicted], list(order)
    computed = confusion_metrics(targets, predicted, len(classes))

    def fail(field: str, recorded: Any, value: Any) -> BtcError:
        shown = repr(recorded) if len(repr(recorded)) <= SHOWN else repr(recorded)[:SHOWN] + "…"
        value = f"{value:.6g}" if isinstance(value, float) else value
        return BtcError(f"{source}: {where}{field} is {shown} but {predictions_source} gives {value} "
                        f"on its {computed['n']} images: {DISAGREE}")

    for field in ("n", "accuracy", "kappa"):
        if field in metrics and _differs(metrics[field], computed[field]):
            raise fail(field, metrics[field], computed[field])
    if metrics.get("confusion_matrix") is not None and metrics["confusion_matrix"] != computed["confusion_matrix"]:
        raise fail("confusion_matrix", metrics["confusion_matrix"], computed["confusion_matrix"])
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict):
        for i, name in enumerate(classes):
            for key, value in (per_class.get(name) or {}).items():
                if key in computed["per_class"][i] and _differs(value, computed["per_class"][i][key]):
                    raise fail(f"per_class.{name}.{key}", value, computed["per_class"][i][key])
    for group in AVERAGES:
        for key, value in (metrics.get(group) or {}).items() if isinstance(metrics.get(group), dict) else ():
            if key in computed[group] and _differs(value, computed[group][key]):
                raise fail(f"{group}.{key}", value, computed[group][key])


def check_cv_aggregate(mean: dict[str, Any], std: dict[str, Any], folds: list[dict[str, Any]], source: Path) -> None:
    """A CV's `mean` and `std` (ddof 1) of every top-level and averaged metric must be those of
    its `folds`' metrics (a one-line `BtcError` otherwise)."""
    per_fold = [dict(metric_fields(f)) for f in folds]
    recorded_std = dict(metric_fields(std))
    for field, recorded_mean in metric_fields(mean):
        values = [float(v) for v in (fold.get(field) for fold in per_fold) if _is_number(v) and not _absent(v)]
        if not values:
            continue
        expected_mean = float(np.mean(values))
        expected_std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        for label, recorded, expected in (("mean", recorded_mean, expected_mean),
                                          ("std", recorded_std.get(field), expected_std)):
            if _differs(recorded, expected):
                raise BtcError(f"{source}: {label} {field} is {recorded!r} but its {len(values)} folds give "
                               f"{expected:.6g}: the file was edited; delete it and run the same command "
                               "again (btc cv rewrites it from the folds)")


NUMERIC_CONFIG = ("lr", "epochs", "batch_size", "image_size", "seed", "weight_decay", "momentum")
CONFIG_REMEDY = "the file was edited: restore it (btc writes it when the run starts)"


def check_config(config: dict[str, Any], source: Path) -> None:
    """The `config.yaml` fields the report reads have btc's types: a one-line `BtcError` otherwise
    (the provenance block a mapping, its deviations a list of texts, its dataset and weights
    mappings; the class list; the numeric settings the tables print)."""

    def corrupt(field: str, value: Any, wanted: str) -> BtcError:
        shown = repr(value) if len(repr(value)) <= SHOWN else repr(value)[:SHOWN] + "…"
        return BtcError(f"{source}: {field} is {shown}, not {wanted}; {CONFIG_REMEDY}")

    provenance = config.get("provenance")
    if provenance is not None:
        if not isinstance(provenance, dict):
            raise corrupt("provenance", provenance, "a mapping")
        deviations = provenance.get("deviations")
        if deviations is not None and not (isinstance(deviations, list) and all(isinstance(d, str) for d in deviations)):
            raise corrupt("provenance.deviations", deviations, "a list of texts")
        for key in ("dataset", "initial_weights"):
            if provenance.get(key) is not None and not isinstance(provenance[key], dict):
                raise corrupt(f"provenance.{key}", provenance[key], "a mapping")
    classes = config.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise corrupt("classes", classes, "a list of class names")
    for key in NUMERIC_CONFIG:
        if config.get(key) is not None and not _is_number(config[key]):
            raise corrupt(key, config[key], "a number")


HISTORY_BOUNDS = {"epoch": (0.0, math.inf), "train_loss": (0.0, math.inf), "train_accuracy": (0.0, 1.0),
                  "val_loss": (0.0, math.inf), "val_accuracy": (0.0, 1.0)}


def check_history(history: Any, source: Path) -> None:
    """Every value of `history.csv`'s known columns is a number in its range (a one-line
    `BtcError` otherwise: a training accuracy of 5 would print as 500.00 %)."""
    for column, (low, high) in HISTORY_BOUNDS.items():
        if column not in history.columns:
            continue
        for row, value in enumerate(history[column].tolist()):
            if isinstance(value, str):  # a column with an empty cell is read as text
                if not value.strip():
                    continue
                try:
                    value = float(value)
                except ValueError:
                    pass
            if _absent(value):
                continue
            if not (_is_number(value) and low <= value <= high):
                raise BtcError(f"{source}: {column} in row {row + 2} is {value!r}, not {_range_text(low, high)}: "
                               f"the file is corrupt; {REMEDY}")
