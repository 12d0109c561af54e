"""Class order and default tasks of a prepared dataset (dataset.yaml `classes`, `tasks`).

The Kaggle and Figshare sets share one index order of the tumour classes, so their tables join.
The default tasks are paper 001's hierarchy (presence, then the tumour's kind), where the labels
allow them.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Index order of the tumour classes shared by the Kaggle and Figshare datasets, so tables join.
CLASS_ORDER = ("glioma", "meningioma", "notumor", "pituitary")
TUMOR_CLASSES = ("glioma", "meningioma", "pituitary")


def ordered_classes(labels: Iterable[str], order: Iterable[str] = CLASS_ORDER) -> list[str]:
    """Present labels in `order` (then any others alphabetically)."""
    present = set(labels)
    known = [c for c in order if c in present]
    return known + sorted(present - set(known))


def default_tasks(classes: list[str]) -> dict[str, dict[str, list[str]]]:
    """Paper 001's two tasks, where the labels allow them (both need `notumor` and tumour images).

    `presence: {tumor: [...], no_tumor: [notumor]}` and, with two or more tumour classes,
    `tumor_type: {glioma: [glioma], ...}` over the tumour images only: the second stage of a
    presence → type chain (`btc two-stage`). Paper 001's second stage is the tumour's source
    (primary or metastasis), which needs metastasis labels (`btc prepare folder` with a labels
    file); on the public datasets the tumour type takes its place.
    """
    tumor = [c for c in classes if c in TUMOR_CLASSES]
    if "notumor" not in classes or not tumor:
        return {}
    tasks = {"presence": {"tumor": tumor, "no_tumor": ["notumor"]}}
    if len(tumor) >= 2:
        tasks["tumor_type"] = {c: [c] for c in tumor}
    return tasks
