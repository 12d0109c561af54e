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
    """Counts with rows = true class, columns = predicted class; cells coloured by their share of
    the row (the recall of the class on the diagonal), with a colour bar."""
    m = np.asarray(matrix, dtype=float)
    share = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(2.2 + 0.9 * len(classes), 1.0 + 0.8 * len(classes)))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
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


def _epoch_axis(ax, last_epoch: int) -> None:
    """Whole epochs only, the first and last included, with half an epoch of margin (one epoch:
    a single tick at 1, not matplotlib's 0.945 … 1.050)."""
    ax.set_xlim(0.5, last_epoch + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("epoch")


def _lr_axis(ax, rates: list[float]) -> None:
    """A learning rate that spans more than a decade on a log scale; else linear from 0, so a
    constant rate is a flat line at a readable value (no offset notation)."""
    positive = [r for r in rates if r > 0]
    if positive and max(positive) / min(positive) > 10:
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, max(rates, default=1) * 1.25 or 1)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3), useOffset=False)


def learning_curves_png(histories: list[tuple[str, pd.DataFrame]], path: Path, title: str = "") -> Path:
    """`learning_curves_figure` as a PNG."""
    return _save(learning_curves_figure(histories, title), path)


def learning_curves_figure(histories: list[tuple[str, pd.DataFrame]], title: str = ""):
    """Loss, accuracy and learning rate per epoch from (label, history) pairs (several: CV folds).

    Training is drawn solid with round markers, validation dashed with hollow square markers
    (so a single epoch still tells them apart), absent when the run had no validation split;
    several histories are overlaid in distinct colours, one per fold, named by label. Epoch
    ticks are whole numbers; loss starts at 0 and accuracy runs from 0 to 1.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    last_epoch, rates, has_val = 1, [], False
    for i, (label, frame) in enumerate(histories):
        colour = colours[i % len(colours)]
        epoch = frame["epoch"]
        last_epoch = max(last_epoch, int(epoch.max()))
        for ax, key in ((axes[0], "loss"), (axes[1], "accuracy")):
            ax.plot(epoch, frame[f"train_{key}"], color=colour, marker="o", markersize=4,
                    label=f"{label} train".strip())
            val = pd.to_numeric(frame[f"val_{key}"], errors="coerce") if f"val_{key}" in frame else None
            if val is not None and val.notna().any():
                has_val = True
                ax.plot(epoch, val, color=colour, linestyle="--", marker="s", markersize=5,
                        markerfacecolor="white", label=f"{label} validation".strip())
        axes[2].plot(epoch, frame["lr"], color=colour, marker="o", markersize=4, label=label or "lr")
        rates += [float(r) for r in frame["lr"]]
    for ax, name in zip(axes, ("loss (cross-entropy)", "accuracy", "learning rate"), strict=True):
        _epoch_axis(ax, last_epoch)
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(bottom=0)
    axes[1].set_ylim(0, 1.02)
    _lr_axis(axes[2], rates)
    axes[0].legend(fontsize="small")
    if not has_val:
        axes[1].text(0.98, 0.04, "no validation split", transform=axes[1].transAxes, ha="right",
                     fontsize="small", color="grey")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def roc_png(predictions: Predictions, path: Path, title: str = "") -> Path:
    """`roc_figure` as a PNG."""
    return _save(roc_figure(predictions, title), path)


def roc_figure(predictions: Predictions, title: str = ""):
    """One-vs-rest ROC curve per class (with its AUC) from the predicted probabilities.

    A binary task draws the curve of each class as the positive one. A class without positive
    or without negative test images has no curve (its AUC is undefined) and is named as such in
    the legend. The chance diagonal is drawn over the curves, so a class at AUC 0.5 (a curve on
    the diagonal) does not hide it.
    """
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for i, name in enumerate(predictions.classes):
        truth = predictions.targets == i
        score = predictions.probs[:, i]
        if truth.all() or not truth.any():
            ax.plot([], [], label=f"{name} (AUC undefined)")
            continue
        fpr, tpr, _ = roc_curve(truth, score)
        ax.plot(fpr, tpr, linewidth=1.6, alpha=0.9, label=f"{name} (AUC {roc_auc_score(truth, score):.3f})")
    ax.plot([0, 1], [0, 1], color="black", linestyle=(0, (2, 3)), linewidth=1, zorder=5, label="chance (AUC 0.5)")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    ax.set_title(title or "ROC, one vs rest")
    return fig


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
