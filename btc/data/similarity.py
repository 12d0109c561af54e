"""Do two images show the same scan? The pixel check that confirms a near-duplicate candidate.

A perceptual hash within a few bits is only a *candidate* (issue 15: at ≤ 4 bits of the 64-bit
phash, kaggle-224 has 33 groups mixing classes, look-alike slices of different patients). The
audit (`btc.data.audit`) therefore confirms every candidate pair by its pixels, and merges only
confirmed pairs.

**The measure** (`signature`, `similarity`): each image is brought to a common frame and its
edges are compared, so that what a copy changes (size, margins, encoding, contrast, gamma,
windowing, sharpening) does not count and the anatomy does:

1. grayscale uint8, cropped to the head's box (`btc.data.crop.crop_box`, the extreme-point box
   without padding: aligns a copy with other margins; an image already cropped keeps its frame),
   resized to 64 × 64 (area interpolation);
2. rank-transformed (each pixel replaced by the average rank of its value: any monotone change
   of intensities gives the same ranks);
3. the gradient magnitude of that (Sobel after a 3 × 3 Gaussian blur): the outlines of the head,
   ventricles, sulci and lesions;
4. the Pearson correlation of the two gradient images is the similarity, in [-1, 1].

A pair is confirmed when its similarity is at least `MIN_SIMILARITY` = **0.75**.

**Calibration** on kaggle-224 (7,019 images, prepared with `--crop extreme --size 224`): 5,754
candidate pairs of distinct images at ≤ 4 bits (prepared or original phash). The 66 candidate
pairs of different classes — by construction different patients, unless a label is wrong — score
0.30–0.66 (median 0.47); same-class candidates range from 0.3 to 1.0 (4,700 of 5,688 above
0.76). Looking at side-by-side pairs (the two images and their difference, 8 to 10 per band):
- ≥ 0.90: the same slice, re-encoded, resized or re-windowed, or heavily sharpened or
  contrast-changed copies (e.g. `Te-no_0388` / `Tr-no_0833`), and a few neighbouring slices;
- 0.72–0.90: neighbouring slices of one series (consecutive file numbers, the same lesion:
  `Tr-pi_1379` / `Tr-pi_1381`, `Tr-me_0741` / `Tr-me_0742`) and same-slice copies with a
  strong change of contrast; several pairs span Training/Testing (`Te-gl_0254` / `Tr-gl_1204`,
  `Te-me_0127` / `Tr-me_0044`): the same patient on both sides;
- 0.60–0.70: still mostly neighbouring slices of one patient, but the cross-class pairs start
  here (0.66: a glioma and a meningioma of different patients, both sagittal at the same level).
0.75 is the lowest value with a clear margin (0.09) above every pair of different patients that
was seen. So a confirmed pair is *the same scan*: the same slice, or a neighbouring slice of the
same series. Both leak the patient across a split, which is what the leak-free protocol must
prevent on a dataset without patient ids; neighbouring slices are not "duplicates" in the strict
sense, and the audit's wording says "near duplicates (same scan)".

Pearson correlation of raw pixels (cross-class pairs up to 0.82, overlapping neighbouring
slices) and of ranks (Spearman, up to 0.75) separate less; 64 px keeps the anatomy of a slice
and is cheap (a signature is 4,096 floats; pairs are scored as dot products).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from btc.data.crop import crop_box
from btc.data.images import ImageReadError, read_image, resize_square, to_gray_uint8
from btc.progress import SILENT, Progress

SIDE = 64
ALIGN_SIDE = 128  # the head's box is found on the image resized to 128², 5× cheaper than at 224
MIN_SIMILARITY = 0.75
MEASURE = ("Pearson correlation of the gradient magnitudes (3x3 Gaussian, Sobel) of the rank-transformed "
           f"images, each cropped to its head's box and resized to {SIDE}x{SIDE}")


def _ranks(thumb: np.ndarray) -> np.ndarray:
    """Each uint8 pixel replaced by the average rank of its value (ties share their mean rank)."""
    counts = np.bincount(thumb.ravel(), minlength=256)
    average = np.cumsum(counts) - (counts - 1) / 2.0
    return average[thumb].astype(np.float32)


def signature(image: np.ndarray) -> np.ndarray:
    """The unit-norm, zero-mean vector (`SIDE`² float32) whose dot product is `similarity`.

    A flat image (no edge) has the zero vector: it confirms nothing, exact copies of it are
    found by their pixel hash.
    """
    frame = resize_square(to_gray_uint8(image), ALIGN_SIDE)
    x0, y0, x1, y1 = crop_box(frame).box
    thumb = cv2.resize(frame[y0:y1, x0:x1], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    smooth = cv2.GaussianBlur(_ranks(thumb), (3, 3), 0)
    edges = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)).ravel()
    edges -= edges.mean()
    norm = float(np.linalg.norm(edges))
    return (edges / norm if norm > 1e-6 else np.zeros_like(edges)).astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The similarity of two images (decoded arrays), in [-1, 1]; see the module docstring."""
    return float(signature(a) @ signature(b))


def pair_similarities(signatures: np.ndarray, pairs: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Similarity of every pair (rows of `signatures` indexed by the two columns of `pairs`)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    out = np.empty(len(pairs), dtype=np.float32)
    for start in range(0, len(pairs), chunk):
        a, b = pairs[start:start + chunk, 0], pairs[start:start + chunk, 1]
        out[start:start + chunk] = np.einsum("ij,ij->i", signatures[a], signatures[b])
    return out


class PixelSource(Protocol):
    """Where the audit gets the pixels of manifest rows: `signatures(rows)` → (len(rows), SIDE²)."""

    def signatures(self, rows: Sequence[int], progress: Progress = SILENT) -> np.ndarray:
        ...


class FolderPixels:
    """The images of a prepared dataset (or of its staging folder): `root / paths[row]`.

    An image that cannot be read gets the zero signature (it confirms nothing) and is listed in
    `unreadable`.
    """

    def __init__(self, root: str | Path, paths: Sequence[str]) -> None:
        self.root = Path(root)
        self.paths = list(paths)
        self.unreadable: list[str] = []

    def signatures(self, rows: Sequence[int], progress: Progress = SILENT) -> np.ndarray:
        out = np.zeros((len(rows), SIDE * SIDE), dtype=np.float32)
        for k, row in enumerate(progress.track(rows, "checking near duplicates by pixels")):
            try:
                out[k] = signature(read_image(self.root / self.paths[row]))
            except (ImageReadError, OSError):
                self.unreadable.append(self.paths[row])
        return out
