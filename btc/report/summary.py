"""A Markdown summary of one CV folder: per-fold and mean ± std metrics, pooled confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from btc.engine.config import read_config
from btc.io import atomic_write_text

REPORT = "report.md"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def write_cv_report(cv_dir: Path, result: dict[str, Any], title: str) -> Path:
    """Write `report.md` into `cv_dir`, linking the pooled plots that `btc cv` wrote there."""
    folds = result["folds"]
    classes = folds[0]["metrics"]["classes"]
    config = read_config(cv_dir / f"fold-{folds[0]['fold']}" / "config.yaml")
    keys = [("accuracy", "accuracy"), ("kappa", "kappa"), ("auc", "AUC")]
    keys += [(f"macro.{k}", f"macro {k}") for k in ("precision", "recall", "specificity", "f1")]

    def get(m: dict[str, Any], dotted: str) -> float | None:
        for part in dotted.split("."):
            m = m.get(part) if isinstance(m, dict) else None
        return m

    def fmt(v: float | None) -> str:
        return "–" if v is None else f"{v:.4f}"

    lines = [f"# {title}", "",
             f"Model `{config.model}`, recipe `{config.recipe}` (overrides: image {config.image_size} px, "
             f"{config.epochs} epochs, batch {config.batch_size}, lr {config.lr:g}), seed {config.seed}, "
             f"device `{config.device}`. Protocol: {result['protocol']}.", "",
             _row(["fold"] + [name for _, name in keys]), _row(["---"] * (len(keys) + 1))]
    for f in folds:
        lines.append(_row([str(f["fold"])] + [fmt(get(f["metrics"], k)) for k, _ in keys]))
    lines.append(_row(["**mean ± std**"] + [f"{fmt(get(result['mean'], k))} ± {fmt(get(result['std'], k))}"
                                            for k, _ in keys]))
    lines += ["", "Per class (mean over folds):", "",
              _row(["class", "precision", "recall", "specificity", "F1"]), _row(["---"] * 5)]
    for name in classes:
        pc = result["mean"]["per_class"][name]
        lines.append(_row([name] + [fmt(pc[k]) for k in ("precision", "recall", "specificity", "f1")]))
    lines += ["", "![confusion matrix, pooled over folds](confusion_matrix.png)",
              "![learning curves of the folds](learning_curves.png)",
              "![ROC, pooled out-of-fold predictions](roc.png)", ""]
    return atomic_write_text(cv_dir / REPORT, "\n".join(lines))
