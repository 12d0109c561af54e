"""What an image file declares in its header — its format and its size — read without decoding.

`btc.data.images.read_image` checks the declared size against the pixel limit (`btc.data.limits`)
before OpenCV decodes anything, so a small file declaring 20000×20000 pixels (a "pixel bomb": a few
hundred KB of compressed zeros, 400 MB once decoded) costs nothing. The size is read the way the
decoders read it: PNG's IHDR, the first JPEG start-of-frame (SOF) after the markers before it,
BMP's DIB header, GIF's logical screen, WebP's VP8/VP8L/VP8X header, TIFF's (and BigTIFF's) first
IFD, JPEG 2000's codestream SIZ marker, the PNM/PAM/PFM text header, Sun raster's header.
Any other format (AVIF, HDR, OpenEXR, …) has no size btc can check first, so btc does not read it.
"""

from __future__ import annotations

import re
import struct

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
_JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K = b"\xff\x4f\xff\x51"
_MAGIC = (
    (_JPEG, "JPEG"), (_PNG, "PNG"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"II+\x00", "BigTIFF"), (b"MM\x00+", "BigTIFF"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (_JP2, "JPEG 2000"), (_J2K, "JPEG 2000"), (b"\x59\xa6\x6a\x95", "Sun raster"),
    (b"#?RADIANCE", "HDR"), (b"#?RGBE", "HDR"), (b"\x76\x2f\x31\x01", "OpenEXR"),
)
_PNM = re.compile(rb"^P[1-7Ff]\s")
#: JPEG start-of-frame markers (C4 DHT, C8 JPG and CC DAC share the range but are not frames).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def image_format(data: bytes) -> str | None:
    """The image format named by a file's first bytes (JPEG, PNG, BMP, TIFF, …), or None."""
    head = bytes(data[:16])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "AVIF"
    if _PNM.match(head):
        return "PNM"
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) the header of an image file declares, or None when it declares none btc reads.

    None for a format btc does not read (`image_format` None, AVIF, HDR, OpenEXR) and for a
    header cut short or corrupt; the caller refuses to decode such a file.
    """
    data = bytes(data)
    reader = _READERS.get(image_format(data) or "")
    if reader is None:
        return None
    try:
        size = reader(data)
    except (struct.error, IndexError, ValueError):
        return None
    if size is None or size[0] < 0 or size[1] < 0:
        return None
    return size


def _png(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _jpeg(data: bytes) -> tuple[int, int] | None:
    frame = jpeg_frame(data)
    return None if frame is None else (frame[0], frame[1])


def jpeg_frame(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, bits per sample) of a JPEG's frame header, or None when it has none before
    its scan data."""
    i, n = 2, len(data)
    while i < n:
        while i < n and data[i] != 0xFF:  # bytes between markers (libjpeg skips them, with a warning)
            i += 1
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker == 0x01 or marker == 0xD8 or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        (length,) = struct.unpack(">H", data[i:i + 2])
        if marker in _SOF:
            precision, height, width = struct.unpack(">BHH", data[i + 2:i + 7])
            return width, height, precision
        i += length
    return None


def _bmp(data: bytes) -> tuple[int, int]:
    (dib,) = struct.unpack("<I", data[14:18])
    if dib == 12:  # BITMAPCOREHEADER: 16-bit unsigned sides
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # a negative height is a top-down bitmap


def _gif(data: bytes) -> tuple[int, int]:
    return struct.unpack("<HH", data[6:10])


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first IFD, the page OpenCV decodes."""
    e = "<" if data[:2] == b"II" else ">"
    big = struct.unpack(e + "H", data[2:4])[0] == 43
    if big:
        (ifd,) = struct.unpack(e + "Q", data[8:16])
        (count,) = struct.unpack(e + "Q", data[ifd:ifd + 8])
        first, entry_size, value_at = ifd + 8, 20, 12
    else:
        (ifd,) = struct.unpack(e + "I", data[4:8])
        (count,) = struct.unpack(e + "H", data[ifd:ifd + 2])
        first, entry_size, value_at = ifd + 2, 12, 8
    sides: dict[int, int] = {}
    for k in range(min(count, 4096)):
        at = first + k * entry_size
        tag, kind = struct.unpack(e + "HH", data[at:at + 4])
        if tag not in (256, 257):
            continue
        value = data[at + value_at:at + entry_size]
        if kind == 3:  # SHORT
            sides[tag] = struct.unpack(e + "H", value[:2])[0]
        elif kind == 4:  # LONG
            sides[tag] = struct.unpack(e + "I", value[:4])[0]
        elif kind == 16:  # LONG8 (BigTIFF)
            sides[tag] = struct.unpack(e + "Q", value[:8])[0]
        else:
            return None
    if 256 not in sides or 257 not in sides:
        return None
    return sides[256], sides[257]


def _j2k_siz(data: bytes, at: int) -> tuple[int, int] | None:
    """Image size of a JPEG 2000 codestream starting at `at` (SOC, then the SIZ marker)."""
    if data[at:at + 4] != _J2K:
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", data[at + 8:at + 24])
    return xsiz - xosiz, ysiz - yosiz


def _jpeg2000(data: bytes) -> tuple[int, int] | None:
    """The codestream's SIZ (what OpenJPEG decodes), found by walking the JP2 boxes."""
    if data.startswith(_J2K):
        return _j2k_siz(data, 0)
    i, n = 0, len(data)
    while i + 8 <= n:
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        header = 8
        if length == 1:
            (length,) = struct.unpack(">Q", data[i + 8:i + 16])
            header = 16
        elif length == 0:
            length = n - i
        if kind == b"jp2c":
            return _j2k_siz(data, i + header)
        if length < header:
            return None
        i += length
    return None


def _pnm(data: bytes) -> tuple[int, int] | None:
    if data[:2] == b"P7":  # PAM: WIDTH and HEIGHT header lines
        header = data[:4096].split(b"ENDHDR")[0]
        width = re.search(rb"^WIDTH\s+(\d+)", header, re.M)
        height = re.search(rb"^HEIGHT\s+(\d+)", header, re.M)
        return (int(width.group(1)), int(height.group(1))) if width and height else None
    text = re.sub(rb"#[^\n]*", b" ", data[2:4096])  # comments may sit between the numbers
    numbers = re.match(rb"\s*(\d+)\s+(\d+)", text)
    return (int(numbers.group(1)), int(numbers.group(2))) if numbers else None


def _sun_raster(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[4:12])


_READERS = {
    "PNG": _png, "JPEG": _jpeg, "BMP": _bmp, "GIF": _gif, "WebP": _webp, "TIFF": _tiff,
    "BigTIFF": _tiff, "JPEG 2000": _jpeg2000, "PNM": _pnm, "Sun raster": _sun_raster,
}
