"""Inference for everyone: a model with its evaluation preprocessing and memory format, in fp32.

The training loop evaluates its validation and test images through a `Predictor`, and so do
`btc predict`, the two-stage chain and the export parity check: a new image goes through exactly
what `btc train` did to its test split (`Preprocess` without augmentation: centre crop, the
recipe's normalisation), batched on the device.

Evaluation runs in fp32 even where training runs under autocast (bf16 / fp16 on CUDA): the
validation loss, the choice of the best epoch, `predictions.csv` and the AUC come from fp32
logits, the same on every GPU. Building a predictor measures nothing and changes no global flag:
with `channels_last: auto` on CUDA it uses the training run's cached memory-format choice when
there is one (`btc.engine.memory_format.cached_memory_format`), else the contiguous format.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from btc.data.dataset import Augmentation, Preprocess
from btc.engine import distributed
from btc.engine.config import TrainConfig
from btc.engine.devices import amp_dtype
from btc.engine.memory_format import cached_memory_format, configured_memory_format


def inference_memory_format(config: TrainConfig, device: torch.device) -> torch.memory_format:
    """The configured format; for `auto` on CUDA the cached choice of the training run's
    conditions (never timed here: `btc predict` starts predicting at once)."""
    chosen = configured_memory_format(config.channels_last, device)
    if chosen is not None:
        return chosen
    return cached_memory_format(config.model, device, config.image_size, config.batch_size,
                                amp_dtype(config, device), compiled=config.compile,
                                deterministic=config.deterministic)


class Predictor:
    """Class probabilities from uint8 images (N, 1, R, R) at the config's `resize_size`."""

    def __init__(self, model: nn.Module, config: TrainConfig, device: torch.device,
                 memory_format: torch.memory_format | None = None) -> None:
        self.config = config
        self.device = device
        self.preprocess = Preprocess.from_config(config)
        self.memory_format = memory_format if memory_format is not None else inference_memory_format(config, device)
        self.model = model.to(device, memory_format=self.memory_format)
        self.forward = self.model

    def inputs(self, images: torch.Tensor, aug: Augmentation | None = None) -> torch.Tensor:
        """uint8 images (on any device) → the network's normalised float input on the device."""
        x = self.preprocess.apply(images.to(self.device, non_blocking=True), aug)
        return x.contiguous(memory_format=self.memory_format)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """fp32 logits (no autocast, whatever precision the model trained in)."""
        return self.forward(x).float()

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int | None = None) -> np.ndarray:
        """Probabilities (N, C) in input order. Under torchrun each process predicts its shard
        and every process gets all the rows."""
        self.model.eval()
        probs = []
        part = images[distributed.shard_slice(len(images), distributed.current())]
        for chunk in part.split(batch_size or self.config.batch_size):
            probs.append(torch.softmax(self.logits(self.inputs(chunk)), dim=1).cpu())
        return distributed.gather_rows(torch.cat(probs).numpy() if probs else np.zeros((0, 0)))
