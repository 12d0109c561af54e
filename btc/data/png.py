"""PNG encoding of the prepared images: OpenCV's bytes, from a faster implementation of zlib.

A prepared image is written as PNG by `btc prepare` (`btc.data.prepare.writing`), one per input,
and the encoding is the largest cost of a prepare: about half of the plain script's time per
image on kaggle-224 (issue 17.1, `benchmarks/prepare_kaggle.py --stages`). OpenCV's encoder
(`cv2.imencode(".png", image)` without parameters) writes an 8-bit grayscale image with libpng
and zlib at these settings:

- every row filtered with the PNG *Sub* filter (each byte minus the byte on its left; *None* for
  an image one pixel wide);
- zlib at level 1 (`Z_BEST_SPEED`), strategy `Z_RLE`, memory level 8, a 32 KiB window (15
  bits) that libpng narrows for an image of at most 16 KiB of filtered rows, and whose zlib
  header libpng then rewrites to the smallest window the data needs;
- the compressed stream cut into IDAT chunks of 8,192 bytes.

`encode_gray_png` writes exactly that, with the deflate of zlib-ng (`zlib_ng`, the maintained
successor of zlib with vectorised match finding), whose stream is the same, byte for byte, as
zlib's at the same settings: the whole file equals OpenCV's (tests: every kaggle-224 image at
256 px, and sizes from 1 × 1 to 1024 × 1024), at 1.4 to 1.6 times the speed. The compression level
is therefore the reference script's, and the same pixels give the same file on any machine.

Without zlib-ng (an environment where it is not installed), or for any image that is not 2-D
uint8 (or wider or taller than libpng's limit of 1,000,000 px, which OpenCV refuses),
`encode_png` is OpenCV's encoder itself: the same bytes, more slowly.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

try:  # a dependency of btc; an environment without it (e.g. no package index) uses OpenCV
    from zlib_ng import zlib_ng
except ImportError:  # pragma: no cover - exercised by monkeypatching ENCODER in the tests
    zlib_ng = None

SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEVEL = 1                # zlib's Z_BEST_SPEED: OpenCV's level when none is given
MEM_LEVEL = 8            # libpng's default
CHUNK = 8192             # libpng's IDAT chunk size (its compression buffer)
NONE, SUB = 0, 1          # PNG filter types
_SMALL = 16384           # libpng narrows the window for at most this many filtered bytes
LIBPNG_MAX_SIDE = 1_000_000  # libpng's default user limit on width and height


class EncodeError(ValueError):
    """OpenCV could not encode the image."""


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of `image`, equal to `cv2.imencode(".png", image)` (see the module docstring).
    Raises `EncodeError` (one line) for what OpenCV cannot encode (empty, 2 or 5 channels, …)."""
    image = np.asarray(image)  # a subclass (np.matrix) indexes otherwise
    if zlib_ng is not None and _gray_png_can_take(image):
        return encode_gray_png(image)
    try:
        ok, buf = cv2.imencode(".png", image)
    except cv2.error:
        ok = False
    if not ok:
        raise EncodeError(f"PNG encoding failed: OpenCV cannot write a {image.dtype} image of shape "
                          f"{image.shape} as PNG")
    return buf.tobytes()


def _gray_png_can_take(image: np.ndarray) -> bool:
    """A non-empty 2-D uint8 image within libpng's default size limit (OpenCV refuses larger)."""
    return (image.dtype == np.uint8 and image.ndim == 2 and image.size > 0
            and max(image.shape) <= LIBPNG_MAX_SIDE)


def encode_gray_png(image: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG of the 2-D uint8 `image`, as OpenCV writes it, deflated by zlib-ng."""
    image = np.asarray(image)
    if not _gray_png_can_take(image):
        raise EncodeError(f"encode_gray_png takes a non-empty 2-D uint8 image of at most {LIBPNG_MAX_SIDE} px "
                          f"a side, not a {image.dtype} image of shape {image.shape}")
    height, width = image.shape
    rows = np.empty((height, width + 1), dtype=np.uint8)
    rows[:, 0] = SUB if width > 1 else NONE  # libpng filters a one-pixel row with None
    rows[:, 1] = image[:, 0]
    np.subtract(image[:, 1:], image[:, :-1], out=rows[:, 2:])  # uint8: modulo 256, as the filter
    size = rows.size
    deflate = zlib_ng.compressobj(LEVEL, zlib_ng.DEFLATED, _window_bits(size), MEM_LEVEL, zlib_ng.Z_RLE)
    stream = bytearray(deflate.compress(rows))
    stream += deflate.flush()
    _narrow_header(stream, size)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray, deflate, no interlace
    parts = [SIGNATURE, _chunk(b"IHDR", header)]
    view = memoryview(stream)
    parts += [_chunk(b"IDAT", view[i:i + CHUNK]) for i in range(0, len(stream), CHUNK)]
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def _chunk(kind: bytes, data: bytes | memoryview) -> bytes:
    crc = zlib_ng.crc32(data, zlib_ng.crc32(kind))
    return b"".join((struct.pack(">I", len(data)), kind, data, struct.pack(">I", crc)))


def _window_bits(size: int) -> int:
    """libpng's window for `size` filtered bytes (`png_deflate_claim`): 15 bits, halved while the
    data fits in half of it (small images): at least 9, as the smallest image (1 × 1: 2 bytes)
    stops there."""
    bits = 15
    if size <= _SMALL:
        half = 1 << (bits - 1)
        while size + 262 <= half:
            half >>= 1
            bits -= 1
    return bits


def _narrow_header(stream: bytearray, size: int) -> None:
    """libpng's `optimize_cmf`: the zlib header's window field lowered to the smallest window the
    `size` filtered bytes need, and its check bits recomputed (the stream stays valid)."""
    if size > _SMALL:
        return
    cmf = stream[0]
    if (cmf & 0x0F) != 8 or (cmf & 0xF0) > 0x70:
        return
    cinfo = cmf >> 4
    half = 1 << (cinfo + 7)
    if size > half:
        return
    while True:
        half >>= 1
        cinfo -= 1
        if not (cinfo > 0 and size <= half):
            break
    cmf = (cmf & 0x0F) | (cinfo << 4)
    flags = stream[1] & 0xE0
    flags += 0x1F - ((cmf << 8) + flags) % 0x1F
    stream[0], stream[1] = cmf, flags
