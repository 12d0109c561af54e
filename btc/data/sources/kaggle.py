"""`btc prepare kaggle`: the Kaggle "Brain Tumor MRI Dataset", with paper 004's crop or none.

Layout read: `SRC/{Training,Testing}/{glioma,meningioma,notumor,pituitary}/*` (any image format
OpenCV decodes, whatever the extension says; older class-folder spellings such as
`glioma_tumor` / `no_tumor` are accepted). Split comes from the Training/Testing folder, label
from the class folder. Output: `OUT/images/{train,test}/<label>/<stem>.png` (or `.jpg` with
`--format jpg`), a manifest row per image and dataset.yaml with the audit summary.

**The crop** (`--crop`, recorded in dataset.yaml `params.crop`):
- `extreme` (default): paper 004's extreme-point crop of the dataset page (`btc.data.crop`,
  which documents how it departs from the snippet), with `--pad P` pixels kept around it. The
  box used and the snippet's box are kept in the manifest (`crop`, `crop_ref`, both
  `x0,y0,x1,y1`, end-exclusive); an image kept uncropped is flagged (`crop_note`, dataset.yaml
  `flagged`).
- `none`: no crop, the whole image resized (paper 002 resizes the images to 224 × 224 and
  crops nothing); `crop` is then the whole image and `crop_ref` empty.

Output pixels are grayscale uint8 (MRI is monochrome; the public files are a mix of grayscale,
RGB and RGBA encodings of gray images), read by `btc.data.images.read_gray_uint8`: an 8-bit JPEG
decoded straight to its luma channel (identical to OpenCV's BGR→gray of the decoded colour image
except on tinted files: 85 of the 4,038 colour JPEGs of ../shared/data, a few pixels each), other
colour inputs through OpenCV's BGR→gray, 16-bit inputs through `to_uint8`. The image is resized to `--size`² without keeping the aspect ratio, as
the papers do (`resize_square`: area interpolation when shrinking, bilinear when enlarging).

A new image from outside the dataset (`btc predict`) goes through `input_step`, built from
dataset.yaml: `ExtremePointCrop` (the same crop with the recorded `--pad`, then the same resize)
or, for `--crop none`, `Resize`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from btc.data.crop import (
    BLUR,
    CROP_METHOD,
    MORPH_ITERATIONS,
    THRESHOLD,
    CropResult,
    crop_box,
    crop_image,
)
from btc.data.images import (
    ImageReadError,
    phash64,
    pixel_sha256,
    resize_square,
    to_gray_uint8,
)
from btc.data.prepare.classes import CLASS_ORDER, default_tasks, ordered_classes
from btc.data.prepare.finishing import PrepareSummary, finish
from btc.data.prepare.inputs import (
    Skipped,
    error_reason,
    list_files,
    read_input_image,
    rel_posix,
    unique_names,
)
from btc.data.prepare.staging import Stage, staging_dir
from btc.data.prepare.work import Work, done, failed
from btc.data.prepare.writing import staged, write_image
from btc.errors import BtcError
from btc.progress import SILENT, Progress

from .input_step import Resize, recorded_size

CROPS = ("extreme", "none")
SPLIT_DIRS = {"training": "train", "train": "train", "testing": "test", "test": "test"}
CLASS_ALIASES = {
    "glioma": "glioma", "glioma_tumor": "glioma", "glioma_tumour": "glioma",
    "meningioma": "meningioma", "meningioma_tumor": "meningioma", "meningioma_tumour": "meningioma",
    "notumor": "notumor", "no_tumor": "notumor", "no_tumour": "notumor", "notumour": "notumor",
    "pituitary": "pituitary", "pituitary_tumor": "pituitary", "pituitary_tumour": "pituitary",
}
FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg"}


@dataclass(frozen=True)
class ExtremePointCrop:
    """A new image brought to a Kaggle dataset's inputs: the crop prepare applied, then its resize."""

    pad: int = 0
    size: int | None = None

    def apply(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        cropped, result = crop_image(image, self.pad)
        return resize_square(cropped, self.size), result.box

    def describe(self) -> str:
        crop = "extreme-point crop" + (f" (pad {self.pad})" if self.pad else "")
        return crop + (f", resize to {self.size}²" if self.size else "")


def recorded_crop(info: dict[str, Any]) -> str:
    """The crop a Kaggle dataset's `dataset.yaml` records (`params.crop`); `extreme` for datasets
    prepared before `--crop` existed, which all had it."""
    crop = (info.get("params") or {}).get("crop")
    return str(crop) if crop in CROPS else "extreme"


def input_step(info: dict[str, Any]) -> ExtremePointCrop | Resize:
    """The step of a Kaggle dataset's `dataset.yaml`: its recorded crop (with `pad`) and `size`."""
    if recorded_crop(info) == "none":
        return Resize(recorded_size(info))
    params = info.get("params") or {}
    return ExtremePointCrop(pad=int(params.get("pad") or 0), size=recorded_size(info))


def _box_text(box: tuple[int, int, int, int] | None) -> str:
    return "" if box is None else ",".join(map(str, box))


# --------------------------------------------------------------------------- one image (worker)


def _prepare_one(task: dict[str, Any]) -> dict[str, Any]:
    try:
        image = read_input_image(task)
    except (ImageReadError, OSError) as e:
        return failed(task, error_reason(e, task["src"]))
    gray = to_gray_uint8(image)
    if task["crop"] == "none":
        result = CropResult((0, 0, gray.shape[1], gray.shape[0]), None, "")
    else:
        result = crop_box(gray, task["pad"])
    x0, y0, x1, y1 = result.box
    out = resize_square(gray[y0:y1, x0:x1], task["size"])
    fields = write_image(staged(task, task["path"]), out, task["format"])
    row = {
        "path": task["path"], "label": task["label"], "split": task["split"], "patient_id": "",
        "source": "kaggle", "orig_path": task["key"], **fields,
        "orig_height": int(image.shape[0]), "orig_width": int(image.shape[1]),
        "orig_sha256": pixel_sha256(gray), "orig_phash": phash64(gray),
        "crop": _box_text(result.box), "crop_ref": _box_text(result.ref), "crop_note": result.note,
    }
    return done(task, row)


# --------------------------------------------------------------------------- scanning


@dataclass
class _Input:
    path: Path        # absolute file
    key: str          # relative to SRC (orig_path)
    split: str
    label: str


def _label_of(folder: str) -> str | None:
    return CLASS_ALIASES.get(folder.strip().lower().replace(" ", "_").replace("-", "_"))


def _scan(src: Path, skipped: list[Skipped], exclude: list[Path]) -> list[_Input]:
    if not src.exists():
        raise BtcError(f"{src}: no such folder")
    if not src.is_dir():
        raise BtcError(f"{src}: not a folder")
    try:
        entries = sorted(src.iterdir())
    except OSError as e:
        raise BtcError(f"{src}: cannot read folder ({e.strerror or e})") from None
    excluded = {p.resolve() for p in exclude}
    split_dirs = [(e, SPLIT_DIRS[e.name.lower()]) for e in entries
                  if e.name.lower() in SPLIT_DIRS and e.is_dir()]
    if not split_dirs:
        raise BtcError(f"{src}: not the Kaggle layout (expected Training/ and Testing/ folders, "
                       f"each with {', '.join(CLASS_ORDER)} inside)")
    for e in entries:
        if (e, SPLIT_DIRS.get(e.name.lower())) not in split_dirs and e.resolve() not in excluded:
            skipped.append(Skipped(e.name + ("/" if e.is_dir() else ""), "not inside Training/ or Testing/"))
    inputs: list[_Input] = []
    for split_dir, split in split_dirs:
        try:
            children = sorted(split_dir.iterdir())
        except OSError as e:
            skipped.append(Skipped(split_dir.name + "/", f"cannot read folder ({e.strerror or e})"))
            continue
        for child in children:
            rel = rel_posix(child, src)
            if child.resolve() in excluded:
                continue
            if not child.is_dir():
                skipped.append(Skipped(rel, "not inside a class folder"))
                continue
            label = _label_of(child.name)
            if label is None:
                skipped.append(Skipped(rel + "/", f"unknown class folder (expected {', '.join(CLASS_ORDER)})"))
                continue
            for f in list_files(child, skipped, src, exclude):
                inputs.append(_Input(f, rel_posix(f, src), split, label))
    return inputs


# --------------------------------------------------------------------------- the command


def prepare_kaggle(src: str | Path, out: str | Path, *, size: int = 256, workers: int | None = None,
                   pad: int = 0, crop: str = "extreme", dedup: bool = False, image_format: str = "png",
                   progress: Progress = SILENT) -> PrepareSummary:
    """Crop (`crop`: `extreme` or `none`), resize and write the Kaggle dataset at `src` in `out`.

    Raises `BtcError` for a wrong SRC/OUT or when no image is usable; single bad files are
    skipped and listed in the summary (and noted on `progress`).
    """
    started = time.monotonic()
    src, out = Path(src), Path(out)
    fmt = FORMATS.get(str(image_format).lower())
    if fmt is None:
        raise BtcError(f"--format {image_format}: use png or jpg")
    if size < 8:
        raise BtcError(f"--size {size}: must be at least 8")
    if pad < 0:
        raise BtcError(f"--pad {pad}: must be 0 or more")
    if crop not in CROPS:
        raise BtcError(f"--crop {crop}: use {' or '.join(CROPS)}")
    if pad and crop == "none":
        raise BtcError(f"--pad {pad}: pads the extreme-point crop; --crop none keeps the whole image (drop --pad)")
    skipped: list[Skipped] = []
    inputs = _scan(src, skipped, exclude=[Path(out).absolute(), staging_dir(out)])
    stage = Stage(out, source="kaggle", params={"size": size, "pad": pad, "format": fmt,
                                                "crop": CROP_METHOD if crop == "extreme" else crop},
                  inputs=[src])
    try:
        by_folder: dict[tuple[str, str], list[_Input]] = {}
        for inp in inputs:
            by_folder.setdefault((inp.split, inp.label), []).append(inp)
        work = Work(stage, skipped)
        for (split, label), group in sorted(by_folder.items()):
            stems = unique_names([i.path.stem for i in group], [i.path.suffix for i in group])
            for inp, stem in zip(group, stems, strict=True):
                work.add(inp.key, inp.path, {"split": split, "label": label, "path": f"images/{split}/{label}/{stem}.{fmt}",
                                             "size": size, "pad": pad, "crop": crop, "format": fmt},
                         worker=_prepare_one, description="prepare kaggle")
        work.run(workers, progress)
        rows, keys = work.rows, work.keys
        flagged = [Skipped(r["orig_path"], r["crop_note"]) for r in rows if r.get("crop_note")]
        classes = ordered_classes(r["label"] for r in rows)
        command = (f"btc prepare kaggle {src} {out} --size {size} --crop {crop} --pad {pad} --format {fmt}"
                   + (" --dedup" if dedup else ""))
        output = (f"grayscale uint8 {fmt.upper()} {size}x{size} (aspect not kept; a JPEG's gray is its luma channel "
                  "as libjpeg decodes it, see btc.data.images.read_gray_uint8)")
        if crop == "extreme":
            preprocessing = {
                "crop": "extreme points of the head contour (paper 004 / dataset page), inclusive, "
                        "extended so that it never cuts a thresholded component; see btc.data.crop",
                "method": CROP_METHOD, "threshold": THRESHOLD, "blur": list(BLUR),
                "erode_dilate_iterations": MORPH_ITERATIONS, "pad": pad, "output": output}
        else:
            preprocessing = {"crop": "none: the whole image, resized (paper 002)", "output": output}
        return finish(stage, rows, keys, src=src, command=command,
                      params={"size": size, "crop": crop, "pad": pad, "format": fmt, "dedup": dedup},
                      classes=classes, tasks=default_tasks(classes), skipped=skipped, flagged=flagged,
                      extra={"preprocessing": preprocessing}, dedup=dedup, progress=progress, started=started)
    finally:
        stage.close()


__all__ = ["prepare_kaggle", "crop_box", "crop_image", "CropResult", "CROPS", "ExtremePointCrop", "input_step",
           "recorded_crop"]
