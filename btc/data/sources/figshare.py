"""`btc prepare figshare`: the Figshare brain-tumour dataset of Cheng et al. (MATLAB v7.3 files).

Each `<id>.mat` is an HDF5 file holding the struct `cjdata`: `image` (int16, 512×512 for most
slices), `label` (1 meningioma, 2 glioma, 3 pituitary), `PID` (patient id as uint16 character
codes), `tumorBorder` and `tumorMask`. `cvind.mat` (anywhere under SRC) holds the author's
patient-wise 5-fold split: `cvind[i-1]` is the fold (1–5) of `i.mat`. It is checked against the
files before any work (finite values 1–5, long enough for the highest file number); a broken one
stops the prepare in one line instead of writing impossible folds.

Written per slice (`<id>` = the file's stem):
- `images/<label>/<id>.png`: uint8, the slice windowed to its own [min, max] (`to_uint8`),
  resized to `--size` if needed. Manifest `sha256`/`phash` are of this image.
- `masks/<label>/<id>.png` (`mask_path`): the tumour mask as 0/255, resized with nearest
  neighbour. A mask whose shape differs from its image's is dropped, the image kept and flagged
  (`mask_note`, dataset.yaml `flagged`).
- with `--16bit`: `images16/<label>/<id>.png` (`image16_path`), the raw pixels, lossless, at the
  original size: a 16-bit PNG whose values equal the int16 image (stored as their uint16 bit
  pattern, which is the same number for the non-negative values MRI slices hold; read with
  `cv2.IMREAD_UNCHANGED` and `.view(np.int16)` for the exact int16 in every case).

Orientation: h5py returns MATLAB arrays transposed; images and masks are written in MATLAB's
orientation (`array.T`), i.e. as `imshow(cjdata.image)` shows them.

Manifest: `label` is the class name shared with the Kaggle set (1 → meningioma, 2 → glioma,
3 → pituitary), `patient_id` the decoded `PID`, `fold` from cvind.mat (empty without it),
`split` empty (the protocol uses the folds). A file whose label is NaN, infinite or not 1–3, or
whose image is over the pixel limit or under the smallest side (`btc.data.limits`), is skipped
with its reason. `--no-tumor DIR` merges a folder of no-tumour images
as in paper 003: each is read as grayscale uint8, resized to `--size` and written to
`images/notumor/` with `source: folder` and `orig_path` `<DIR name>/<path inside DIR>`.

Folds of the merged images: cvind.mat covers only Figshare's own slices, so with cvind.mat the
no-tumour images get folds 1–5 from btc (`btc.data.splits.fill_folds`, seed 0: deterministic,
spread evenly over the five folds, a duplicate group of them kept in one fold, an image that
duplicates a slice put in that slice's fold). The manifest says where each fold comes from
(`fold_source`: `cvind` or `btc`), so a 4-class CV runs the five official folds (issue 15).

A new image from outside the dataset (`btc predict`) goes through `input_step`: grayscale uint8
(an int16 slice windowed as above), resized to `--size`².
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from btc.data.images import IMAGE_SUFFIXES, resize_square, to_uint8
from btc.data.limits import ImageLimits
from btc.data.prepare.classes import default_tasks, ordered_classes
from btc.data.prepare.finishing import PrepareSummary, finish
from btc.data.prepare.inputs import (
    Skipped,
    error_reason,
    list_files,
    rel_posix,
    task_limits,
    unique_names,
)
from btc.data.prepare.staging import Stage, staging_dir
from btc.data.prepare.work import Work, done, failed
from btc.data.prepare.writing import read_gray_row, write_image
from btc.data.splits import fill_folds, group_labels
from btc.errors import BtcError
from btc.progress import SILENT, Progress

from .input_step import Resize, recorded_size
from .kaggle import CLASS_ALIASES

LABELS = {1: "meningioma", 2: "glioma", 3: "pituitary"}
CVIND = "cvind.mat"
FOLDS = 5  # cvind.mat's patient-wise folds are numbered 1–5
FOLD_SEED = 0  # the folds btc gives the merged no-tumour images


class MatFileError(BtcError):
    """A .mat file that is not a usable Figshare slice; the message is the reason alone."""


# --------------------------------------------------------------------------- reading


def _not_hdf5_reason(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    if not head:
        return "empty file"
    if head.startswith(b"MATLAB 5.0 MAT-file"):
        return "MATLAB v5 .mat file, not v7.3/HDF5 (re-save it in MATLAB with save(name, '-v7.3'))"
    return "not a MATLAB v7.3 (HDF5) .mat file"


def _open(path: Path) -> h5py.File:
    try:
        if not h5py.is_hdf5(path):
            raise MatFileError(_not_hdf5_reason(path))
        return h5py.File(path, "r")
    except OSError as e:
        raise MatFileError(f"corrupt HDF5 file ({e})") from None


def _decode_chars(dataset: h5py.Dataset) -> str:
    if dataset.attrs.get("MATLAB_empty"):
        return ""
    codes = np.asarray(dataset[()]).ravel()
    return "".join(chr(int(c)) for c in codes if int(c)).strip()


def _label_of(value: np.ndarray) -> int:
    """cjdata.label as 1, 2 or 3; anything else (NaN, inf, 7, several values) is a `MatFileError`."""
    flat = np.asarray(value).ravel()
    number = flat[0] if flat.size == 1 else None
    if (number is None or not np.issubdtype(flat.dtype, np.number) or not np.isfinite(number)
            or number != int(number) or int(number) not in LABELS):
        raise MatFileError(f"cjdata.label {flat.tolist()} is not 1 (meningioma), 2 (glioma) or 3 (pituitary)")
    return int(number)


def read_cjdata(path: str | Path, *, max_pixels: int | None = None) -> dict[str, Any]:
    """`cjdata` of one Figshare file: image (MATLAB orientation), label, pid, mask.

    The image's size is checked against `max_pixels` (default `BTC_MAX_PIXELS`) from the HDF5
    dataset's shape, before its pixels are read. A tumour mask whose shape differs from the
    image's is dropped (`mask` None) and `mask_note` says why; the image is kept. Raises
    `MatFileError` (a `BtcError`) whose message says what is wrong with the file.
    """
    path = Path(path)
    limits = ImageLimits.from_env() if max_pixels is None else ImageLimits(max_pixels=max_pixels)
    with _open(path) as f:
        if "cjdata" not in f:
            found = ", ".join(sorted(k for k in f.keys() if not k.startswith("#"))) or "nothing"
            raise MatFileError(f"no 'cjdata' struct (found: {found})")
        cj = f["cjdata"]
        if not isinstance(cj, h5py.Group):
            raise MatFileError("'cjdata' is not a struct")
        for field in ("image", "label"):
            if field not in cj:
                raise MatFileError(f"cjdata has no '{field}'")
        shape = getattr(cj["image"], "shape", None)
        if shape is not None and len(shape) == 2:
            too_large = limits.pixels_problem(shape[0], shape[1])  # stored transposed: (width, height)
            if too_large:
                raise MatFileError(f"cjdata.image: {too_large}")
        try:
            image = np.asarray(cj["image"][()]).T
            label_value = np.asarray(cj["label"][()])
            pid = _decode_chars(cj["PID"]) if "PID" in cj else ""
            mask = np.asarray(cj["tumorMask"][()]).T if "tumorMask" in cj else None
        except (OSError, KeyError, TypeError, ValueError) as e:
            raise MatFileError(f"unreadable cjdata ({e})") from None
    if image.ndim != 2 or image.size == 0:
        raise MatFileError(f"cjdata.image is not a 2-D image (shape {image.shape})")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise MatFileError("cjdata.image has NaN or infinite pixels")
    label = _label_of(label_value)
    mask_note = ""
    if mask is not None and mask.shape != image.shape:
        mask_note = (f"tumorMask is {mask.shape[1]}×{mask.shape[0]} but the image {image.shape[1]}×{image.shape[0]}: "
                     "mask dropped, image kept")
        mask = None
    return {"image": image, "label": label, "pid": pid, "mask": mask, "mask_note": mask_note}


def read_cvind(path: str | Path) -> np.ndarray:
    """Folds of cvind.mat (1-based values; index i-1 ↔ file i.mat), as read (not yet checked)."""
    path = Path(path)
    with _open(path) as f:
        if "cvind" not in f:
            raise MatFileError("no 'cvind' variable")
        try:
            values = np.asarray(f["cvind"][()]).ravel()
        except (OSError, TypeError, ValueError) as e:
            raise MatFileError(f"unreadable cvind ({e})") from None
    return values


def checked_folds(values: np.ndarray, ids: list[int]) -> np.ndarray:
    """cvind's values as int folds 1–5, checked against the numbered .mat files `ids`.

    Raises `MatFileError` for a cvind that is not numeric, holds NaN/inf or a value other than
    1–5, or is shorter than the highest file number (so some file would have no fold).
    """
    if values.size == 0 or not np.issubdtype(values.dtype, np.number):
        raise MatFileError(f"cvind is not a list of folds (dtype {values.dtype}, {values.size} values)")
    finite = np.isfinite(values)
    if not finite.all():
        i = int(np.argmin(finite))
        raise MatFileError(f"cvind[{i}] (the fold of {i + 1}.mat) is {values[i]}, not a fold 1–{FOLDS}")
    bad = (values != np.round(values)) | (values < 1) | (values > FOLDS)
    if bad.any():
        i = int(np.argmax(bad))
        raise MatFileError(f"cvind[{i}] (the fold of {i + 1}.mat) is {values[i]:g}, not a fold 1–{FOLDS}")
    beyond = [i for i in ids if i > values.size]
    if beyond:
        raise MatFileError(f"cvind has {values.size} folds but the files go up to {max(beyond)}.mat "
                           "(too short for these files)")
    return values.astype(np.int64)


def to_uint16_bits(image: np.ndarray) -> np.ndarray:
    """Raw pixels as uint16 for a lossless 16-bit PNG (int16 keep their bit pattern)."""
    if image.dtype == np.uint16:
        return image
    if image.dtype == np.int16:
        return image.view(np.uint16)
    if np.issubdtype(image.dtype, np.integer) and image.min() >= 0 and image.max() <= 65535:
        return image.astype(np.uint16)
    return np.clip(np.round(image.astype(np.float64)), 0, 65535).astype(np.uint16)


# --------------------------------------------------------------------------- workers


def _slice_one(task: dict[str, Any]) -> dict[str, Any]:
    src = Path(task["src"])
    limits = task_limits(task)
    try:
        data = read_cjdata(src, max_pixels=limits.max_pixels)
    except (MatFileError, OSError) as e:
        return failed(task, error_reason(e, src))
    stage, stem, size = Path(task["stage"]), task["stem"], task["size"]
    image, label = data["image"], LABELS[data["label"]]
    too_small = limits.side_problem(image.shape[1], image.shape[0])
    if too_small:
        return failed(task, too_small)
    row: dict[str, Any] = {
        "path": f"images/{label}/{stem}.png", "label": label, "split": "", "patient_id": data["pid"],
        "source": "figshare", "orig_path": task["key"],
    }
    row.update(write_image(stage / row["path"], resize_square(to_uint8(image), size)))
    row["mask_path"], row["mask_note"] = "", data["mask_note"]
    if data["mask"] is not None:
        mask = ((data["mask"] > 0) * 255).astype(np.uint8)
        row["mask_path"] = f"masks/{label}/{stem}.png"
        write_image(stage / row["mask_path"], resize_square(mask, size, nearest=True))
    if task["bit16"]:
        row["image16_path"] = f"images16/{label}/{stem}.png"
        write_image(stage / row["image16_path"], to_uint16_bits(image))
    if task["with_folds"]:
        row["fold"] = task["fold"]
    row.update({"orig_height": int(image.shape[0]), "orig_width": int(image.shape[1]),
                "mat_label": data["label"]})
    return done(task, row)


def _notumor_one(task: dict[str, Any]) -> dict[str, Any]:
    result = read_gray_row(task, {"label": "notumor", "split": "", "patient_id": "", "source": "folder",
                                  "orig_path": task["orig"]})
    if result["ok"]:
        row = result["row"]
        row["mask_path"], row["mask_note"] = "", ""
        if task["bit16"]:
            row["image16_path"] = ""
        if task["with_folds"]:
            row["fold"] = None
        row["mat_label"] = ""
    return result


# --------------------------------------------------------------------------- the command


def _folder(path: Path, what: str) -> Path:
    if not path.exists():
        raise BtcError(f"{path}: no such folder ({what})")
    if not path.is_dir():
        raise BtcError(f"{path}: not a folder ({what})")
    try:
        next(iter(path.iterdir()), None)
    except OSError as e:
        raise BtcError(f"{path}: cannot read folder ({e.strerror or e})") from None
    return path


def complete_folds(df: pd.DataFrame) -> dict[str, Any]:
    """Folds 1–5 for the rows cvind.mat leaves without one (`fill_folds`; `fold_source` says which
    came from where); the counts for dataset.yaml's `folds`."""
    missing = df["fold"].isna().to_numpy()
    source = np.where(missing, "btc", "cvind")
    if missing.any():
        filled = fill_folds(df["fold"].to_numpy(dtype=float, na_value=np.nan), df["label"].to_numpy(),
                            group_labels(df), FOLDS, seed=FOLD_SEED)
        df["fold"] = pd.array(filled, dtype="Int64")
    df["fold_source"] = source
    return {"fold_source": {"cvind": int((source == "cvind").sum()), "btc": int((source == "btc").sum())}}


