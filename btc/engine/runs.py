"""One training run: split roles, model, fit, evaluation (DESIGN.md, Run folder).

`TaskData` is a prepared dataset seen through one task (its label mapping) with its images
decoded once; `train_run` trains and evaluates one model on one assignment of roles
(train / val / test) and fills a run folder (`btc.runfolder.RunFolder`: config, split, history,
checkpoints, predictions, metrics). Both `btc train` and every fold of `btc cv` go through it.
Plots are the command layer's: it draws them from the finished folder.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from btc import __version__
from btc.data.manifest import MANIFEST, PreparedDataset
from btc.data.splits import leak_free_groups
from btc.engine import distributed
from btc.engine.checkpoint import read_state
from btc.engine.config import TrainConfig
from btc.engine.devices import resolve_device
from btc.engine.evaluate import write_evaluation
from btc.engine.image_cache import cached_images
from btc.engine.metrics import compute_metrics
from btc.engine.protocols import split_in_use
from btc.engine.provenance import (
    dataset_fingerprint,
    deviations,
    device_name,
    paper_wants_pretrained,
    versions,
)
from btc.engine.tensorboard import log_epoch
from btc.engine.train import TensorSplit, Trainer
from btc.errors import BtcError
from btc.io import atomic_torch_save
from btc.progress import SILENT, Progress
from btc.runfolder import ROLES, Predictions, RunFolder


@dataclass
class TaskData:
    """The images of a dataset that belong to a task, with their targets in the task's classes."""

    dataset: PreparedDataset
    task: str
    classes: list[str]
    rows: pd.DataFrame                 # manifest rows of the task, in manifest order
    targets: np.ndarray                # int class index per row
    positions: np.ndarray              # row number of each task image in the dataset manifest
    _images: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict, repr=False)
    _groups: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_dataset(cls, dataset: PreparedDataset, task: str) -> TaskData:
        classes, index = dataset.task_labels(task)
        selected = dataset.manifest["label"].isin(list(index)).to_numpy()
        rows = dataset.manifest[selected].reset_index(drop=True)
        if rows.empty:
            raise BtcError(f"task '{task}' selects no image of {dataset.root}")
        present = sorted(set(rows["label"].map(index)))
        if len(present) < 2:
            raise BtcError(f"task '{task}' has images of only one class in {dataset.root}")
        return cls(dataset, task, classes, rows, rows["label"].map(index).to_numpy(dtype=int),
                   np.flatnonzero(selected))

    def dataset_strata(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The whole manifest and its dataset labels as integers, to draw test folds from.

        Test folds and hold-outs are drawn over every image of the dataset, stratified by its
        own label (finer than any task's classes), and then restricted to the task. So the
        tasks of one dataset (presence, tumor_type, source, …) run with the same seed put every
        image they share on the same side: a two-stage evaluation chains two models that were
        both tested, never trained, on the image.
        """
        manifest = self.dataset.manifest
        return manifest, pd.Categorical(manifest["label"], categories=self.dataset.classes).codes.astype(int)

    def leak_free_groups(self) -> np.ndarray:
        """Group label of every dataset manifest row: patient ∪ exact ∪ confirmed near duplicates."""
        if self._groups is None:
            self._groups = leak_free_groups(self.dataset)
        return self._groups

    def images(self, size: int, interpolation: str, progress: Progress = SILENT) -> torch.Tensor:
        """All task images as uint8 (N, 1, size, size): decoded once per size and process, and
        shared with other processes through the user's cache (`btc.engine.image_cache`)."""
        key = (size, interpolation)
        if key not in self._images:
            self._images[key] = cached_images(self.dataset.root, self.dataset.root / MANIFEST,
                                              self.rows["path"].tolist(), size, interpolation, progress=progress)
        return self._images[key]

    def split(self, mask: np.ndarray, config: TrainConfig, progress: Progress = SILENT) -> TensorSplit:
        index = torch.from_numpy(np.flatnonzero(mask))
        images = self.images(config.resize_size, config.interpolation, progress)
        return TensorSplit(images=images[index], targets=torch.from_numpy(self.targets[mask]).long(),
                           paths=self.rows["path"][mask].tolist())


def write_split(run: RunFolder, data: TaskData, roles: np.ndarray) -> None:
    keep = np.isin(roles, ROLES)
    run.write_split(data.rows["path"][keep].tolist(), roles[keep].tolist())


def build_model(config: TrainConfig, num_classes: int, weights: Path | None, *, offline: bool = False,
                progress: Progress = SILENT) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The registered model with its initial weights, and their record for the run's provenance.

    `--weights FILE` loads a local state dict. Otherwise the model starts from ImageNet weights
    when its recipe says `pretrained` and the paper starts this model from them (paper 002 trains
    DSConv-CBAM and the MLP from scratch: no weight message for those); weights that cannot be
    had stop the run with one line naming `btc weights fetch` — never a silent fallback to random
    initialisation (`--no-pretrained` asks for that, and the run records it as a deviation).
    """
    from btc.models import create_model
    from btc.models.weights import load_weights_file

    size = config.image_size
    if weights is not None:
        model = create_model(config.model, num_classes, input_size=size)
        record = load_weights_file(model, weights)
        progress.note(record.summary())
        return model, record.to_dict()
    if config.pretrained and paper_wants_pretrained(config, config):
        model = create_model(config.model, num_classes, pretrained=True, input_size=size, offline=offline)
        return model, model.weights_record.to_dict()
    return create_model(config.model, num_classes, input_size=size), {"source": "random"}


def run_provenance(data: TaskData, config: TrainConfig, device: torch.device, weights: dict[str, Any],
                   protocol: str, evaluation: str) -> dict[str, Any]:
    """The run's provenance block of config.yaml (btc.engine.provenance); `evaluation` as in
    `btc.engine.provenance.deviations`."""
    fingerprint = dataset_fingerprint(data.dataset.root, data.dataset.info)
    return {
        "initial_weights": weights,
        "dataset": fingerprint,
        "protocol": protocol,
        "device": device_name(device),
        "versions": versions(),
        "seed": config.seed,
        "deviations": deviations(config, weights, fingerprint, evaluation),
    }


def check_resumable(run: RunFolder, config: TrainConfig, data: TaskData) -> None:
    """Refuse to resume a run folder made with another config or on another dataset (that
    would mix two runs: a CV's folds from two datasets with the same file names)."""
    if not run.config_path.is_file():
        return
    saved = run.read_config()
    wanted = config.to_dict()
    changed = [k for k in wanted if k not in ("device",) and saved.get(k) != wanted[k]]
    if changed:
        raise BtcError(f"{run.path} holds a run with another config ({', '.join(changed)}); "
                       "use another --out or the same options")
    before = ((saved.get("provenance") or {}).get("dataset") or {}).get("manifest_sha256")
    now = dataset_fingerprint(data.dataset.root, data.dataset.info)["manifest_sha256"]
    if before and before != now:
        raise BtcError(f"{run.path} holds a run on another dataset (manifest sha256 {before[:12]}, "
                       f"--data {data.dataset.root} has {now[:12]}); use another --out")


def train_run(data: TaskData, roles: np.ndarray, config: TrainConfig, run: RunFolder, *,
              protocol: str, resume: bool = False, force: bool = False, weights: Path | None = None,
              offline: bool = False, progress: Progress = SILENT,
              label: str = "", evaluation: str | None = None) -> dict[str, Any]:
    """Train on the rows with role 'train' (selecting on 'val'), test on 'test'; return metrics.

    `evaluation` says how the test rows were chosen (`cv` for a fold; by default the single
    split `btc.engine.protocols.split_in_use` gives), for the run's deviations from its paper.

    The folder must be btc's (`RunFolder.claim`: a previous run is continued with `resume`,
    replaced with `force`); the writing process holds its lock throughout. A complete folder is
    returned as is when resuming. Under torchrun every process runs this; only rank 0 writes
    (and shows progress).
    """
    writer = distributed.current().is_writer
    if writer:
        run.check_claimable(alone=evaluation != "cv")  # refused before a lock file is made
    with run.lock() if writer else contextlib.nullcontext():  # first: --force never touches a live run
        if writer:
            run.claim(resume=resume, force=force)
        return _train_run(data, roles, config, run, protocol=protocol, resume=resume, weights=weights,
                          offline=offline, progress=progress if writer else SILENT,
                          label=label, evaluation=evaluation or split_in_use(data, config))


def _train_run(data: TaskData, roles: np.ndarray, config: TrainConfig, run: RunFolder, *,
               protocol: str, resume: bool, weights: Path | None, offline: bool,
               progress: Progress, label: str, evaluation: str) -> dict[str, Any]:
    writer = distributed.current().is_writer
    run.path.mkdir(parents=True, exist_ok=True)
    if resume:
        check_resumable(run, config, data)
        if run.is_complete():
            return run.read_metrics()
        if run.last_checkpoint.is_file() and not run.best_checkpoint.is_file():
            # the weights to evaluate are gone: resuming could not give the uninterrupted result
            progress.note(f"{run.path} has lost {run.best_checkpoint.name}: training it again from the start",
                          style="yellow")
            if writer:
                run.discard_run()
            resume = False
    distributed.barrier()  # every process has looked at the folder before rank 0 writes to it
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    model, origin = build_model(config, len(data.classes), weights, offline=offline, progress=progress)
    extra = {"data": str(data.dataset.root.resolve()), "dataset": data.dataset.info.get("name", data.dataset.root.name),
             "classes": data.classes, "device_name": device_name(device), "btc_version": __version__,
             "torch_version": str(torch.__version__), "task": data.task, "split_protocol": protocol,
             "initial_weights": origin.get("source"),
             "provenance": run_provenance(data, config, device, origin, protocol, evaluation)}
    if writer:
        run.write_config({**config.to_dict(), **extra})
        write_split(run, data, roles)
    # uint8 images go to the GPU once (7,000 images at 256 px are 460 MB): no per-batch copies
    train = data.split(roles == "train", config, progress).to(device)
    val = data.split(roles == "val", config, progress).to(device) if (roles == "val").any() else None
    test = data.split(roles == "test", config, progress).to(device)
    if not len(train) or not len(test):
        raise BtcError("the split leaves no training or no test image")
    checkpoint_extra = {"config": config.to_dict(), "classes": data.classes, "task": data.task}
    epochs = progress.add(f"{label}{config.model} epochs", total=config.epochs, transient=True)
    batches = progress.add("batches", total=None, transient=True)

    def on_batch(done: int, total: int) -> None:
        progress.update(batches, completed=done, total=total)

    def on_epoch(row: dict[str, Any]) -> None:
        if config.snapshot_every and row["epoch"] % config.snapshot_every == 0 and writer:
            atomic_torch_save(run.snapshot(row["epoch"]),
                              {"model": trainer.model.state_dict(), "epoch": row["epoch"] - 1, **checkpoint_extra})
        if writer:
            log_epoch(run.path, row)  # --tensorboard: a mirror of history.csv's row (off by default)
        val_text = f" val acc {row['val_accuracy']:.3f}" if row["val_accuracy"] == row["val_accuracy"] else ""
        progress.update(epochs, completed=row["epoch"],
                        info=f"loss {row['train_loss']:.3f} acc {row['train_accuracy']:.3f}{val_text}")

    try:
        trainer = Trainer(model, config, device, on_batch=on_batch, on_epoch=on_epoch)
        if resume and run.last_checkpoint.is_file():
            done = read_state(run.last_checkpoint, required=("epoch",))["epoch"] + 1
            progress.update(epochs, completed=done)
        trainer.fit(train, val, run, checkpoint_extra, resume=resume)
    finally:
        progress.remove(batches)
        progress.remove(epochs)
    best = read_state(run.best_checkpoint, map_location=device)
    trainer.model.load_state_dict(best["model"])
    probs = trainer.predict(test)
    predictions = Predictions.from_probs(test.paths, test.targets.cpu().numpy(), probs, data.classes)
    if writer:
        metrics = write_evaluation(run, predictions)
    else:
        metrics = compute_metrics(predictions.targets, predictions.probs, data.classes)
    distributed.barrier()  # the run folder is complete for every process
    return metrics
