"""What produced a run, and how it departs from the paper's protocol (DESIGN.md, Provenance).

Every run folder records, in `config.yaml` under `provenance`: the initial weights (source,
file, sha256, whether that hash is the published one), the dataset fingerprint (the manifest's
sha256, the crop and size `btc prepare` applied), the protocol (split or folds), the device,
the versions, the seed, and `deviations`: one line per way the run differs from the recipe of
its paper. An empty list means the run followed the paper's protocol; `btc report` prints the
deviations next to every number it compares with a published one, so no Δ reads as a
reproduction when it is not one.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from typing import Any

import torch

from btc import __version__
from btc.data.manifest import MANIFEST
from btc.engine.config import RECIPES_DIR, TrainConfig, resolve_config

# fields that change how a run is computed but not what it measures
NOT_PROTOCOL = {"model", "recipe", "paper", "task", "seed", "device", "amp", "channels_last", "compile",
                "deterministic", "pretrained", "task_lr", "snapshot_every"}


def paper_wants_pretrained(config: TrainConfig, base: TrainConfig) -> bool:
    """Whether the paper starts this model from ImageNet weights: its recipe says so and the
    registry knows where they come from (paper 002 trains DSConv-CBAM and the MLP from scratch)."""
    from btc.models.weights import pretrained_source

    return bool(base.pretrained) and pretrained_source(config.model) is not None


def recipe_config(config: TrainConfig) -> TrainConfig:
    """The paper's protocol for this model and task: its recipe with no override."""
    return resolve_config(config.model, config.recipe if _is_paper_recipe(config.recipe) else None,
                          config.task, {"device": config.device, "seed": config.seed})


def _is_paper_recipe(recipe: str) -> bool:
    return (RECIPES_DIR / f"{recipe}.yaml").is_file()


def deviations(config: TrainConfig, weights: dict[str, Any], dataset: dict[str, Any],
               evaluation: str | None = None) -> list[str]:
    """How `config` (with these initial weights, on this dataset) departs from the paper.

    `evaluation` is how the run's test images were chosen: `official` (the manifest's split),
    `holdout` (a seeded test fraction) or `cv` (a fold of a cross-validation); by default what
    `config.split` asks for. Only the settings that evaluation uses are compared: a CV's test
    fraction, or a single run's fold count, changes nothing and is no deviation.
    """
    out: list[str] = []
    paper_recipe = _is_paper_recipe(config.recipe)
    if not paper_recipe:
        out.append(f"recipe {config.recipe!r} is not one of btc's paper recipes")
    base = recipe_config(config)
    evaluation = evaluation or config.split
    ours, theirs = config.to_dict(), base.to_dict()
    unused = EVALUATION_FIELDS - ({"folds"} if evaluation == "cv" else
                                  {"split_column"} if evaluation == "official" else {"test_fraction"})
    if paper_recipe:
        out += _evaluation_deviation(evaluation, config, base)
        if evaluation == "cv" and base.paper not in PAPER_CROSS_VALIDATES:
            unused.add("folds")  # said in the cross-validation's line
        elif evaluation != "cv" and evaluation != base.split:
            unused.add("test_fraction")  # said in the hold-out's line
    for name in ours:
        if name == "resize_size" and config.crop == "none":
            continue  # equal to image_size without a random crop: said once
        if name not in NOT_PROTOCOL and name not in unused and ours[name] != theirs[name]:
            out.append(PROTOCOL_TEXT.get((name, ours[name])) or
                       f"{name.replace('_', ' ')} {_text(ours[name])} (paper: {_text(theirs[name])})")
    wanted = paper_wants_pretrained(config, base)
    source = str(weights.get("source", "random"))
    if wanted and source == "random":
        out.append("random initialisation (paper: ImageNet weights)")
    elif source == "file":
        out.append(f"initial weights from {weights.get('file')} (paper: "
                   f"{'ImageNet weights' if wanted else 'random initialisation'})")
    elif source != "random" and not weights.get("verified", False):
        out.append(f"ImageNet weights {Path(str(weights.get('file', ''))).name} not verified against the published hash")
    crop = dataset.get("crop")
    if crop and crop != "unknown" and base.paper in PAPER_CROP and crop != PAPER_CROP[base.paper]:
        out.append(f"images prepared with crop {crop} (paper: {PAPER_CROP[base.paper]})")
    size = dataset.get("size")
    if isinstance(size, int) and size < config.resize_size:
        out.append(f"images prepared at {size} px, enlarged to {config.resize_size} px "
                   f"(paper: {base.resize_size} px images)")
    return out


def _evaluation_deviation(evaluation: str, config: TrainConfig, base: TrainConfig) -> list[str]:
    """How the run's test images were chosen, against the paper's way (see `deviations`)."""
    if evaluation == "cv":
        if base.paper in PAPER_CROSS_VALIDATES:
            return []
        return [f"{config.folds}-fold cross-validation (paper: {SPLIT_TEXT[base.split]})"]
    if evaluation == base.split:
        return []
    if evaluation == "holdout":
        return [f"a seeded hold-out test set, test fraction {config.test_fraction:g} (paper: {SPLIT_TEXT[base.split]})"]
    return [f"the dataset's official split (paper: {SPLIT_TEXT[base.split]})"]


# the fields of each way of choosing the test images; a run uses those of its evaluation only
EVALUATION_FIELDS = {"split", "folds", "test_fraction", "split_column"}
SPLIT_TEXT = {"official": "the dataset's official Training/Testing split", "holdout": "a random hold-out test set"}
# the papers that cross-validated (paper 001: ten folds, Tables III-IV; paper 003: five, Table 4)
PAPER_CROSS_VALIDATES = {"001", "003"}


PROTOCOL_TEXT = {
    ("protocol", "leak-free"): "leak-free splits: patients and duplicate groups on one side (paper: image-level splits)",
}

# the crop each paper applied before resizing (paper 004: Kaggle's extreme-point crop)
PAPER_CROP = {"002": "none", "004": "extreme"}


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def dataset_fingerprint(root: Path, info: dict[str, Any]) -> dict[str, Any]:
    """The prepared dataset as a run used it: manifest hash, source, crop and size."""
    manifest = root / MANIFEST
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else ""
    params = info.get("params") or {}
    source = str(info.get("source", ""))
    crop = params.get("crop") or ("extreme" if source == "kaggle" else "none" if source else "unknown")
    return {"manifest_sha256": digest, "source": source, "crop": str(crop), "size": params.get("size")}


def device_name(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    return f"{device.type}: {name}"


def versions() -> dict[str, str]:
    import numpy
    import sklearn

    return {"btc": __version__, "torch": str(torch.__version__), "cuda": str(torch.version.cuda),
            "numpy": numpy.__version__, "scikit-learn": sklearn.__version__, "python": platform.python_version()}
