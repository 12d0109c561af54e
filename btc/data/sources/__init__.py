"""The raw datasets btc prepares, one module per source (DESIGN.md, Layout).

- `kaggle`: the Kaggle "Brain Tumor MRI Dataset", extreme-point crop (paper 004's preprocessing).
- `figshare`: the Figshare set of Cheng et al. (MATLAB v7.3), patient ids and official folds.
- `folder`: any class-per-folder tree, with a label map and task definitions (paper 001's tasks).
- `phantom`: synthetic MRI-like slices for the demo and the tests.

Each source module has `prepare_<source>(…) -> PrepareSummary` and `input_step(info)`, the
step that brings a new raw image to the images it wrote; `new_image_step` chooses it from a
prepared dataset's `dataset.yaml`, so inference needs no knowledge of any source.
"""

from __future__ import annotations

import importlib
from typing import Any

from btc.data.manifest import SOURCES

from .input_step import Identity, InputStep


def new_image_step(info: dict[str, Any]) -> InputStep:
    """The step that brings a new raw image to the image space of the dataset `info` describes.

    `info` is the parsed dataset.yaml (its `source` and `params`). A source btc does not know
    gives `Identity`, whose `describe()` says so.
    """
    source = str(info.get("source") or "")
    if source not in SOURCES:
        return Identity(reason=f"unknown source {source!r}: images used as they are" if source
                        else "dataset.yaml names no source: images used as they are")
    module = importlib.import_module(f"{__name__}.{source}")
    return module.input_step(info)


__all__ = ["SOURCES", "InputStep", "new_image_step"]
