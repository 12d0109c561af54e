"""Refuse corrupt metric values before the report formats them (a `metrics.json` or `cv.json`).

The report reads the numbers btc's `compute_metrics` writes: rates (accuracy, AUC, precision,
recall, specificity, F1) in [0, 1], kappa in [−1, 1], loss and counts ≥ 0, the confusion matrix
as rows of counts. A value that is not a number (`"abc"`, `[1]`, `true`) or lies outside its
range (an accuracy of 5 would print as 500.00 %) makes the file corrupt: `check_metrics` raises
one `BtcError` naming the file and the field, as `btc.runfolder` does for a file it cannot parse.
A missing value, None or NaN is "not available" (an undefined AUC), except the accuracy.
A CV's standard deviations are ≥ 0 and at most the width of their metric's range.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    for field, value in metric_fields(metrics):
        low, high = _bounds(field, spread)
        if _absent(value) and (spread or field not in REQUIRED):
            continue
        if not (_is_number(value) and low <= value <= high):
            raise _corrupt(source, where + field, value, _range_text(low, high))
    if not spread:
        _check_confusion(metrics, source, where)
