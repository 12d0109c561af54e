"""How long one step of the engine takes: the timed steps and the median of timed iterations.

Used by the engine's memory-format choice (`btc.engine.memory_format`) and by every benchmark
(`btc.bench`, `benchmarks/*.py`), so that all of them time the same steps the same way:

- `infer_step`: a no-grad forward pass under autocast;
- `train_step`: `btc.engine.train.Trainer.train_epoch`'s inner step without data loading —
  autocast forward, cross-entropy on float32 logits, `zero_grad(set_to_none=True)`, (scaled)
  backward, optimiser step and scaler update;
- `synthetic_batch`: random normalised images and targets already on the device;
- `time_fn`: the median seconds of `iters` timed calls after `warmup` untimed ones. On CUDA every
  iteration is bracketed by CUDA events after a `torch.cuda.synchronize()`, and the end event is
  waited for, so the time is the GPU's and no queued kernel leaks into the next iteration. On
  the CPU the wall clock (`time.perf_counter`, or an injected `clock`) is used.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def time_fn(fn: Callable[[], object], iters: int, warmup: int, device: torch.device | str = "cpu",
            clock: Callable[[], float] = time.perf_counter) -> float:
    """Median seconds of one call of `fn` over `iters` timed calls after `warmup` untimed ones."""
    if iters < 1:
        raise ValueError(f"iters must be at least 1, got {iters}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    for _ in range(max(0, warmup)):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
    times: list[float] = []
    for _ in range(iters):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000.0)
        else:
            t0 = clock()
            fn()
            times.append(clock() - t0)
    return float(statistics.median(times))


def synthetic_batch(batch_size: int, image_size: int, num_classes: int, device: torch.device,
                    memory_format: torch.memory_format = torch.contiguous_format,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random normalised images (B, 3, S, S) and integer targets, on `device`."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, image_size, image_size, generator=g)
    y = torch.randint(0, num_classes, (batch_size,), generator=g)
    return x.to(device).contiguous(memory_format=memory_format), y.to(device)


def infer_step(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
               amp_dtype: torch.dtype | None) -> Callable[[], torch.Tensor]:
    """A no-grad forward pass of `x` (the model must already be in eval mode)."""
    device_type = x.device.type

    def step() -> torch.Tensor:
        with torch.no_grad(), torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
            return forward(x)

    return step


def train_step(forward: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer,
               x: torch.Tensor, y: torch.Tensor, amp_dtype: torch.dtype | None) -> Callable[[], torch.Tensor]:
    """One training step as the engine does it (the model must already be in train mode)."""
    device_type = x.device.type
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16 and device_type == "cuda")

    def step() -> torch.Tensor:
        with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    return step


def default_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum on the trainable parameters (used when no recipe optimiser is given)."""
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
