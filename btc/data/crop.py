"""The extreme-point crop of paper 004 (the Kaggle dataset page's snippet).

**The reference** (paper 004 / the dataset page): grayscale, GaussianBlur 5×5, binary threshold
45, erode ×2, dilate ×2, largest external contour, crop to its extreme points (found with
imutils). `crop_box` implements it with these documented changes:

- The box is *inclusive* of the extreme points (the snippet's `img[top:bot, left:right]` drops
  the last row and column).
- It does not cut into the head. The snippet keeps only the largest contour, which on images
  whose skull/scalp ring is broken into pieces (several images of the public set) is a part of
  the head: on `kaggle-original-sample` it cut away up to 75% of the head. The box is therefore
  (1) extended to every other contour of at least 2% of the largest one's area, then (2) grown
  until no thresholded component (blur > 45, ≥ 20 px, before erosion: thin scalp rings survive)
  crosses its border. Detached small things — text, rulers, markers, ears — stay outside, as in
  the reference. `CropResult` keeps the reference box (`ref`) next to the box used (`box`).
- `pad` adds that many pixels on each side, clamped to the image.
- An image with no contour above the threshold (blank, very dark), or whose foreground covers
  under 1% of it, is kept uncropped and `note` says why.

Used by `btc prepare kaggle --crop extreme` (`btc.data.sources.kaggle`) and by the input step
that brings a new image to such a dataset (`btc predict`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import imutils
import numpy as np

from btc.data.images import to_gray_uint8

THRESHOLD = 45
BLUR = (5, 5)
MORPH_ITERATIONS = 2
HEAD_CONTOUR_FRACTION = 0.02
MIN_COMPONENT_PX = 20
MIN_BOX_FRACTION = 0.01
GROW_ROUNDS = 20
FILLED = 128  # value a flood fill leaves on a component already met (foreground is 255)
CROP_METHOD = "extreme-points/v1"


@dataclass(frozen=True)
class CropResult:
    box: tuple[int, int, int, int]          # x0, y0, x1, y1 (end-exclusive) actually used
    ref: tuple[int, int, int, int] | None   # the reference snippet's box (inclusive fix applied)
    note: str                                # "" or why the image was kept uncropped


def crop_box(gray: np.ndarray, pad: int = 0) -> CropResult:
    """The extreme-point crop box of a uint8 grayscale image (see the module docstring)."""
    h, w = gray.shape[:2]
    full = (0, 0, w, h)
    blurred = cv2.GaussianBlur(gray, BLUR, 0)
    fg = cv2.threshold(blurred, THRESHOLD, 255, cv2.THRESH_BINARY)[1]
    mask = cv2.erode(fg, None, iterations=MORPH_ITERATIONS)
    mask = cv2.dilate(mask, None, iterations=MORPH_ITERATIONS)
    contours = imutils.grab_contours(cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE))
    if not contours:
        return CropResult(full, None, f"no contour above threshold {THRESHOLD}; kept uncropped")
    areas = np.array([cv2.contourArea(c) for c in contours])
    largest = contours[int(np.argmax(areas))]
    ext_left = tuple(largest[largest[:, :, 0].argmin()][0])
    ext_right = tuple(largest[largest[:, :, 0].argmax()][0])
    ext_top = tuple(largest[largest[:, :, 1].argmin()][0])
    ext_bot = tuple(largest[largest[:, :, 1].argmax()][0])
    ref = (int(ext_left[0]), int(ext_top[1]), int(ext_right[0]) + 1, int(ext_bot[1]) + 1)

    # (1) every sizeable contour belongs to the head
    head = np.concatenate([c for c, a in zip(contours, areas, strict=True) if a >= HEAD_CONTOUR_FRACTION * areas.max()])
    x0, y0 = int(head[:, :, 0].min()), int(head[:, :, 1].min())
    x1, y1 = int(head[:, :, 0].max()) + 1, int(head[:, :, 1].max()) + 1
    # (2) grow until no thresholded component crosses the border
    x0, y0, x1, y1 = grow_to_components(fg, (x0, y0, x1, y1))
    if (x1 - x0) * (y1 - y0) < MIN_BOX_FRACTION * w * h:
        return CropResult(full, ref, f"foreground under {MIN_BOX_FRACTION:.0%} of the image; kept uncropped")
    box = (max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad))
    return CropResult(box, ref, "")


def grow_to_components(fg: np.ndarray, box: tuple[int, int, int, int],
                       rounds: int = GROW_ROUNDS) -> tuple[int, int, int, int]:
    """`box` grown until no component of `fg` (8-connected, ≥ `MIN_COMPONENT_PX` pixels) crosses it.

    Each round adds the bounding box of every such component that meets the box (at most
    `rounds` rounds). Only a component that crosses the border can grow the box, and it has a
    pixel on the box's inner border (the first or last row or column inside it): the components
    are found by flood-filling from those pixels (`cv2.floodFill` returns a component's pixel
    count and bounding box), so the cost is that of the components met, not of labelling the
    whole image. A filled component is not met again: a small one never grows the box, a large
    one lies inside it after its round. `fg` is consumed (filled in place).
    """
    x0, y0, x1, y1 = box
    if not _touches_outside(fg, x0, y0, x1, y1):
        return box  # nothing just outside the box: no component crosses its border
    for _ in range(rounds):
        grown = [x0, y0, x1, y1]
        while True:
            seed = _border_pixel(fg, x0, y0, x1, y1)
            if seed is None:
                break
            area, _, _, (cx, cy, cw, ch) = cv2.floodFill(fg, None, seed, FILLED, flags=8)
            if area >= MIN_COMPONENT_PX:
                grown = [min(grown[0], cx), min(grown[1], cy), max(grown[2], cx + cw), max(grown[3], cy + ch)]
        if tuple(grown) == (x0, y0, x1, y1):
            break
        x0, y0, x1, y1 = grown
    return x0, y0, x1, y1


def _touches_outside(fg: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> bool:
    """Whether `fg` has a pixel in the one-pixel ring just outside the box (where a component
    crossing the border must have one)."""
    h, w = fg.shape[:2]
    top, bottom, left, right = max(y0 - 1, 0), min(y1 + 1, h), max(x0 - 1, 0), min(x1 + 1, w)
    return bool((y0 > 0 and fg[y0 - 1, left:right].any()) or (y1 < h and fg[y1, left:right].any())
                or (x0 > 0 and fg[top:bottom, x0 - 1].any()) or (x1 < w and fg[top:bottom, x1].any()))


def _border_pixel(fg: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int] | None:
    """(x, y) of a foreground pixel (255, not yet filled) on the inner border of the box, or None."""
    for line, place in ((fg[y0, x0:x1], lambda i: (x0 + i, y0)), (fg[y1 - 1, x0:x1], lambda i: (x0 + i, y1 - 1)),
                        (fg[y0:y1, x0], lambda i: (x0, y0 + i)), (fg[y0:y1, x1 - 1], lambda i: (x1 - 1, y0 + i))):
        i = int(line.argmax())
        if line[i] == 255:
            return place(i)
    return None


def crop_image(image: np.ndarray, pad: int = 0) -> tuple[np.ndarray, CropResult]:
    """Grayscale uint8 crop of any decoded image, and the crop decision."""
    gray = to_gray_uint8(image)
    result = crop_box(gray, pad)
    x0, y0, x1, y1 = result.box
    return gray[y0:y1, x0:x1], result
