"""A Markdown summary of one CV folder (`report.md`, written by `btc demo`): per-fold and
mean ± std of the summary metrics, the accuracy of the pooled out-of-fold predictions with its
95 % CI, per-class means, and links to the pooled plots (`btc/report/plots.py`).

Numbers follow `btc report` (`btc/report/render.py`): rates in percent with two decimals, kappa
and AUC as plain numbers, one CI notation `95 % CI [a, b]`; the header says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from btc.io import atomic_write_text
from btc.report.render import CI_TEXT, UNITS, ci_text, fmt_value
from btc.report.runs import read_cv
from btc.report.tables import metric_kind
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


def _fmt(metrics: dict[str, Any] | None, key: tuple[str, ...]) -> str:
    """A metric in display units (rates: percent, two decimals), or – when absent."""
    value = metric_value(metrics or {}, key)
    kind = metric_kind(key)
    return fmt_value(None if value is None else value * (100.0 if kind == "percent" else 1.0), kind)


def _setup(config: dict[str, Any], protocol: str) -> str:
    """Model, recipe, seed, device, protocol, and how the run departs from its recipe (the
    provenance's deviations; a run without provenance: its main settings)."""
    provenance = config.get("provenance")
    deviations = provenance.get("deviations") if isinstance(provenance, dict) else None
    if deviations is None:
        lr = config.get("lr")
        settings = (f"image {config.get('image_size', '?')} px, {config.get('epochs', '?')} epochs, batch "
                    f"{config.get('batch_size', '?')}, lr {'?' if lr is None else format(lr, 'g')}")
    else:
        settings = "; ".join(str(d) for d in deviations) or "none"
    return (f"Model `{config.get('model', '?')}`, recipe `{config.get('recipe', '?')}`, seed {config.get('seed', '?')}, "
            f"device `{config.get('device', '?')}`. Protocol: {protocol}. Settings that differ from the recipe: "
            f"{settings}.")


def write_cv_report(cv: CVFolder, summary: CVSummary, title: str) -> Path:
    """Write `report.md` into the CV folder, linking the pooled plots drawn there; returns its path."""
    if not summary.folds:
        raise ValueError("a CV report needs at least one finished fold")
    config = cv.fold(summary.folds[0].fold).read_config()
    classes = list(summary.folds[0].metrics.get("classes") or config.get("classes") or [])
    pooled = read_cv(cv)
    lines = [f"# {title}", "", _setup(config, summary.protocol), "", f"_{UNITS}_", "",
             _row(["fold"] + [name for _, name in SUMMARY_METRICS]), _row(["---"] * (len(SUMMARY_METRICS) + 1))]
    for f in summary.folds:
        lines.append(_row([str(f.fold)] + [_fmt(f.metrics, key) for key, _ in SUMMARY_METRICS]))
    lines.append(_row(["**mean ± std**"] + [f"{_fmt(summary.mean, key)} ± {_fmt(summary.std, key)}"
                                            for key, _ in SUMMARY_METRICS]))
    if summary.n_folds > len(summary.folds):
        lines += ["", f"Only {len(summary.folds)} of {summary.n_folds} folds have finished."]
    n = len(pooled.correct)
    lines += ["", f"All {n} out-of-fold test images pooled: accuracy {fmt_value(pooled.pooled_accuracy * 100, 'percent')}, "
              f"{ci_text(pooled.ci[0] * 100, pooled.ci[1] * 100)}.", "", f"_{CI_TEXT}_"]
    lines += ["", "Per class (mean over folds):", "",
              _row(["class", *PER_CLASS]), _row(["---"] * (len(PER_CLASS) + 1))]
    for name in classes:
        lines.append(_row([name] + [_fmt(summary.mean, ("per_class", name, k)) for k in PER_CLASS]))
    lines += ["", f"![confusion matrix, pooled over folds]({CONFUSION_PNG})",
              f"![learning curves of the folds]({CURVES_PNG})",
              f"![ROC, pooled out-of-fold predictions]({ROC_PNG})", ""]
    return atomic_write_text(cv.path / REPORT, "\n".join(lines))
