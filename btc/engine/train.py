"""One training loop for every model and recipe, with exact checkpoint / resume.

Read it next to torchvision's `references/classification/train.py`: build the optimiser and
schedule from the config, then per epoch train on shuffled batches, validate, log a row of
`history.csv` and write `checkpoint-last.pt` (atomically). Every random choice of epoch e (the
shuffle, the augmentation, dropout) is drawn from generators seeded with (seed, e), so a run
resumed after epoch e continues exactly as the uninterrupted run would have.

On CUDA the loop uses autocast (bf16 where supported, else fp16 with a gradient scaler), an
optional channels-last memory format and `torch.compile`; on CPU it runs in fp32. Under torchrun
the same loop runs data-parallel (`btc.engine.distributed`): each process trains on its shard of
every global batch and evaluates a shard of each split, and only rank 0 writes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from btc.engine import distributed
from btc.engine.checkpoint import read_state
from btc.engine.config import TrainConfig
from btc.engine.devices import amp_dtype
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
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = not config.deterministic
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
        """channels_last on/off as configured; `auto` measures both once on CUDA (cached choice,
        the same as `btc benchmark --channels-last auto`) and is contiguous on the CPU."""
        if self.device.type != "cuda" or self.config.channels_last == "off":
            return torch.contiguous_format
        if self.config.channels_last == "on":
            return torch.channels_last
        from btc.engine.memory_format import preferred_memory_format

        choice = preferred_memory_format(self.config.model, model, self.device, self.config.image_size,
                                         self.config.batch_size, self.amp_dtype)
        channels_last = distributed.broadcast(choice == torch.channels_last)  # DDP: rank 0's, everywhere
        return torch.channels_last if channels_last else torch.contiguous_format

    # ------------------------------------------------------------------ batches

    def train_epoch(self, split: TensorSplit, epoch: int) -> tuple[float, float]:
        """One pass over `split` in the order and augmentation of epoch `epoch`."""
        seed = epoch_seed(self.config.seed, epoch)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # dropout and other in-model randomness
        self.model.train()
        order = torch.randperm(len(split), generator=generator)
        batches = order.split(self.config.batch_size)
        world = self.dist.world_size
        preprocess = self.predictor.preprocess
        loss_sum, correct = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        for step, index in enumerate(batches):
            global_batch = len(index)
            aug = preprocess.draw(global_batch, generator)  # the whole global batch's draws
            mine = distributed.shard(torch.arange(global_batch), self.dist)
            index = index[mine].to(split.images.device)
            x = self.predictor.inputs(split.images[index], aug.select(mine))
            y = split.targets[index].to(self.device, non_blocking=True)
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
            self.on_batch(step + 1, len(batches))
        distributed.all_reduce_sum(loss_sum)
        distributed.all_reduce_sum(correct)
        if not torch.isfinite(loss_sum):
            self._diverged(epoch, "some step", loss_sum)
        return float(loss_sum) / len(split), float(correct) / len(split)

    def _diverged(self, epoch: int, where: str, loss: torch.Tensor) -> None:
        raise BtcError(f"training diverged: loss is {loss.item()} at epoch {epoch + 1}, {where}; "
                       f"try a lower --lr (now {self.optimizer.param_groups[0]['lr']:g})")

    def predict(self, split: TensorSplit, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (N, C) of a split, in its order (evaluation preprocessing)."""
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
            train_loss, train_acc = self.train_epoch(train, epoch)
            self.scheduler.step()
            row = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "train_accuracy": train_acc,
                   "val_loss": float("nan"), "val_accuracy": float("nan")}
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
