"""Inference for everyone: a model with its evaluation preprocessing, precision and memory format.

The training loop evaluates its validation and test images through a `Predictor`, and so do
`btc predict`, the two-stage chain and the export parity check: a new image goes through exactly
what `btc train` did to its test split (`Preprocess` without augmentation: centre crop, the
recipe's normalisation), batched on the device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from btc.data.dataset import Augmentation, Preprocess
from btc.engine import distributed
from btc.engine.config import TrainConfig
from btc.engine.devices import amp_dtype


class Predictor:
    """Class probabilities from uint8 images (N, 1, R, R) at the config's `resize_size`."""

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device,
                 memory_format: torch.memory_format | None = None) -> None:
        self.config = config
        self.device = device
        self.preprocess = Preprocess.from_config(config)
        self.amp_dtype = amp_dtype(config, device)
        if memory_format is None:
            on = device.type == "cuda" and config.channels_last == "on"
            memory_format = torch.channels_last if on else torch.contiguous_format
        self.memory_format = memory_format
        self.model = model.to(device, memory_format=memory_format)
        self.forward = self.model

    def inputs(self, images: torch.Tensor, aug: Augmentation | None = None) -> torch.Tensor:
        """uint8 images (on any device) → the network's normalised float input on the device."""
        x = self.preprocess.apply(images.to(self.device, non_blocking=True), aug)
        return x.contiguous(memory_format=self.memory_format)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            return self.forward(x)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int | None = None) -> np.ndarray:
        """Probabilities (N, C) in input order. Under torchrun each process predicts its shard
        and every process gets all the rows."""
        self.model.eval()
        probs = []
        dist = distributed.current()
        mine = distributed.shard(torch.arange(len(images)), dist)
        for index in mine.split(batch_size or self.config.batch_size):
            x = self.inputs(images[index.to(images.device)])
            probs.append(torch.softmax(self.logits(x).float(), dim=1).cpu())
        return distributed.gather_rows(torch.cat(probs).numpy() if probs else np.zeros((0, 0)))
