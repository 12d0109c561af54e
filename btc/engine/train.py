"""One training loop for every model and recipe, with exact checkpoint / resume.

Read it next to torchvision's `references/classification/train.py`: build the optimiser and
schedule from the config, then per epoch train on shuffled batches, validate, log a row of
`history.csv` and write `checkpoint-last.pt` (atomically). Every random choice of epoch e (the
shuffle, the augmentation, dropout) is drawn from generators seeded with (seed, e), so a run
resumed after epoch e continues exactly as the uninterrupted run would have.

An epoch's order and augmentation are drawn at its start on the host (`plan_epoch`, batch by
batch in the order a per-step loop would draw them) and copied to the device in one
non-blocking copy from pinned memory (`EpochPlan.to`), so a training step makes no
host→device copy. A final batch smaller than `smallest_batch` images is dropped (BatchNorm
cannot normalise one image in training — split-attention's 1×1 features — and under torchrun
every process needs an image); the history row counts the images trained on (`train_images`).

On CUDA the training steps use autocast (bf16 where supported, else fp16 with a gradient
scaler), an optional channels-last memory format and `torch.compile`; on the CPU they run in
fp32. Evaluation (validation and test, through the `Predictor`) is fp32 everywhere. The backend
flags (`cudnn.benchmark`, or the deterministic algorithms with `deterministic: true`) are set for
the length of `fit`, `train_epoch` and `predict` (`btc.engine.devices.run_flags`), never as a
side effect of building a trainer. Under torchrun the same loop runs data-parallel
(`btc.engine.distributed`): each process trains on its shard of every global batch and evaluates
a shard of each split, and only rank 0 writes.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from btc.data.dataset import Augmentation, Preprocess
from btc.engine import distributed
from btc.engine.checkpoint import read_state
from btc.engine.config import TrainConfig
from btc.engine.devices import amp_dtype, run_flags
from btc.engine.memory_format import configured_memory_format, preferred_memory_format
from btc.engine.predictor import Predictor
from btc.errors import BtcError
from btc.io import atomic_torch_save
from btc.runfolder import RunFolder


@dataclass
class TensorSplit:
    """The images of one role (train / val / test), decoded once, with integer targets."""

    images: torch.Tensor   # uint8 (N, 1, R, R), on the host or on the device
    targets: torch.Tensor  # int64 (N,)
    paths: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def to(self, device: torch.device) -> TensorSplit:
        """The split with its images and targets on `device` (a no-op on the CPU)."""
        return TensorSplit(self.images.to(device), self.targets.to(device), self.paths)


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63 - 1)


@dataclass(frozen=True)
class EpochPlan:
    """An epoch's batches: the shuffled image order, every image's augmentation, the batch bounds."""

    order: torch.Tensor                # (images used,) indices into the split, in training order
    aug: Augmentation                  # per position of `order`
    bounds: tuple[tuple[int, int], ...]  # [start, stop) of each global batch in `order`
    dropped: int = 0                   # images of a final batch too small to train on

    def __len__(self) -> int:
        return len(self.order)

    def to(self, device: torch.device, index_device: torch.device | None = None) -> EpochPlan:
        """The plan on `device` in one copy: its tensors packed into one float64 buffer (exact for
        indices below 2^53, flags and float32 factors), pinned and copied without blocking. The
        order goes to `index_device` (the images' device) when that is another one."""
        index_device = index_device or device
        if device.type == "cpu" and index_device.type == "cpu":
            return self
        order_along = _same_device(index_device, device)
        fields = [t for t in ((self.order,) if order_along else ()) + self.aug.fields() if t is not None]
        moved = iter(copy_packed(fields, device))
        order = next(moved) if order_along else self.order.to(index_device)
        aug = Augmentation(*(None if t is None else next(moved) for t in self.aug.fields()))
        return EpochPlan(order, aug, self.bounds, self.dropped)


def _same_device(a: torch.device, b: torch.device) -> bool:
    """`cuda` and `cuda:0` are one device when 0 is the current one (a tensor's device has an index)."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device()
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)


def copy_packed(tensors: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """1-D host tensors of one length on `device`, through one (pinned, non-blocking) copy."""
    if not tensors:
        return []
    host = torch.stack([t.to(torch.float64) for t in tensors])
    if device.type == "cuda":
        host = host.pin_memory()
    packed = host.to(device, non_blocking=True)
    return [row.to(t.dtype) for row, t in zip(packed.unbind(0), tensors, strict=True)]


def plan_epoch(n: int, batch_size: int, preprocess: Preprocess, generator: torch.Generator,
               smallest: int = 2) -> EpochPlan:
    """Shuffle `n` images into batches of `batch_size` and draw their augmentation (on the host),
    dropping a final batch of fewer than `smallest` images. The draws are made batch by batch,
    so they are the numbers a loop drawing at every step would get from `generator`."""
    order = torch.randperm(n, generator=generator)
    sizes = [min(batch_size, n - start) for start in range(0, n, batch_size)]
    dropped = sizes.pop() if sizes and sizes[-1] < smallest else 0
    used = n - dropped
    starts = range(0, used, batch_size)
    bounds = tuple((start, min(start + batch_size, used)) for start in starts)
    return EpochPlan(order[:used], preprocess.draw_batches(sizes, generator), bounds, dropped)


class EpochStats(NamedTuple):
    """What one training epoch measured: mean loss and accuracy over the images trained on."""

    loss: float
    accuracy: float
    images: int


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _under_run_flags(method: Callable) -> Callable:
    """Run a `Trainer` method under its run's backend flags (restored afterwards)."""

    @functools.wraps(method)
    def wrapper(self: Trainer, *args: Any, **kwargs: Any) -> Any:
        with run_flags(self.config.deterministic, self.device):
            return method(self, *args, **kwargs)

    return wrapper


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise BtcError(f"model '{config.model}' has no trainable parameters")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    kwargs = {"lr": config.lr, "betas": tuple(config.betas), "weight_decay": config.weight_decay}
    optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "nadam": torch.optim.NAdam}
    return optimizers[config.optimizer](params, **kwargs)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """Per-epoch schedule. `cosine` is paper 001's α_e = ½(1 + cos(eπ/N_e))·α0."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=0.0)
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


class Trainer:
    """Fits one model on one split; evaluates through its `Predictor` (`self.predictor`).

    `on_batch(done, total)` / `on_epoch(history_row)` drive the caller's progress display.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device,
                 on_batch: Callable[[int, int], None] | None = None,
                 on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.config = config
        self.device = device
        self.dist = distributed.current()
        self.amp_dtype = amp_dtype(config, device)
        if self.dist.active and device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # BN over the global batch
        self.predictor = Predictor(model, config, device, self._memory_format(model))
        self.model = self.predictor.model
        if config.compile:
            self.predictor.forward = torch.compile(self.model)
        self.forward_train = self.predictor.forward  # DDP's forward synchronises: training steps only
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            ddp = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
            self.forward_train = torch.compile(ddp) if config.compile else ddp
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = build_scheduler(self.optimizer, config)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.on_batch = on_batch or (lambda done, total: None)
        self.on_epoch = on_epoch or (lambda row: None)

    def _memory_format(self, model: nn.Module) -> torch.memory_format:
        """channels_last on/off as configured; `auto` is contiguous on the CPU and on CUDA the
        format measured once under the run's conditions (its cuDNN flags, compiled when the run
        compiles) and cached, the same choice as `btc benchmark --channels-last auto`."""
        chosen = configured_memory_format(self.config.channels_last, self.device)
        if chosen is not None:
            return chosen
        config = self.config
        choice = preferred_memory_format(config.model, model, self.device, config.image_size, config.batch_size,
                                         self.amp_dtype, compile=config.compile, deterministic=config.deterministic)
        channels_last = distributed.broadcast(choice == torch.channels_last)  # DDP: rank 0's, everywhere
        return torch.channels_last if channels_last else torch.contiguous_format

    # ------------------------------------------------------------------ batches

    @property
    def smallest_batch(self) -> int:
        """The fewest images a training step takes: two (BatchNorm normalises over the batch),
        and one per process under torchrun — two per process where each process normalises its
        own shard (gloo on the CPU, no SyncBatchNorm) and the model has BatchNorm."""
        world = self.dist.world_size
        per_process_bn = self.dist.active and self.device.type != "cuda" and has_batchnorm(self.model)
        return 2 * world if per_process_bn else max(2, world)

    def plan(self, split: TensorSplit, epoch: int) -> EpochPlan:
        """Epoch `epoch`'s order and augmentation of `split`, on the devices of the step."""
        generator = torch.Generator().manual_seed(epoch_seed(self.config.seed, epoch))
        plan = plan_epoch(len(split), self.config.batch_size, self.predictor.preprocess, generator,
                          self.smallest_batch)
        return plan.to(self.device, split.images.device)

    def _steps(self, split: TensorSplit, plan: EpochPlan) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """(global batch size, this process's input, its targets) of each step of `plan`."""
        targets_elsewhere = split.targets.device != split.images.device
        for start, stop in plan.bounds:
            mine = distributed.shard_slice(stop - start, self.dist)
            rows = slice(start + mine.start, start + mine.stop)
            index = plan.order[rows]
            x = self.predictor.inputs(split.images[index], plan.aug.select(rows))
            y = split.targets[index.to(split.targets.device) if targets_elsewhere else index]
            yield stop - start, x, y.to(self.device, non_blocking=True)

    @_under_run_flags
    def train_epoch(self, split: TensorSplit, epoch: int) -> EpochStats:
        """One pass over `split` in the order and augmentation of epoch `epoch`."""
        plan = self.plan(split, epoch)
        if not len(plan):
            raise BtcError(f"the training split has {len(split)} image(s): a training step needs at least "
                           f"{self.smallest_batch}")
        torch.manual_seed(epoch_seed(self.config.seed, epoch))  # dropout and other in-model randomness
        self.model.train()
        world = self.dist.world_size
        loss_sum, correct = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        for step, (global_batch, x, y) in enumerate(self._steps(split, plan)):
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                logits = self.forward_train(x)
            batch_loss = F.cross_entropy(logits.float(), y, reduction="sum")
            if self.device.type == "cpu" and not self.dist.active and not torch.isfinite(batch_loss):
                # (on a GPU the check waits for the epoch's sum: a per-step check would synchronise)
                self._diverged(epoch, f"step {step + 1}", batch_loss)
            self.optimizer.zero_grad(set_to_none=True)
            # the global batch's mean loss: DDP averages the processes' gradients (÷ world)
            self.scaler.scale(batch_loss * (world / global_batch)).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            loss_sum += batch_loss.detach()
            correct += (logits.argmax(1) == y).sum()
            self.on_batch(step + 1, len(plan.bounds))
        distributed.all_reduce_sum(loss_sum)
        distributed.all_reduce_sum(correct)
        if not torch.isfinite(loss_sum):
            self._diverged(epoch, "some step", loss_sum)
        return EpochStats(float(loss_sum) / len(plan), float(correct) / len(plan), len(plan))

    def _diverged(self, epoch: int, where: str, loss: torch.Tensor) -> None:
        raise BtcError(f"training diverged: loss is {loss.item()} at epoch {epoch + 1}, {where}; "
                       f"try a lower --lr (now {self.optimizer.param_groups[0]['lr']:g})")

    @_under_run_flags
    def predict(self, split: TensorSplit, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (N, C) of a split, in its order (evaluation preprocessing, fp32)."""
        return self.predictor.predict(split.images, batch_size)

    # ------------------------------------------------------------------ state

    def state(self, epoch: int, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            **extra,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):  # a scaler saved disabled (CPU, bf16) has an empty state
            self.scaler.load_state_dict(state["scaler"])

    # ------------------------------------------------------------------ loop

    @_under_run_flags
    def fit(self, train: TensorSplit, val: TensorSplit | None, run: RunFolder,
            extra: dict[str, Any], resume: bool = False) -> list[dict[str, Any]]:
        """Train for `config.epochs`, checkpointing every epoch; returns the history rows.

        `extra` (config, classes, …) is stored in both checkpoints. With `resume`, training
        continues after the epoch of `checkpoint-last.pt`.
        """
        history: list[dict[str, Any]] = []
        best_key = (-math.inf, -math.inf)
        start = 0
        if resume and run.last_checkpoint.is_file():
            state = read_state(run.last_checkpoint, map_location=self.device,
                               required=("model", "optimizer", "scheduler", "epoch", "history", "best_key"))
            self.load_state(state)
            history = list(state["history"])
            best_key = tuple(state["best_key"])
            start = int(state["epoch"]) + 1
        for epoch in range(start, self.config.epochs):
            began = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            trained = self.train_epoch(train, epoch)
            self.scheduler.step()
            row = {"epoch": epoch + 1, "lr": lr, "train_loss": trained.loss, "train_accuracy": trained.accuracy,
                   "train_images": trained.images, "val_loss": float("nan"), "val_accuracy": float("nan")}
            if val is not None and len(val):
                probs = self.predict(val)
                targets = val.targets.cpu().numpy()
                row["val_loss"] = float(F.nll_loss(torch.log(torch.from_numpy(probs).clamp_min(1e-12)),
                                                   torch.from_numpy(targets)))
                row["val_accuracy"] = float((probs.argmax(1) == targets).mean())
            row["seconds"] = time.perf_counter() - began
            history.append(row)
            # best by validation accuracy, ties broken by lower validation loss
            key = (row["val_accuracy"], -row["val_loss"]) if val is not None and len(val) else (epoch, 0.0)
            if key > best_key:
                best_key = key
                if self.config.select == "best_val":
                    self.save_best(run, epoch, extra)
            if self.dist.is_writer:
                run.write_history(history)
                atomic_torch_save(run.last_checkpoint, self.state(epoch, {**extra, "history": history,
                                                                          "best_key": list(best_key)}))
            self.on_epoch(row)
        if self.config.select == "last":
            self.save_best(run, self.config.epochs - 1, extra)
        distributed.barrier()  # the checkpoints are on disk for every process
        return history

    def save_best(self, run: RunFolder, epoch: int, extra: dict[str, Any]) -> None:
        """`checkpoint-best.pt`: the weights to evaluate (state dict, config, classes)."""
        if self.dist.is_writer:
            atomic_torch_save(run.best_checkpoint, {"model": self.model.state_dict(), "epoch": epoch, **extra})
