"""Image decoding, the pixel conversions every prepare applies, and the manifest's fingerprints.

`to_gray_uint8` brings any decoded image (gray, BGR or BGRA; 8 or 16 bit, or int16 MRI) to the
grayscale uint8 pixels of a prepared dataset and `resize_square` to its square side, so that
`btc prepare` and a new image at inference time (`btc.data.sources.new_image_step`) share them.
`pixel_sha256` hashes the decoded pixels (so a re-encoded copy of the same pixels has another
file hash but the same pixel hash); `phash64` is the classic 64-bit DCT perceptual hash
(32×32 grayscale → DCT → top-left 8×8 → bits above the median), the same algorithm as
`imagehash.phash`, written with OpenCV so no further dependency is needed.

`read_image` decodes nothing before it has checked the size the file's header declares
(`btc.data.image_header`) against the pixel limit (`btc.data.limits`, `BTC_MAX_PIXELS`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from btc.data import png
from btc.data.image_header import declared_size, image_format, jpeg_frame
from btc.data.limits import ImageLimits
from btc.errors import BtcError


class ImageReadError(BtcError):
    """A file that cannot be decoded as an image."""


#: File name suffixes of the images btc reads from a folder (`btc predict`, `--no-tumor`).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

#: Formats OpenCV decodes whose size btc does not read from the header, so btc does not decode them.
UNREAD_FORMATS = ("AVIF", "HDR", "OpenEXR")


def read_image(path: str | Path, *, grayscale: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image file with OpenCV, whatever its format or bit depth.

    Returns the array as stored (H×W, H×W×3 BGR or H×W×4 BGRA; uint8 or uint16) or, with
    `grayscale=True`, a single-channel image of the same dtype. The size the file's header
    declares is checked against `max_pixels` (default: `BTC_MAX_PIXELS`, see `btc.data.limits`)
    before anything is decoded; a file whose header gives no size btc can read is not decoded.
    Raises `ImageReadError` with the reason for empty, unreadable, undecodable or too large files.
    """
    path = os.fspath(path)  # a str (no Path object per image: prepare reads thousands)
    raw, problem = _checked_bytes(path, max_pixels)
    image = _decode(path, raw, problem, cv2.IMREAD_UNCHANGED)
    return to_grayscale(image) if grayscale else image


