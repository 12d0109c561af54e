"""Predictions on a split → `predictions.csv` and `metrics.json` of a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from btc.engine.metrics import compute_metrics
from btc.io import atomic_write, atomic_write_json

PREDICTIONS, METRICS = "predictions.csv", "metrics.json"


def predictions_frame(paths: list[str], targets: np.ndarray, probs: np.ndarray,
                      classes: list[str], predicted: np.ndarray | None = None) -> pd.DataFrame:
    """One row per image: path, true label, predicted label (default: the arg-max), then
    `prob_<class>` columns."""
    if predicted is None:
        predicted = probs.argmax(1) if len(probs) else np.zeros(0, dtype=int)
    frame = pd.DataFrame({
        "path": paths,
        "label": [classes[t] for t in targets],
        "predicted": [classes[p] for p in predicted],
    })
    for i, name in enumerate(classes):
        frame[f"prob_{name}"] = probs[:, i] if len(probs) else []
    return frame


def write_evaluation(run_dir: Path, paths: list[str], targets: np.ndarray, probs: np.ndarray,
                     classes: list[str], predicted: np.ndarray | None = None) -> dict[str, Any]:
    """Write predictions.csv and metrics.json; return the metrics."""
    metrics = compute_metrics(targets, probs, classes, predicted)
    frame = predictions_frame(paths, targets, probs, classes, predicted)
    atomic_write(run_dir / PREDICTIONS,
                 lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n", float_format="%.8g"))
    atomic_write_json(run_dir / METRICS, metrics)
    return metrics


def read_predictions(run_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(paths, true indices, probabilities, classes) from a run folder's predictions.csv."""
    frame = pd.read_csv(run_dir / PREDICTIONS, keep_default_na=False)
    classes = [c[len("prob_"):] for c in frame.columns if c.startswith("prob_")]
    index = {c: i for i, c in enumerate(classes)}
    targets = frame["label"].map(index).to_numpy(dtype=int)
    probs = frame[[f"prob_{c}" for c in classes]].to_numpy(dtype=float)
    return frame["path"].tolist(), targets, probs, classes
