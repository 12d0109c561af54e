"""Writing one prepared image into the staging folder, and its manifest fields.

The manifest's `sha256` and `phash` (DESIGN.md, Data contracts) are of the pixels a reader will
decode: for PNG the pixels given, for JPEG the encoded bytes decoded again (lossy). `write_image`
also returns, under `THUMB`, the written image's thumbnail for the near-duplicate check
(`btc.data.similarity.thumbnail`): the work loop keeps it in memory for the audit at the end of
the run (`Stage.thumbs`), so the candidates' images are not read again; it never reaches the
row cache or the manifest.

Images are written into the staging folder (`btc.data.prepare.staging`), which reaches OUT only
whole, by an atomic swap: an image is therefore written in place (`write_staged`), without the
temporary name and rename of `btc.io`, which cost more than encoding a small PNG (issue 17: prepare
at the speed of a plain script). A file the resume cache does not list is never trusted.
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


def write_staged(path: str | Path, data: bytes) -> None:
    """Write `data` as the new file `path` of a staging folder (the folder is created when missing).

    The file is created afresh (exclusively): a file already there — written by an interrupted
    run, or hard-linked from the previous dataset when the staging folder was seeded from it —
    is unlinked first, so the previous dataset is never written through. An interrupted write
    removes its partial file; one cut by SIGKILL has no row in the cache, so the re-run writes it
    again (and the commit prunes it if its input is gone).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o666)  # mode: 0o666 less the umask, as any new file
    except FileNotFoundError:
        os.makedirs(os.path.dirname(os.fspath(path)), exist_ok=True)
        fd = os.open(path, flags, 0o666)
    except FileExistsError:
        os.unlink(path)
        fd = os.open(path, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


def write_image(path: str | Path, image: np.ndarray, image_format: str = "png") -> dict[str, Any]:
    """Write `image` into the staging folder (`write_staged`) and return the manifest fields of the
    image as written, and its thumbnail under `THUMB`."""
    data = encode_image(image, image_format)
    written = image
    if image_format != "png":
        written = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    write_staged(path, data)
    return {"height": int(written.shape[0]), "width": int(written.shape[1]),
            "sha256": pixel_sha256(written), "phash": phash64(written), THUMB: thumbnail(written)}


def staged(task: dict[str, Any], relative: str) -> str:
    """Where a worker writes the file `relative` of its task: inside the staging folder."""
    return os.path.join(task["stage"], relative)


def read_gray_row(task: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Worker body for a plain image: read (within the task's limits), grayscale uint8, resize to
    `task["size"]`, write PNG.

    The row is `path`, then `fields`, then the written image's columns and the original size.
    """
    try:
        image = read_input_image(task)
    except (ImageReadError, OSError) as e:
        return failed(task, error_reason(e, task["src"]))
    row: dict[str, Any] = {"path": task["path"], **fields}
    row.update(write_image(staged(task, task["path"]), resize_square(to_gray_uint8(image), task["size"])))
    row.update({"orig_height": int(image.shape[0]), "orig_width": int(image.shape[1])})
    return done(task, row)
