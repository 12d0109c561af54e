"""Plots of a run (matplotlib, PNG): confusion matrix, learning curves, ROC curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from btc.io import atomic_write  # noqa: E402


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)
    return path


def confusion_matrix_png(matrix: list[list[int]], classes: list[str], path: Path, title: str = "") -> Path:
    """Counts with rows = true class, columns = predicted class; cells coloured by row share."""
    m = np.asarray(matrix, dtype=float)
    share = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(classes), 1.0 + 0.8 * len(classes)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _read_history(path: Path):
    import pandas as pd

    return pd.read_csv(path)


def learning_curves_png(history_csv: Path | Sequence[Path], path: Path, title: str = "") -> Path:
    """Loss, accuracy and learning rate per epoch from `history.csv` (one or several: CV folds).

    Solid lines are training, dashed lines validation (absent when the run had no validation
    split); several histories are overlaid in distinct colours, one per fold.
    """
    histories = [Path(history_csv)] if isinstance(history_csv, (str, Path)) else [Path(p) for p in history_csv]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, history in enumerate(histories):
        frame = _read_history(history)
        colour = colours[i % len(colours)]
        label = history.parent.name if len(histories) > 1 else ""
        epoch = frame["epoch"]
        for ax, key in ((axes[0], "loss"), (axes[1], "accuracy")):
            ax.plot(epoch, frame[f"train_{key}"], color=colour, marker=".",
                    label=f"{label} train".strip())
            if f"val_{key}" in frame and frame[f"val_{key}"].notna().any():
                ax.plot(epoch, frame[f"val_{key}"], color=colour, linestyle="--", marker=".",
                        label=f"{label} val".strip())
        axes[2].plot(epoch, frame["lr"], color=colour, marker=".", label=label or "lr")
    for ax, name in zip(axes, ("loss", "accuracy", "learning rate"), strict=True):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def roc_png(predictions_csv: Path | Sequence[Path], path: Path, title: str = "") -> Path:
    """One-vs-rest ROC curve per class (with its AUC) from `predictions.csv`'s probabilities.

    Several files (the folds of a CV) are pooled. A binary task draws the curve of each class as
    the positive one. A class without positive or without negative test images has no curve (its
    AUC is undefined) and is named as such in the legend.
    """
    import pandas as pd
    from sklearn.metrics import roc_auc_score, roc_curve

    files = [Path(predictions_csv)] if isinstance(predictions_csv, (str, Path)) else [Path(p) for p in predictions_csv]
    frame = pd.concat([pd.read_csv(f, keep_default_na=False) for f in files], ignore_index=True)
    classes = [c[len("prob_"):] for c in frame.columns if c.startswith("prob_")]
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for name in classes:
        truth = (frame["label"] == name).to_numpy()
        score = frame[f"prob_{name}"].to_numpy(dtype=float)
        if truth.all() or not truth.any():
            ax.plot([], [], label=f"{name} (AUC undefined)")
            continue
        fpr, tpr, _ = roc_curve(truth, score)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(truth, score):.3f})")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.legend(fontsize="small", loc="lower right")
    ax.set_title(title or "ROC, one vs rest")
    return _save(fig, path)


CONFUSION_PNG, CURVES_PNG, ROC_PNG = "confusion_matrix.png", "learning_curves.png", "roc.png"
PLOTS = (CONFUSION_PNG, CURVES_PNG, ROC_PNG)


def write_run_plots(run_dir: Path, overwrite: bool = True) -> dict[str, Path]:
    """Write confusion_matrix.png, learning_curves.png and roc.png into a run folder (atomically).

    Each plot is made from the file it needs (metrics.json, history.csv, predictions.csv) when
    that file exists. A CV folder (cv.json) gets the confusion matrix summed over its finished
    folds, their learning curves overlaid and the ROC of their pooled predictions. With
    `overwrite=False` only missing plots are written. Returns the plots now present, by name.
    """
    import json

    run_dir = Path(run_dir)
    if (run_dir / "cv.json").is_file():
        cv = json.loads((run_dir / "cv.json").read_text())
        folds = [run_dir / f"fold-{f['fold']}" for f in cv.get("folds", [])]
        fold_metrics = [f["metrics"] for f in cv.get("folds", [])]
        histories = [f / "history.csv" for f in folds if (f / "history.csv").is_file()]
        predictions = [f / "predictions.csv" for f in folds if (f / "predictions.csv").is_file()]
        matrix = (np.sum([np.asarray(m["confusion_matrix"]) for m in fold_metrics], axis=0).tolist()
                  if fold_metrics else None)
        classes = fold_metrics[0]["classes"] if fold_metrics else []
        title = f"{run_dir.name}: pooled over {len(fold_metrics)} folds"
    else:
        metrics_path = run_dir / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
        matrix = metrics["confusion_matrix"] if metrics else None
        classes = metrics["classes"] if metrics else []
        histories = [run_dir / "history.csv"] if (run_dir / "history.csv").is_file() else []
        predictions = [run_dir / "predictions.csv"] if (run_dir / "predictions.csv").is_file() else []
        title = run_dir.name + (f": accuracy {metrics['accuracy']:.4f}" if metrics else "")
    makers = {
        CONFUSION_PNG: (lambda t: confusion_matrix_png(matrix, classes, t, title=title)) if matrix else None,
        CURVES_PNG: (lambda t: learning_curves_png(histories, t, title=run_dir.name)) if histories else None,
        ROC_PNG: (lambda t: roc_png(predictions, t, title=f"{run_dir.name}: ROC, one vs rest")) if predictions else None,
    }
    written: dict[str, Path] = {}
    for name, make in makers.items():
        target = run_dir / name
        if target.is_file() and not overwrite:
            written[name] = target
        elif make is not None:
            written[name] = make(target)
    return written
