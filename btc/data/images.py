"""Image decoding and the two image fingerprints of the manifest.

`pixel_sha256` hashes the decoded pixels (so a re-encoded copy of the same pixels has another
file hash but the same pixel hash); `phash64` is the classic 64-bit DCT perceptual hash
(32×32 grayscale → DCT → top-left 8×8 → bits above the median), the same algorithm as
`imagehash.phash`, written with OpenCV so no further dependency is needed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from btc.errors import BtcError


class ImageReadError(BtcError):
    """A file that cannot be decoded as an image."""


def read_image(path: str | Path, *, grayscale: bool = False) -> np.ndarray:
    """Decode an image file with OpenCV, whatever its format or bit depth.

    Returns the array as stored (H×W, H×W×3 BGR or H×W×4 BGRA; uint8 or uint16) or, with
    `grayscale=True`, a single-channel image of the same dtype. Raises `ImageReadError` with the
    reason for empty, unreadable or undecodable files.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read ({e.strerror or e})") from None
    if data.size == 0:
        raise ImageReadError(f"{path}: empty file")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: not a decodable image")
    return to_grayscale(image) if grayscale else image


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """Single-channel view of a grayscale, BGR or BGRA image (dtype kept)."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale a uint16 (or other integer/float) image to uint8; uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    lo, hi = float(image.min()), float(image.max())
    scaled = (image.astype(np.float64) - lo) / (hi - lo) if hi > lo else np.zeros(image.shape)
    return np.round(scaled * 255).astype(np.uint8)


def pixel_sha256(image: np.ndarray) -> str:
    """SHA-256 of the decoded pixels, their shape and dtype."""
    h = hashlib.sha256()
    h.update(f"{image.shape}|{image.dtype.str}|".encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def phash64(image: np.ndarray) -> str:
    """64-bit perceptual hash as 16 hex digits (robust to resizing, re-encoding, small edits)."""
    gray = to_grayscale(image).astype(np.float32)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8]
    bits = (low > np.median(low)).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(hash_a: str, hash_b: str) -> int:
    """Number of differing bits between two hex perceptual hashes."""
    return (int(hash_a, 16) ^ int(hash_b, 16)).bit_count()


def encode_png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ImageReadError("PNG encoding failed")
    return buf.tobytes()
