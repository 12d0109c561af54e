"""Optional TensorBoard logging of the per-epoch history (`btc train|cv --tensorboard`).

`history.csv` is the run's record, and stays the source of truth (plots, reports and `--resume`
read it); this module only mirrors each of its rows, as it is written, into TensorBoard event
files for users who watch long runs with `tensorboard --logdir runs`. The scalars are the
history's own columns: `loss/train`, `loss/validation`, `accuracy/train`, `accuracy/validation`
(validation only when the run has a validation split), `lr` and `seconds`, at step = epoch.

The events go to `tensorboard/` inside the run folder (a CV: inside each `fold-k/`, so the folds
are separate curves). A run that starts again at epoch 1 (`--force`, or a fold trained again)
first deletes the event files it wrote there before, so TensorBoard never shows two runs in one;
a resumed run appends the epochs it adds.

It is switched on for the process and the processes it starts (`--parallel-folds`, torchrun
workers inherit it) through the environment variable `BTC_TENSORBOARD=1`; the engine's epoch
hook (`btc/engine/runs.py`) calls `log_epoch`, which does nothing when it is off. It needs the
`tensorboard` package: `pip install -e '.[tensorboard]'`.
"""

from __future__ import annotations

import atexit
import math
import os
from pathlib import Path
from typing import Any

from btc.errors import BtcError
from btc.runfolder import HISTORY

ENV = "BTC_TENSORBOARD"
LOG_DIR = "tensorboard"              # inside the run folder
EVENTS_PREFIX = "events.out.tfevents."
SCALARS = {"train_loss": "loss/train", "val_loss": "loss/validation", "train_accuracy": "accuracy/train",
           "val_accuracy": "accuracy/validation", "lr": "lr", "seconds": "seconds"}

_writers: dict[Path, Any] = {}


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise BtcError("--tensorboard needs the tensorboard package: pip install -e '.[tensorboard]' "
                       f"({HISTORY} is written either way)") from None
    return SummaryWriter


def enable() -> None:
    """Log every epoch of this process and of those it starts; a `BtcError` without tensorboard."""
    _summary_writer()
    os.environ[ENV] = "1"


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


def log_dir(run_path: str | Path) -> Path:
    return Path(run_path) / LOG_DIR


def log_epoch(run_path: str | Path, row: dict[str, Any]) -> None:
    """Mirror one history row (as written to history.csv) into the run's event files."""
    if not enabled():
        return
    folder = log_dir(run_path)
    writer = _writers.get(folder)
    if writer is None or int(row["epoch"]) == 1:
        if writer is not None:
            writer.close()
        if int(row["epoch"]) == 1 and folder.is_dir():  # a fresh start: the earlier events are not this run's
            for old in folder.glob(f"{EVENTS_PREFIX}*"):
                old.unlink()
        writer = _writers[folder] = _summary_writer()(log_dir=str(folder))
    for column, tag in SCALARS.items():
        value = row.get(column)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            writer.add_scalar(tag, float(value), int(row["epoch"]))
    writer.flush()


def close() -> None:
    """Close every open event file (also at exit)."""
    while _writers:
        _writers.popitem()[1].close()


atexit.register(close)
