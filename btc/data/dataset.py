"""Decoded-once image tensors and the recipes' preprocessing, batched on the training device.

Each image is decoded once, converted to grayscale (MRI is monochrome; the networks' three input
channels are copies of it), resized to the recipe's `resize_size` and kept as one uint8 tensor
(N, 1, R, R): 7,000 Kaggle images at 256 px take 460 MB, so the whole set lives in (pinned) host
memory or on the GPU. `Preprocess` then does the recipe's augmentation and normalisation on whole
batches on that device (random crop, flips, brightness, scaling, normalisation), with the random
parameters drawn from a seeded CPU generator so the same seed gives the same batches on any
device.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from btc.data.images import ImageReadError, read_gray_uint8
from btc.errors import BtcError
from btc.progress import SILENT, Progress

INTERPOLATION = {
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
    "bicubic": cv2.INTER_CUBIC,
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def decode_resized(path: str | Path, size: int, interpolation: str = "area") -> np.ndarray:
    """One image file → grayscale uint8 array of shape (size, size)."""
    gray = read_gray_uint8(path)
    if gray.shape != (size, size):
        gray = cv2.resize(gray, (size, size), interpolation=INTERPOLATION[interpolation])
    return gray


def load_images(paths: Sequence[str | Path], size: int, interpolation: str = "area", *,
                workers: int | None = None, progress: Progress = SILENT) -> torch.Tensor:
    """Decode and resize `paths` in parallel threads (OpenCV releases the GIL).

    Returns a uint8 tensor (N, 1, size, size). An unreadable image is an error here: prepared
    datasets only list images that prepare could decode.
    """
    out = np.empty((len(paths), size, size), dtype=np.uint8)
    workers = workers or min(8, os.cpu_count() or 1)

    def work(i: int) -> None:
        out[i] = decode_resized(paths[i], size, interpolation)

    with progress.bar(f"decoding {len(paths)} images", len(paths)) as advance, \
            ThreadPoolExecutor(workers) as pool:
        try:
            for _ in pool.map(work, range(len(paths))):
                advance()
        except ImageReadError as e:
            raise BtcError(f"{e} (listed in the manifest; re-run 'btc prepare')") from None
    return torch.from_numpy(out).unsqueeze(1)


@dataclass(frozen=True)
class Augmentation:
    """The random choices of one training batch, per image (None: the recipe draws none).

    Drawn for a whole batch and then indexed (`select`), so processes of a data-parallel run
    that each augment a shard of the batch apply exactly what one process would. The training
    loop draws a whole epoch's batches at once (`Preprocess.draw_batches`, concatenated with
    `cat`), moves them to the device in one copy and slices each step's part there.
    """

    top: torch.Tensor | None = None         # random-crop offsets
    left: torch.Tensor | None = None
    hflip: torch.Tensor | None = None       # bool
    vflip: torch.Tensor | None = None       # bool
    brightness: torch.Tensor | None = None  # factors in [1 - b, 1 + b]

    def fields(self) -> tuple[torch.Tensor | None, ...]:
        return (self.top, self.left, self.hflip, self.vflip, self.brightness)

    def select(self, index: torch.Tensor | slice) -> Augmentation:
        """The draws of the images at `index` (indices, a mask or a slice of the batch)."""
        return Augmentation(*(None if t is None else t[index] for t in self.fields()))

    @classmethod
    def cat(cls, parts: Sequence[Augmentation]) -> Augmentation:
        """The draws of consecutive batches as the draws of one batch of them all."""
        if not parts:
            return cls()
        columns = zip(*(p.fields() for p in parts), strict=True)
        return cls(*(None if column[0] is None else torch.cat(column) for column in columns))

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Augmentation:
        return Augmentation(*(None if t is None else t.to(device, non_blocking=non_blocking)
                              for t in self.fields()))


@dataclass(frozen=True)
class Preprocess:
    """The recipe's input pipeline on uint8 batches (B, 1, R, R) → float (B, 3, S, S).

    Training: random crop (if `crop == "random"`), horizontal / vertical flips with their
    probabilities, brightness factor in [1 − b, 1 + b] (torchvision's `adjust_brightness`:
    scale and clip to [0, 1]), then normalisation. Evaluation: centre crop and normalisation.
    """

    image_size: int
    resize_size: int
    crop: str = "none"
    normalize: str = "imagenet"
    hflip: float = 0.0
    vflip: float = 0.0
    brightness: float = 0.0

    @classmethod
    def from_config(cls, config) -> Preprocess:
        return cls(image_size=config.image_size, resize_size=config.resize_size, crop=config.crop,
                   normalize=config.normalize, hflip=config.hflip, vflip=config.vflip,
                   brightness=config.brightness)

    def __call__(self, batch: torch.Tensor, train: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(batch, self.draw(batch.shape[0], generator) if train else None)

    def draw(self, n: int, generator: torch.Generator | None = None) -> Augmentation:
        """The training randomness of a batch of `n` images (drawn on the CPU, in a fixed order)."""
        margin = self.resize_size - self.image_size
        crop = self.crop == "random" and margin > 0
        top = torch.randint(0, margin + 1, (n,), generator=generator) if crop else None
        left = torch.randint(0, margin + 1, (n,), generator=generator) if crop else None
        hflip = torch.rand(n, generator=generator) < self.hflip if self.hflip > 0 else None
        vflip = torch.rand(n, generator=generator) < self.vflip if self.vflip > 0 else None
        b = self.brightness
        factor = torch.empty(n).uniform_(1 - b, 1 + b, generator=generator) if b > 0 else None
        return Augmentation(top, left, hflip, vflip, factor)

    def draw_batches(self, sizes: Sequence[int], generator: torch.Generator | None = None) -> Augmentation:
        """The draws of consecutive batches of `sizes` images, concatenated: the same numbers as
        calling `draw` batch by batch with the same generator (an epoch is drawn at once)."""
        return Augmentation.cat([self.draw(n, generator) for n in sizes])

    def apply(self, batch: torch.Tensor, aug: Augmentation | None = None) -> torch.Tensor:
        """Crop, augment (training: `aug` given) and normalise a uint8 batch."""
        if batch.dtype != torch.uint8 or batch.ndim != 4:
            raise ValueError("Preprocess expects a uint8 batch (B, C, H, W)")
        n, device = batch.shape[0], batch.device
        margin = self.resize_size - self.image_size
        if aug is not None and aug.top is not None:
            batch = crop_batch(batch, aug.top.to(device), aug.left.to(device), self.image_size)
        elif margin > 0:
            offset = torch.full((n,), margin // 2, device=device)
            batch = crop_batch(batch, offset, offset, self.image_size)
        x = batch.float().div_(255.0)
        if aug is not None:
            x = self._augment(x, aug)
        return self._normalize(x)

    @staticmethod
    def _augment(x: torch.Tensor, aug: Augmentation) -> torch.Tensor:
        device = x.device
        if aug.hflip is not None:
            x = torch.where(aug.hflip.to(device)[:, None, None, None], x.flip(-1), x)
        if aug.vflip is not None:
            x = torch.where(aug.vflip.to(device)[:, None, None, None], x.flip(-2), x)
        if aug.brightness is not None:
            x = (x * aug.brightness.to(device)[:, None, None, None]).clamp_(0.0, 1.0)
        return x

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        if self.normalize == "imagenet":
            mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
            return (x - mean) / std
        if self.normalize == "standardize":
            # per image, as tf.image.per_image_standardization: std floored at 1/sqrt(#pixels)
            flat = x.flatten(1)
            mean = flat.mean(1).view(-1, 1, 1, 1)
            floor = 1.0 / flat.shape[1] ** 0.5
            std = flat.std(1, unbiased=False).clamp_min(floor).view(-1, 1, 1, 1)
            return (x - mean) / std
        return x.contiguous()


def crop_batch(batch: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """Per-sample square crops of side `size` at (top, left), in one gather."""
    n, c = batch.shape[:2]
    ar = torch.arange(size, device=batch.device)
    rows = (top[:, None] + ar)[:, None, :, None]         # (N, 1, S, 1)
    cols = (left[:, None] + ar)[:, None, None, :]        # (N, 1, 1, S)
    bi = torch.arange(n, device=batch.device)[:, None, None, None]
    ci = torch.arange(c, device=batch.device)[None, :, None, None]
    return batch[bi, ci, rows, cols]
