"""Checkpoints, read in one place: `checkpoint-{best,last}.pt` of a run folder.

A checkpoint is a dict of tensors and plain values (the state dict, the resolved config, the
classes, the task, the epoch; `checkpoint-last.pt` adds the optimiser, scheduler and scaler
states and the history), saved atomically by the training loop and always read with
`weights_only=True`, so a file from elsewhere cannot run code. Every failure to read one is a
one-line `BtcError` naming the file and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from btc.engine.config import TrainConfig
from btc.errors import BtcError
from btc.runfolder import BEST

REQUIRED = ("model", "config", "classes")


def read_state(path: str | Path, *, map_location: str | torch.device = "cpu",
               required: tuple[str, ...] = REQUIRED) -> dict[str, Any]:
    """The checkpoint's dict, or a one-line error for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise BtcError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise BtcError(f"{path} is empty (an interrupted save?): delete it and run again "
                       "(btc train --resume, or btc cv, continues from the last complete checkpoint)")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # torch.save writes a zip archive
        raise BtcError(f"{path} is not a readable checkpoint (not a file written by torch.save); "
                       f"use {BEST} of a btc run folder")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 — torch raises many types for a cut or foreign file
        reason = "it holds objects other than tensors" if "weights_only" in str(exc) else "it is truncated or corrupt"
        raise BtcError(f"{path} is not a readable checkpoint ({reason}); delete it and run again "
                       "(btc train --resume, or btc cv, continues from the last complete checkpoint)") from None
    missing = [k for k in required if not (isinstance(state, dict) and k in state)]
    if missing:
        raise BtcError(f"{path} is not a btc checkpoint (missing {', '.join(missing)}; "
                       f"use {BEST} of a run folder)")
    return state


@dataclass
class Checkpoint:
    """A trained model with the config and classes it was trained with (CPU, eval mode)."""

    path: Path
    model: nn.Module
    config: TrainConfig
    classes: list[str]
    task: str
    epoch: int                  # 0-based index of the epoch whose weights these are

    @property
    def epochs_trained(self) -> int:
        return self.epoch + 1


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Build the checkpoint's model and load its weights."""
    from btc.models import create_model

    path = Path(path)
    state = read_state(path)
    try:
        config = TrainConfig.from_dict(dict(state["config"]))
    except (BtcError, TypeError, ValueError) as e:
        raise BtcError(f"{path}: its config is not btc's ({e})") from None
    classes = [str(c) for c in state["classes"]]
    model = create_model(config.model, len(classes), input_size=config.image_size)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise BtcError(f"{path}: weights do not fit model '{config.model}': {first}") from None
    model.eval()
    return Checkpoint(path, model, config, classes, str(state.get("task", config.task)),
                      int(state.get("epoch", -1)))
