"""Writing one prepared image: atomically, with the usual permissions, and its manifest fields.

The manifest's `sha256` and `phash` (DESIGN.md, Data contracts) are of the pixels a reader will
decode: for PNG the pixels given, for JPEG the encoded bytes decoded again (lossy). `write_image`
also returns, under `THUMB`, the written image's thumbnail for the near-duplicate check
(`btc.data.similarity.thumbnail`): the work loop keeps it in memory for the audit at the end of
the run (`Stage.thumbs`), so the candidates' images are not read again; it never reaches the
row cache or the manifest.

Writes are atomic without `btc.io`'s general machinery, which costs more than encoding a small
PNG (issue 17: prepare at the speed of a plain script): the bytes go to a temporary name that is
unique to the writing process (`.<name>.<pid>.tmp`, created with the usual permissions) and are
renamed into place; a temporary file an interrupted run leaves is pruned when the dataset is
committed (it is named in no manifest column).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from btc.data.images import (
    ImageReadError,
    encode_png,
    phash64,
    pixel_sha256,
    resize_square,
    to_gray_uint8,
)
from btc.data.similarity import thumbnail

from .inputs import error_reason, read_input_image
from .work import THUMB, done, failed

JPEG_QUALITY = 95


def encode_image(image: np.ndarray, image_format: str = "png") -> bytes:
    """PNG (lossless, default) or JPEG (quality 95) bytes."""
    if image_format == "png":
        return encode_png(image)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ImageReadError("JPEG encoding failed")
    return buf.tobytes()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def publish(path: Path) -> None:
    """Give a written file the usual permissions (atomic writes create it private, 0600)."""
    try:
        os.chmod(path, _FILE_MODE)
    except OSError:
        pass


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary name of this process, then rename: a reader
    sees the old file or the new one. The folder is created when missing."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # mode: 0o666 less the umask
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_image(path: Path, image: np.ndarray, image_format: str = "png") -> dict[str, Any]:
    """Write `image` atomically and return the manifest fields of the image as written, and its
    thumbnail under `THUMB`."""
    data = encode_image(image, image_format)
    written = image
    if image_format != "png":
        written = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    write_bytes_atomic(Path(path), data)
    return {"height": int(written.shape[0]), "width": int(written.shape[1]),
            "sha256": pixel_sha256(written), "phash": phash64(written), THUMB: thumbnail(written)}


def read_gray_row(task: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Worker body for a plain image: read (within the task's limits), grayscale uint8, resize to
    `task["size"]`, write PNG.

    The row is `path`, then `fields`, then the written image's columns and the original size.
    """
    src = Path(task["src"])
    try:
        image = read_input_image(task)
    except (ImageReadError, OSError) as e:
        return failed(task, error_reason(e, src))
    row: dict[str, Any] = {"path": task["path"], **fields}
    row.update(write_image(Path(task["stage"]) / task["path"], resize_square(to_gray_uint8(image), task["size"])))
    row.update({"orig_height": int(image.shape[0]), "orig_width": int(image.shape[1])})
    return done(task, row)
