"""The size limits btc applies to the images it reads (issue 16: validation at the door).

- **Pixel limit** (`BTC_MAX_PIXELS`, default 100 megapixels, far above any MRI slice: Figshare's
  are 512×512, the largest Kaggle file about 1.5 megapixels): checked from the image header before
  decoding (`btc.data.image_header`), by `btc.data.images.read_image`, so prepare, predict and
  training all refuse a pixel bomb before it costs memory.
- **Smallest side** (`BTC_MIN_SIDE`, default 32 px): prepare skips a smaller image with a reason
  instead of upscaling a 1×1 thumbnail to the training size.

Both are read from the environment by the process that starts the work (`ImageLimits.from_env`)
and passed to prepare's worker processes with each task, so every worker applies the same ones.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from btc.errors import BtcError

MAX_PIXELS_ENV = "BTC_MAX_PIXELS"
MIN_SIDE_ENV = "BTC_MIN_SIDE"
DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MIN_SIDE = 32


def _positive_env(name: str, default: int, minimum: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise BtcError(f"{name}={text}: must be a whole number ≥ {minimum} (default {default}); "
                       f"fix or unset {name}")
    return value


@dataclass(frozen=True)
class ImageLimits:
    """The pixel limit and the smallest side of the images one command reads."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = DEFAULT_MIN_SIDE

    @classmethod
    def from_env(cls) -> ImageLimits:
        """`BTC_MAX_PIXELS` and `BTC_MIN_SIDE`, or the defaults; a malformed value is one line."""
        return cls(max_pixels=_positive_env(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS, 1),
                   min_side=_positive_env(MIN_SIDE_ENV, DEFAULT_MIN_SIDE, 1))

    def as_dict(self) -> dict[str, Any]:
        """For a worker's task (`ImageLimits(**d)` rebuilds it)."""
        return asdict(self)

    def pixels_problem(self, width: int, height: int) -> str | None:
        """Why an image of `width`×`height` is not decoded (over the pixel limit), or None."""
        if width * height <= self.max_pixels:
            return None
        return (f"{width}×{height} pixels ({_megapixels(width * height)}) is over btc's limit of "
                f"{_megapixels(self.max_pixels)}; if the image is genuine, raise the limit with "
                f"{MAX_PIXELS_ENV}={width * height}")

    def side_problem(self, width: int, height: int) -> str | None:
        """Why an image of `width`×`height` is too small to prepare, or None."""
        if min(height, width) >= self.min_side:
            return None
        return (f"{width}×{height} pixels is smaller than {self.min_side} px on a side; if such images "
                f"are genuine, lower the limit with {MIN_SIDE_ENV}={min(height, width)}")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:g} megapixels"