def read_gray_uint8(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """An image file as the grayscale uint8 pixels of a prepared dataset: `to_gray_uint8` of
    `read_image`, checked the same way.

    An 8-bit JPEG is decoded straight to gray: libjpeg returns its luma channel Y (1-channel
    files: their only channel), skipping the colour planes, about twice as fast for a colour
    JPEG (issue 17: prepare at the speed of a plain script). Y has the weights of OpenCV's
    BGR→gray (ITU-R BT.601), so this equals the gray of the decoded BGR image up to that image's
    rounding and clipping to 0–255: on the 7,207 Kaggle JPEGs of ../shared/data (kaggle-224 and
    the original-size sample), identical for every gray-looking image and up to 17 levels apart
    on a few pixels (0.009 % of all) of 85 of the 4,038 colour files (tinted ones).
    `btc prepare` and `btc predict` both read through here. EXIF orientation is ignored, as by
    `read_image`.
    """
    path = os.fspath(path)
    raw, problem = _checked_bytes(path, max_pixels)
    frame = jpeg_frame(raw) if raw.startswith(_JPEG) else None
    if frame is not None and frame[2] == 8:
        return _decode(path, raw, problem, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    return to_gray_uint8(_decode(path, raw, problem, cv2.IMREAD_UNCHANGED))


def _checked_bytes(path: str, max_pixels: int | None) -> tuple[bytes, str | None]:
    """The file's bytes, refused (`ImageReadError`) when empty, cut short (but a JPEG: see
    `_decode`), of no size btc reads, or too large; and the truncation problem left to check."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read ({e.strerror or e})") from None
    if not raw:
        raise ImageReadError(f"{path}: empty file")
    problem = truncation_problem(raw)
    if problem and not raw.startswith(_JPEG):
        # Checked before decoding so that libpng does not print its own error on stderr.
        raise ImageReadError(f"{path}: {problem}")
    size = declared_size(raw)
    if size is None:
        raise ImageReadError(f"{path}: {undecodable_reason(raw)}")
    limits = ImageLimits.from_env() if max_pixels is None else ImageLimits(max_pixels=max_pixels)
    too_large = limits.pixels_problem(*size)
    if too_large:
        raise ImageTooLarge(f"{path}: {too_large}")
    return raw, problem


def _decode(path: str, raw: bytes, problem: str | None, flags: int) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), flags)
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: {undecodable_reason(raw)}")
    if problem and _JPEG_EOI not in raw:
        # OpenCV 4 decodes a truncated JPEG (grey bottom rows) with only a libjpeg warning.
        raise ImageReadError(f"{path}: {problem}")
    return image


class ImageTooLarge(ImageReadError):
    """An image whose header declares more pixels than the limit (`BTC_MAX_PIXELS`)."""


_JPEG = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"


def truncation_problem(data: bytes | np.ndarray) -> str | None:
    """'truncated JPEG …' / 'truncated PNG …' when the file stops before its end marker, else None.

    A JPEG must end with the end-of-image marker FFD9 (trailing NUL or whitespace padding
    allowed; true of every file of the Kaggle set); a PNG must contain its IEND chunk.
    """
    raw = data.tobytes() if isinstance(data, np.ndarray) else data
    kind = image_format(raw)
    if kind == "JPEG" and not _ends_with(raw, _JPEG_EOI, padding=b"\x00\r\n\t "):
        return "truncated JPEG (no end-of-image marker)"
    if kind == "PNG" and raw.rfind(b"IEND") < 0:  # from the end, where the chunk is
        return "truncated PNG (no IEND chunk)"
    return None


def _ends_with(raw: bytes, suffix: bytes, padding: bytes, tail: int = 4096) -> bool:
    """`raw.rstrip(padding).endswith(suffix)`, looking at the last `tail` bytes when they suffice
    (no copy of a whole file)."""
    end = raw[-tail:].rstrip(padding)
    if not end and len(raw) > tail:
        end = raw.rstrip(padding)
    return end.endswith(suffix)


def undecodable_reason(data: bytes | np.ndarray) -> str:
    """Why OpenCV could not decode `data`, in words (for skip lists and error lines)."""
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    if not raw:
        return "empty file"
    problem = truncation_problem(raw)
    if problem:
        return problem
    kind = image_format(raw)
    if kind in UNREAD_FORMATS:
        return f"{kind} images are not read by btc (no size btc can check before decoding); convert to PNG"
    if kind:
        return f"corrupt {kind} (cannot be decoded)"
    sample = raw[:512]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return "not an image (a text file)"
    return "not a decodable image (unknown format)"


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


def to_gray_uint8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (gray/BGR/BGRA, 8/16-bit, int16) as uint8 grayscale."""
    return to_uint8(to_grayscale(image))


def resize_square(image: np.ndarray, size: int | None, *, nearest: bool = False) -> np.ndarray:
    """Resize to size×size (no aspect preservation, as the papers do); area when shrinking."""
    if size is None or image.shape[:2] == (size, size):
        return image
    if nearest:
        interp = cv2.INTER_NEAREST
    elif image.shape[0] * image.shape[1] >= size * size:
        interp = cv2.INTER_AREA
    else:
        interp = cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def pixel_sha256(image: np.ndarray) -> str:
    """SHA-256 of the decoded pixels, their shape and dtype."""
    h = hashlib.sha256(f"{image.shape}|{image.dtype.str}|".encode())
    h.update(np.ascontiguousarray(image))  # the buffer itself: no copy
    return h.hexdigest()


def phash64(image: np.ndarray) -> str:
    """64-bit perceptual hash as 16 hex digits (robust to resizing, re-encoding, small edits)."""
    gray = to_grayscale(image).astype(np.float32)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].ravel()
    ranked = np.sort(low)
    median = (ranked[31] + ranked[32]) / 2  # np.median of 64 values, without its overhead
    return np.packbits(low > median).tobytes().hex()  # row-major bits, first bit most significant


def hamming(hash_a: str, hash_b: str) -> int:
    """Number of differing bits between two hex perceptual hashes."""
    return (int(hash_a, 16) ^ int(hash_b, 16)).bit_count()


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of `image`: OpenCV's, byte for byte, faster for gray uint8 (`btc.data.png`)."""
    try:
        return png.encode_png(image)
    except png.EncodeError as e:  # an ImageReadError: the one error type of btc's image functions
        raise ImageReadError(str(e)) from None