def _check_no_tumor_folder(folder: Path, images: list[Path]) -> None:
    """Refuse a `--no-tumor` folder that holds no image, or tumour class folders (every image in
    it would be labelled notumor: the Kaggle set's Training/ instead of Training/notumor)."""
    hint = "give the folder of the no-tumour images, e.g. the Kaggle set's Training/notumor"
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in images):
        raise BtcError(f"--no-tumor {folder}: no image files in the folder ({hint})")
    for path in images:
        for part in path.relative_to(folder).parts[:-1]:
            label = CLASS_ALIASES.get(part.strip().lower().replace(" ", "_").replace("-", "_"))
            if label is not None and label != "notumor":
                raise BtcError(f"--no-tumor {folder}: holds a '{part}' folder, whose images are not "
                               f"no-tumour images ({hint})")


def input_step(info: dict[str, Any]) -> Resize:
    """A new image: grayscale uint8 (an int16 slice windowed to its [min, max]), resized to `--size`²."""
    return Resize(recorded_size(info))


def prepare_figshare(src: str | Path, out: str | Path, *, size: int = 512, workers: int | None = None,
                     bit16: bool = False, no_tumor: str | Path | None = None,
                     progress: Progress = SILENT) -> PrepareSummary:
    """Write the Figshare `.mat` slices under `src` (and optional no-tumour images) to `out`."""
    started = time.monotonic()
    src, out = _folder(Path(src), "Figshare .mat files"), Path(out)
    if size < 8:
        raise BtcError(f"--size {size}: must be at least 8")
    nt = _folder(Path(no_tumor), "--no-tumor") if no_tumor is not None else None
    exclude = [out.absolute(), staging_dir(out)]
    skipped: list[Skipped] = []
    files = list_files(src, skipped, src, exclude)
    mats = [f for f in files if f.suffix.lower() == ".mat" and f.name.lower() != CVIND]
    cvind_files = [f for f in files if f.name.lower() == CVIND]
    for f in files:
        if f.suffix.lower() != ".mat":
            skipped.append(Skipped(rel_posix(f, src), "not a .mat file"))
    folds: np.ndarray | None = None
    if cvind_files:
        try:
            folds = checked_folds(read_cvind(cvind_files[0]), [int(m.stem) for m in mats if m.stem.isdigit()])
        except (MatFileError, OSError) as e:
            raise BtcError(f"{cvind_files[0]}: {error_reason(e)}; use the dataset's own {CVIND}, or move it "
                           f"out of {src} to prepare without the official folds") from None
        for extra in cvind_files[1:]:
            skipped.append(Skipped(rel_posix(extra, src), f"another {CVIND}; the first one is used"))
    if not mats and nt is None:
        raise BtcError(f"{src}: no .mat files found")
    images = list_files(nt, skipped, nt.parent, exclude) if nt is not None else []
    if nt is not None:
        _check_no_tumor_folder(nt, images)
    with_folds = folds is not None

    def fold_of(stem: str) -> int | None:
        if folds is None or not stem.isdigit() or not 1 <= int(stem) <= len(folds):
            return None
        return int(folds[int(stem) - 1])

    stage = Stage(out, source="figshare", params={"size": size, "bit16": bit16, "folds": with_folds,
                                                  "method": "figshare/v1"},
                  inputs=[src] + ([nt] if nt else []))
    try:
        work = Work(stage, skipped)
        stems = unique_names([m.stem for m in mats], [m.parent.name for m in mats])
        for mat, stem in zip(mats, stems, strict=True):
            fold = fold_of(mat.stem)
            work.add(rel_posix(mat, src), mat, {"stem": stem, "size": size, "bit16": bit16, "fold": fold,
                                                "with_folds": with_folds},
                     fold, bit16, worker=_slice_one, description="prepare figshare")
        if nt is not None:
            nt_stems = unique_names([p.stem for p in images], [p.suffix for p in images])
            for img, stem in zip(images, nt_stems, strict=True):
                orig = rel_posix(img, nt.parent)
                work.add(f"notumor:{orig}", img, {"orig": orig, "path": f"images/notumor/{stem}.png", "size": size,
                                                  "bit16": bit16, "with_folds": with_folds},
                         bit16, worker=_notumor_one, description="no-tumour images", name=orig)
        work.run(workers, progress)
        rows, keys = work.rows, work.keys
        flagged = [Skipped(r["orig_path"], r["mask_note"]) for r in rows if r.get("mask_note")]
        classes = ordered_classes(r["label"] for r in rows)
        command = f"btc prepare figshare {src} {out} --size {size}" + (" --16bit" if bit16 else "") + (
            f" --no-tumor {nt}" if nt else "")
        extra: dict[str, Any] = {"preprocessing": {
            "image": "int16 slice windowed to its [min, max] → uint8 PNG, MATLAB orientation, "
                     f"resized to {size}x{size} when needed",
            "mask": "tumorMask → 0/255 PNG (nearest neighbour)",
            "labels": {str(k): v for k, v in LABELS.items()},
        }}
        if bit16:
            extra["preprocessing"]["image16"] = ("raw pixels, lossless 16-bit PNG at the original size "
                                                 "(int16 bit pattern; equal values for non-negative pixels)")
        complete = None
        if with_folds:
            extra["folds"] = {"column": "fold", "source": rel_posix(cvind_files[0], src),
                              "values": sorted({int(v) for v in folds}),
                              "note": "cvind[i-1] is the official patient-wise fold of i.mat"}
            if nt is not None:
                extra["folds"]["no_tumor"] = (
                    f"folds 1-{FOLDS} given by btc (seed {FOLD_SEED}): spread evenly, duplicate groups kept in "
                    "one fold; column fold_source says cvind or btc")

            def complete(df: pd.DataFrame) -> dict[str, Any]:
                return {"folds": {**extra["folds"], **complete_folds(df)}}
        if nt is not None:
            extra["provenance_no_tumor"] = str(nt.resolve())
        return finish(stage, rows, keys, src=src, command=command,
                      params={"size": size, "bit16": bit16, "no_tumor": str(nt) if nt else None},
                      classes=classes, tasks=default_tasks(classes), skipped=skipped, flagged=flagged,
                      extra=extra, complete=complete, progress=progress, started=started)
    finally:
        stage.close()


__all__ = ["prepare_figshare", "read_cjdata", "read_cvind", "checked_folds", "to_uint16_bits", "LABELS",
           "input_step"]
