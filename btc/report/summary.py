"""A Markdown summary of one CV folder (`report.md`): per-fold and mean ± std of the summary
metrics, per-class means, and links to the pooled plots (`btc/report/plots.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from btc.io import atomic_write_text
from btc.runfolder import (
    CONFUSION_PNG,
    CURVES_PNG,
    REPORT,
    ROC_PNG,
    SUMMARY_METRICS,
    CVFolder,
    CVSummary,
    metric_value,
)

PER_CLASS = ("precision", "recall", "specificity", "f1")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _setup(config: dict[str, Any], protocol: str) -> str:
    """One sentence: model, recipe, the settings that override it, seed, device, protocol."""
    lr = config.get("lr")
    return (f"Model `{config.get('model', '?')}`, recipe `{config.get('recipe', '?')}` (overrides: image "
            f"{config.get('image_size', '?')} px, {config.get('epochs', '?')} epochs, batch "
            f"{config.get('batch_size', '?')}, lr {'?' if lr is None else format(lr, 'g')}), seed "
            f"{config.get('seed', '?')}, device `{config.get('device', '?')}`. Protocol: {protocol}.")


def write_cv_report(cv: CVFolder, summary: CVSummary, title: str) -> Path:
    """Write `report.md` into the CV folder, linking the pooled plots drawn there; returns its path."""
    if not summary.folds:
        raise ValueError("a CV report needs at least one finished fold")
    config = cv.fold(summary.folds[0].fold).read_config()
    classes = list(summary.folds[0].metrics.get("classes") or config.get("classes") or [])
    lines = [f"# {title}", "", _setup(config, summary.protocol), "",
             _row(["fold"] + [name for _, name in SUMMARY_METRICS]), _row(["---"] * (len(SUMMARY_METRICS) + 1))]
    for f in summary.folds:
        lines.append(_row([str(f.fold)] + [_fmt(metric_value(f.metrics, key)) for key, _ in SUMMARY_METRICS]))
    lines.append(_row(["**mean ± std**"] + [f"{_fmt(metric_value(summary.mean, key))} ± "
                                            f"{_fmt(metric_value(summary.std, key))}" for key, _ in SUMMARY_METRICS]))
    if summary.n_folds > len(summary.folds):
        lines += ["", f"Only {len(summary.folds)} of {summary.n_folds} folds have finished."]
    lines += ["", "Per class (mean over folds):", "",
              _row(["class", *PER_CLASS]), _row(["---"] * (len(PER_CLASS) + 1))]
    for name in classes:
        lines.append(_row([name] + [_fmt(metric_value(summary.mean, ("per_class", name, k))) for k in PER_CLASS]))
    lines += ["", f"![confusion matrix, pooled over folds]({CONFUSION_PNG})",
              f"![learning curves of the folds]({CURVES_PNG})",
              f"![ROC, pooled out-of-fold predictions]({ROC_PNG})", ""]
    return atomic_write_text(cv.path / REPORT, "\n".join(lines))
