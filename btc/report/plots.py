"""Plots of a finished run or CV folder (matplotlib, PNG): confusion matrix, learning curves, ROC.

A run folder gets the confusion matrix of its test predictions, its learning curves
(`history.csv`) and its one-vs-rest ROC curves; a CV folder gets the confusion matrix summed
over its finished folds, their learning curves overlaid and the ROC of their pooled out-of-fold
predictions. The folder is read through `btc/report/runs.py`; the PNGs are written atomically
under the names of `btc.runfolder.PLOTS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from btc.io import atomic_write  # noqa: E402
from btc.report.runs import Run, read_run  # noqa: E402
from btc.runfolder import (  # noqa: E402
    CONFUSION_PNG,
    CURVES_PNG,
    PLOTS,
    ROC_PNG,
    CVFolder,
    Predictions,
    RunFolder,
)


def _save(fig, path: Path) -> Path:
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


def confusion_matrix_png(matrix: list[list[int]] | np.ndarray, classes: list[str], path: Path,
                         title: str = "") -> Path:
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


def learning_curves_png(histories: list[tuple[str, pd.DataFrame]], path: Path, title: str = "") -> Path:
    """Loss, accuracy and learning rate per epoch from (label, history) pairs (several: CV folds).

    Solid lines are training, dashed lines validation (absent when the run had no validation
    split); several histories are overlaid in distinct colours, one per fold, named by label.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, frame) in enumerate(histories):
        colour = colours[i % len(colours)]
        epoch = frame["epoch"]
        for ax, key in ((axes[0], "loss"), (axes[1], "accuracy")):
            ax.plot(epoch, frame[f"train_{key}"], color=colour, marker=".", label=f"{label} train".strip())
            val = pd.to_numeric(frame[f"val_{key}"], errors="coerce") if f"val_{key}" in frame else None
            if val is not None and val.notna().any():
                ax.plot(epoch, val, color=colour, linestyle="--", marker=".", label=f"{label} val".strip())
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


def roc_png(predictions: Predictions, path: Path, title: str = "") -> Path:
    """One-vs-rest ROC curve per class (with its AUC) from the predicted probabilities.

    A binary task draws the curve of each class as the positive one. A class without positive
    or without negative test images has no curve (its AUC is undefined) and is named as such in
    the legend.
    """
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for i, name in enumerate(predictions.classes):
        truth = predictions.targets == i
        score = predictions.probs[:, i]
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


def _confusion(run: Run) -> np.ndarray | None:
    """The run's confusion matrix (a CV: summed over its folds), from its metrics."""
    matrices = [m.metrics.get("confusion_matrix") for m in run.members]
    if any(matrix is None for matrix in matrices):
        return None
    return np.sum([np.asarray(matrix) for matrix in matrices], axis=0)


def _makers(run: Run) -> dict[str, Callable[[Path], Path]]:
    """The plots that the run's files allow, by name: each a function of the target path."""
    name = run.path.name
    makers: dict[str, Callable[[Path], Path]] = {}
    matrix = _confusion(run)
    if matrix is not None:
        title = (f"{name}: pooled over {len(run.folds)} folds" if run.kind == "cv"
                 else f"{name}: accuracy {run.metrics['accuracy']:.4f}")
        makers[CONFUSION_PNG] = lambda target: confusion_matrix_png(matrix, run.classes, target, title=title)
    histories = run.histories()
    if histories:
        makers[CURVES_PNG] = lambda target: learning_curves_png(histories, target, title=name)
    if len(run.predictions.paths):
        makers[ROC_PNG] = lambda target: roc_png(run.predictions, target, title=f"{name}: ROC, one vs rest")
    return makers


def write_plots(run: Run, names: list[str] | tuple[str, ...] = PLOTS) -> list[Path]:
    """Draw the named plots of a run already read into its folder; returns those drawn.

    A plot whose input is absent (no `history.csv`: a two-stage chain) is not drawn.
    """
    makers = _makers(run) if names else {}
    return [makers[name](run.folder.plot(name)) for name in names if name in makers]


def write_run_plots(folder: RunFolder | CVFolder) -> list[Path]:
    """Draw every plot of a finished run or CV folder into it (replacing them); returns those drawn.

    An unfinished folder raises `BtcError` (btc.report.runs.read_run).
    """
    return write_plots(read_run(folder))


def missing_plots(folder: RunFolder | CVFolder) -> list[str]:
    """The names of the plots not yet in the folder."""
    return [name for name in PLOTS if not folder.plot(name).is_file()]


def write_missing_plots(folder: RunFolder | CVFolder) -> list[Path]:
    """Draw only the plots not yet in the folder (after train / cv / two-stage, on --resume)."""
    names = missing_plots(folder)
    return write_plots(read_run(folder), names) if names else []


def present_plots(folder: RunFolder | CVFolder) -> dict[str, Path]:
    """The plots now in the folder, by name (in `PLOTS` order)."""
    return {name: folder.plot(name) for name in PLOTS if folder.plot(name).is_file()}
