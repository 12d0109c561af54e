"""The steps that the benchmark times: an inference forward pass and the training engine's step.

The training step is `btc.engine.train.Trainer.train_epoch`'s inner step without data loading:
autocast forward, cross-entropy on float32 logits, `zero_grad(set_to_none=True)`, (scaled)
backward, optimiser step and scaler update.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


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
