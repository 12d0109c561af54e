"""Training throughput three ways (issue 8): the engine on real data, its ceiling, a naive loop.

- `engine_rate`: `btc.engine.train.Trainer.train_epoch` on decoded real images, exactly as
  `btc train` runs it (uint8 images resident on the device, batched augmentation there, AMP,
  the model's memory format);
- `ceiling_rate`: the same Trainer's model, optimiser, AMP and memory format on random tensors
  already normalised on the device: no data path at all (`btc.engine.timing.train_step`);
- `naive_rate`: what the papers' code does: torchvision `ImageFolder` + PIL transforms in a
  `DataLoader`, fp32, contiguous, batches copied to the device every step and the loss read
  back every step.

Each returns images per second over `steps` timed steps after `warmup` untimed ones.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from btc.engine.timing import synthetic_batch, time_fn, train_step
from btc.engine.train import TensorSplit, Trainer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _subset(split: TensorSplit, n: int, offset: int = 0) -> TensorSplit:
    index = torch.arange(offset, offset + n) % len(split)
    return TensorSplit(split.images[index.to(split.images.device)], split.targets[index.to(split.targets.device)],
                       [split.paths[i] for i in index.tolist()])


def engine_rate(trainer: Trainer, split: TensorSplit, steps: int, warmup: int = 2) -> float:
    """Images/s of the engine's training epoch over `steps` batches of `split` (on the device)."""
    batch = trainer.config.batch_size
    trainer.train_epoch(_subset(split, max(1, warmup) * batch), epoch=0)
    timed = _subset(split, steps * batch, offset=warmup * batch)
    _sync(trainer.device)
    began = time.perf_counter()
    trainer.train_epoch(timed, epoch=1)  # ends with a host read of the loss: synchronised
    _sync(trainer.device)
    return len(timed) / (time.perf_counter() - began)


def ceiling_rate(trainer: Trainer, num_classes: int, steps: int, warmup: int = 2) -> float:
    """Images/s of the same model and optimiser on random device-resident inputs."""
    config, device = trainer.config, trainer.device
    x, y = synthetic_batch(config.batch_size, config.image_size, num_classes, device,
                           trainer.predictor.memory_format)
    trainer.model.train()
    step = train_step(trainer.forward_train, trainer.optimizer, x, y, trainer.amp_dtype)
    seconds = time_fn(step, iters=steps, warmup=warmup, device=device)
    return config.batch_size / seconds


def naive_rate(model: torch.nn.Module, image_folder: Path, image_size: int, batch_size: int,
               device: torch.device, steps: int, warmup: int = 2, workers: int = 4) -> float:
    """Images/s of an ImageFolder + PIL DataLoader fp32 loop (SGD, h-flip, ImageNet normalisation)."""
    from torchvision import datasets, transforms

    transform = transforms.Compose([
        transforms.Resize((image_size, image_size)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    dataset = datasets.ImageFolder(str(image_folder), transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         drop_last=True, persistent_workers=workers > 0)
    model = model.to(device).train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    done, began, images = 0, 0.0, 0
    while done < warmup + steps:
        for x, y in loader:
            if done == warmup:
                _sync(device)
                began = time.perf_counter()
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()  # the running-loss read of a tutorial loop (a sync per step)
            images += len(y) if done >= warmup else 0
            done += 1
            if done == warmup + steps:
                break
    _sync(device)
    return images / (time.perf_counter() - began)
