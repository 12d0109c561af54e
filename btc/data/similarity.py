"""Do two images show the same scan? The pixel check that confirms a near-duplicate candidate.

A perceptual hash within a few bits is only a *candidate* (issue 15: at ≤ 4 bits of the 64-bit
phash, kaggle-224 has 33 groups mixing classes, look-alike slices of different patients). The
audit (`btc.data.audit`) therefore confirms every candidate pair by its pixels and merges only
confirmed pairs: a pair near by hash but different in pixels is never merged.

**The measure** (`signature`, `similarity`) compares the edges of the two prepared images, so
that what a copy changes (encoding, size, contrast, gamma, windowing) counts little and the
anatomy counts:

1. the prepared image (grayscale uint8; aligned by the crop prepare applied to every image of
   the dataset, so both images of a pair are in the same frame) resized to 64 × 64 (area);
2. rank-transformed: each pixel replaced by the average rank of its value, so any monotone
   change of intensities gives the same values (up to the levels uint8 merges or clips);
3. the gradient magnitude of that (3 × 3 Gaussian, then Sobel): the outlines of the head,
   ventricles, sulci and lesions;
4. the Pearson correlation of the two gradient images is the similarity, in [-1, 1].

A pair is confirmed at similarity ≥ `MIN_SIMILARITY` = **0.75**.

**Calibration**, on kaggle-224 prepared by btc (7,019 images, `--size 224`, extreme crop): 5,754
candidate pairs of different images at ≤ 4 bits (prepared or original phash). The 66 pairs of
different classes — different patients, unless a label is wrong — score 0.19–0.66 (median
0.47); the 5,688 same-class pairs spread from 0.3 to 1.0, 4,750 of them at ≥ 0.75. What the
pairs are, looked at side by side (the two images and their difference, 5 to 10 per band):
- ≥ 0.90: the same slice, re-encoded, resized, re-windowed or sharpened;
- 0.70–0.90: neighbouring slices of one series (consecutive file numbers, the same lesion:
  `Tr-me_1286` / `Tr-me_1288`, `Tr-pi_0353` / `Tr-pi_0354`) and same-slice copies with a strong
  change of contrast or sharpening (`Te-no_0261` / `Tr-no_0822`); several span Training/Testing
  (`Te-me_0293` / `Tr-me_1255`, `Te-gl_0216` / `Tr-gl_1066`): one patient on both sides;
- 0.60–0.70: still neighbouring slices of one patient, and the highest pairs of different
  classes (0.62–0.66: midline sagittal or axial look-alikes of different patients, e.g.
  `Tr-gl_0195` / `Tr-me_1307`).
0.75 is the lowest value that keeps a clear margin (0.09) above every pair of different patients
seen. A confirmed pair is therefore *the same scan*: the same slice, or a neighbouring slice of
one series. Both put one patient on both sides of a split, which is what the leak-free protocol
must prevent on a dataset without patient ids; the audit calls them "near duplicates (same scan)".
On kaggle-224 prepared with `--crop none` the pairs of different classes score at most 0.61.

Checked on single images: JPEG re-encoding (quality 60) with a resize, or gamma 0.7–0.8, keep
≥ 0.93; kaggle-original-sample's copies with other margins (after prepare's crop, at 64 px) score
0.93–0.94. What lowers a copy below 0.75 (a missed duplicate, never a false merge): windowing that
clips much of the image to black or white (×1.3 − 20: 0.65) or a strong darkening (gamma 1.5:
median 0.97, lowest 0.62), which flattens the background's noise the ranks otherwise amplify.
Alternatives measured: Pearson correlation of raw pixels (pairs of different classes up to 0.82)
or of ranks (Spearman, up to 0.75) separate less; re-cropping both images to the head's box
before comparing (as prepare's extreme crop does) made contrast changes move the box and lost
pairs; 32 px raises the different-class maximum to 0.72. On btc's synthetic phantom, whose heads
share one template, a few pairs of different synthetic patients with a small lesion reach 0.77:
the measure is calibrated on real MRI, and a listed label conflict is a suspect to look at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from btc.data.images import ImageReadError, read_image, to_gray_uint8
from btc.progress import SILENT, Progress

SIDE = 64
MIN_SIMILARITY = 0.75
MEASURE = (f"Pearson correlation of the gradient magnitudes (3x3 Gaussian, Sobel) of the two prepared images "
           f"resized to {SIDE}x{SIDE} and rank-transformed")


def _ranks(thumb: np.ndarray) -> np.ndarray:
    """Each uint8 pixel replaced by the average rank of its value (ties share their mean rank)."""
    counts = np.bincount(thumb.ravel(), minlength=256)
    average = np.cumsum(counts) - (counts - 1) / 2.0
    return average[thumb].astype(np.float32)


def thumbnail(image: np.ndarray) -> np.ndarray:
    """Step 1 of the measure: the image as grayscale uint8, `SIDE` × `SIDE` (area). A thumbnail
    is its own thumbnail, so `signature(thumbnail(x)) == signature(x)`: prepare keeps the
    thumbnails of the images it writes and the check needs no second read of them."""
    gray = to_gray_uint8(image)
    if gray.shape[:2] == (SIDE, SIDE):
        return gray
    return cv2.resize(gray, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def signature(image: np.ndarray) -> np.ndarray:
    """The unit-norm, zero-mean vector (`SIDE`² float32) whose dot product is `similarity`.

    A flat image (no edge) has the zero vector: it confirms nothing, exact copies of it are
    found by their pixel hash.
    """
    thumb = thumbnail(image)
    smooth = cv2.GaussianBlur(_ranks(thumb), (3, 3), 0)
    edges = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)).ravel()
    edges -= edges.mean()
    norm = float(np.linalg.norm(edges))
    return (edges / norm if norm > 1e-6 else np.zeros_like(edges)).astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The similarity of two images (decoded arrays), in [-1, 1]; see the module docstring."""
    return float(signature(a) @ signature(b))


def pair_similarities(signatures: np.ndarray, pairs: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Similarity of every pair (rows of `signatures` indexed by the two columns of `pairs`), `chunk`
    pairs at a time (two gathered blocks of 16 MiB that stay in cache: 10x faster than 64k pairs)."""
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

    `thumbs` maps a path to its `thumbnail`, known already (prepare keeps those of the images it
    wrote): such an image is not read again. An image that cannot be read gets the zero
    signature (it confirms nothing) and is listed in `unreadable`.
    """

    def __init__(self, root: str | Path, paths: Sequence[str], thumbs: Mapping[str, np.ndarray] | None = None) -> None:
        self.root = Path(root)
        self.paths = list(paths)
        self.thumbs = thumbs or {}
        self.unreadable: list[str] = []

    def signatures(self, rows: Sequence[int], progress: Progress = SILENT) -> np.ndarray:
        out = np.zeros((len(rows), SIDE * SIDE), dtype=np.float32)
        for k, row in enumerate(progress.track(rows, "checking near duplicates by pixels")):
            path = self.paths[row]
            thumb = self.thumbs.get(path)
            try:
                out[k] = signature(thumb if thumb is not None else read_image(self.root / path))
            except (ImageReadError, OSError):
                self.unreadable.append(path)
        return out
