"""How a new raw image is brought to a prepared dataset's image space (issue 13, item 3).

A model trained on a prepared dataset saw images as its source's prepare wrote them (grayscale
uint8, cropped and resized as that source does). An image from outside the dataset must go
through the same step before the recipe's own preprocessing; each source module says which
(`input_step(info)`), and `btc.data.sources.new_image_step` picks it from dataset.yaml.

`apply(image)` takes any decoded image (gray, BGR or BGRA; 8 or 16 bit, or int16 slices) and
returns the prepared grayscale uint8 image and the box `x0, y0, x1, y1` (end-exclusive) of the
original that it shows. The steps shared by several sources live here: `Resize` (folder,
Figshare) and `Identity` (phantom, unknown sources).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from btc.data.images import resize_square, to_gray_uint8

Box = tuple[int, int, int, int]


class InputStep(Protocol):
    """What prepare did to each image of a dataset, applicable to a new image."""

    def apply(self, image: np.ndarray) -> tuple[np.ndarray, Box]:
        """(prepared grayscale uint8 image, box x0, y0, x1, y1 of the original it shows)."""
        ...

    def describe(self) -> str:
        """The step in words, for a line such as 'input step: resize to 256²'."""
        ...


def full_box(image: np.ndarray) -> Box:
    h, w = image.shape[:2]
    return (0, 0, int(w), int(h))


def recorded_size(info: dict[str, Any]) -> int | None:
    """The square side dataset.yaml's `params` recorded, or None (images kept at their size)."""
    size = (info.get("params") or {}).get("size")
    return int(size) if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


@dataclass(frozen=True)
class Identity:
    """Grayscale uint8, no geometric change (phantom images are generated at their size)."""

    reason: str = ""

    def apply(self, image: np.ndarray) -> tuple[np.ndarray, Box]:
        return to_gray_uint8(image), full_box(image)

    def describe(self) -> str:
        return "none" + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class Resize:
    """Grayscale uint8, then the square resize prepare applied (`size` None: kept as it is)."""

    size: int | None = None

    def apply(self, image: np.ndarray) -> tuple[np.ndarray, Box]:
        return resize_square(to_gray_uint8(image), self.size), full_box(image)

    def describe(self) -> str:
        return f"resize to {self.size}²" if self.size else "none (original size)"
