"""Test predictions → `predictions.csv` and `metrics.json` of a run folder (btc.runfolder)."""

from __future__ import annotations

from typing import Any

from btc.engine.metrics import compute_metrics
from btc.runfolder import Predictions, RunFolder


def write_evaluation(run: RunFolder, predictions: Predictions) -> dict[str, Any]:
    """Write the predictions and their metrics into `run`; return the metrics."""
    metrics = compute_metrics(predictions.targets, predictions.probs, predictions.classes,
                              predictions.predicted)
    run.write_predictions(predictions)
    run.write_metrics(metrics)
    return metrics
