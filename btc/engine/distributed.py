"""Data-parallel training under torchrun: process group, batch sharding, gathering, rank-0 writes.

`torchrun --nproc_per_node N -m btc train|cv …` starts N processes with `RANK`, `WORLD_SIZE`
and `LOCAL_RANK` set. `btc` then joins the process group (NCCL on CUDA, gloo on the CPU), each
process takes GPU `LOCAL_RANK`, and the training loop (`btc.engine.train.Trainer`) runs the same
schedule in every process:

- every process holds the decoded uint8 dataset and draws the same epoch order and augmentation
  (seeded by (seed, epoch)); each global batch of `--batch-size` images (the recipe's batch) is
  cut into N contiguous shards, one per process (`shard`, `shard_slice`); a final batch too small
  to give every process an image (and BatchNorm two values) is dropped, so no shard is empty;
- the loss of a shard is its sum divided by the global batch size, times N, so DDP's gradient
  mean equals the gradient of the global batch's mean loss: N processes take the same steps as
  one process (up to float summation order). BatchNorm layers become SyncBatchNorm on CUDA;
  on the CPU (gloo) they keep per-process statistics, so only BN-free models are step-for-step
  identical there;
- evaluation shards the images and gathers the probabilities in order (`gather_rows`), so every
  process sees the same validation metrics and picks the same best epoch;
- only rank 0 writes files (`is_writer`); the others wait at a barrier before reading them.

Without torchrun nothing here does anything: `current()` is a one-process `Dist`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """This process's place in the process group (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes run folders, checkpoints and progress."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str | None = None) -> Dist:
    """Join the torchrun process group once (NCCL when `device` uses CUDA, else gloo)."""
    if not launched_by_torchrun():
        return Dist()
    if not dist.is_initialized():
        cuda = torch.cuda.is_available() and not str(device or "auto").startswith("cpu")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return current()


def current() -> Dist:
    if not (dist.is_available() and dist.is_initialized()):
        return Dist()
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def session(device: str | None = None) -> Iterator[Dist]:
    """The process group for the length of one command (a no-op without torchrun)."""
    d = init_from_env(device)
    try:
        yield d
    finally:
        if d.active:
            shutdown()


def in_session(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command (called with a `device=` keyword) inside `session`."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with session(kwargs.get("device")):
            return command(*args, **kwargs)

    return wrapper


def broadcast(value: Any) -> Any:
    """Rank 0's `value` in every process (e.g. a run folder named after the clock)."""
    if not current().active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if current().active:
        dist.barrier()


def shard_slice(n: int, d: Dist) -> slice:
    """The positions of this process's contiguous part of a global batch of `n` (all of them with
    one process): the first `n % world` processes take one more, as `torch.tensor_split` cuts."""
    if not d.active:
        return slice(0, n)
    base, extra = divmod(n, d.world_size)
    start = d.rank * base + min(d.rank, extra)
    return slice(start, start + base + (1 if d.rank < extra else 0))


def shard(index: torch.Tensor, d: Dist) -> torch.Tensor:
    """This process's contiguous part of a global batch of indices (all of it with one process)."""
    return index[shard_slice(len(index), d)]


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    if current().active:
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def gather_rows(part: np.ndarray) -> np.ndarray:
    """Concatenate every process's rows in rank order (the shards of `shard`, back in order)."""
    d = current()
    if not d.active:
        return part
    parts: list[np.ndarray | None] = [None] * d.world_size
    dist.all_gather_object(parts, part)
    return np.concatenate([p for p in parts if p is not None and len(p)] or [part[:0]])
