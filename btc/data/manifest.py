"""The prepared-dataset contract (DESIGN.md, Data contracts): `manifest.csv` + `dataset.yaml`.

A prepared dataset is a folder with `images/…`, `manifest.csv` (one row per image) and
`dataset.yaml` (classes in index order, tasks, provenance, counts, audit summary). This module
reads, writes and validates both; validation errors name the row and the column. Every file
the manifest names must lie inside the dataset once symlinks are resolved (`check_inside`), and a
malformed dataset.yaml is one line naming it.

Optional columns with a fixed meaning: `mask_path`; `fold`, the official fold (1…K) and
`fold_source`, where it comes from (`cvind` for Figshare's own, `btc` for the folds btc gives the
images merged into such a dataset); `dup_group`, the image's duplicate group (exact copies and
pixel-confirmed near duplicates, `btc.data.audit`; empty for an image with none), which the
leak-free protocol keeps on one side of every split (`btc.data.splits.leak_free_groups`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from btc.errors import BtcError
from btc.io import atomic_write, atomic_write_yaml, read_yaml
from btc.lazy import lazy_import

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

MANIFEST = "manifest.csv"
DATASET_YAML = "dataset.yaml"

REQUIRED_COLUMNS = (
    "path", "label", "split", "patient_id", "source", "orig_path",
    "height", "width", "sha256", "phash",
)
OPTIONAL_COLUMNS = ("mask_path", "fold", "fold_source", "dup_group")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
SPLITS = ("train", "test", "")
SOURCES = ("kaggle", "figshare", "folder", "phantom")
MULTICLASS = "multiclass"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PHASH = re.compile(r"^[0-9a-f]{16}$")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")  # the same, for whole-column matching
_PHASH_HEX = re.compile(r"[0-9a-f]{16}")


class ManifestError(BtcError):
    """A manifest or dataset.yaml that breaks the contract."""


def _cell_error(row: int, column: str, value: Any, why: str) -> ManifestError:
    # Row numbers are 1-based data rows, as a user counts them in a spreadsheet below the header.
    return ManifestError(f"manifest row {row}, column '{column}': {why} (got {value!r})")


def validate_manifest(df: pd.DataFrame, classes: list[str] | None = None) -> pd.DataFrame:
    """Check `df` against the schema and return it with typed columns.

    `height`, `width` become int; `fold` becomes a nullable Int64; every other column is str.
    Raises `ManifestError` naming the first offending row and column. The columns are screened
    at once (`_suspect_rows`); only rows the screen cannot clear go through the row-by-row check
    (`_row_problem`), which gives the error, so a manifest of 100k rows validates in milliseconds.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(f"manifest is missing column(s): {', '.join(missing)}")
    df = df.copy()
    for column in df.columns:
        if column not in ("height", "width", "fold"):
            df[column] = df[column].fillna("").astype(str)
    duplicate = df["path"].duplicated().to_numpy()
    for i in _suspect_rows(df, classes, duplicate):
        problem = _row_problem(i + 1, df.iloc[[i]].to_dict("records")[0], classes, duplicate[i])
        if problem is not None:
            raise problem
    df["height"] = df["height"].astype(int)
    df["width"] = df["width"].astype(int)
    if "fold" in df.columns:
        df["fold"] = pd.to_numeric(df["fold"].replace("", None), errors="coerce").astype("Int64")
    return df


_DOT_DOT = re.compile(r"(?:^|/)\.\.(?:/|$)")
_POSITIVE = re.compile(r"0*[1-9][0-9]*")


def _suspect_rows(df: pd.DataFrame, classes: list[str] | None, duplicate: Any) -> list[int]:
    """Positions of the rows that may break the schema (a superset of those that do), in order."""
    path = df["path"]
    bad = (path == "") | path.str.startswith("/") | path.str.contains("\\", regex=False)
    bad |= path.str.contains(_DOT_DOT) | duplicate
    bad |= df["label"] == ""
    if classes is not None:
        bad |= ~df["label"].isin(classes)
    bad |= ~df["split"].isin(SPLITS) | ~df["source"].isin(SOURCES)
    for column in ("height", "width"):
        values = df[column]
        if pd.api.types.is_integer_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
            bad |= values <= 0
        else:
            bad |= ~values.astype(str).str.fullmatch(_POSITIVE).fillna(False).astype(bool)
    bad |= ~df["sha256"].str.fullmatch(_SHA256_HEX)
    bad |= ~df["phash"].str.fullmatch(_PHASH_HEX)
    if "fold" in df.columns:
        fold = df["fold"]
        empty = fold.isna() | (fold.astype(str) == "")
        number = pd.to_numeric(fold.where(~empty, None), errors="coerce")
        bad |= ~empty & ~(number.notna() & number.abs().lt(float("inf")))
    if "dup_group" in df.columns:
        group = df["dup_group"]
        bad |= (group != "") & ~group.str.fullmatch(_POSITIVE).fillna(False).astype(bool)
    return [int(i) for i in bad.to_numpy().nonzero()[0]]


def _row_problem(i: int, rec: dict[str, Any], classes: list[str] | None, duplicate: bool) -> ManifestError | None:
    """The first problem of data row `i` (1-based, as a user counts rows below the header), or None."""
    path = rec["path"]
    if not path:
        return _cell_error(i, "path", path, "empty path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\\" in path:
        return _cell_error(i, "path", path, "must be a relative POSIX path inside the dataset")
    if duplicate:
        return _cell_error(i, "path", path, "duplicate path")
    if not rec["label"]:
        return _cell_error(i, "label", rec["label"], "empty label")
    if classes is not None and rec["label"] not in classes:
        return _cell_error(i, "label", rec["label"], f"not one of the classes {classes}")
    if rec["split"] not in SPLITS:
        return _cell_error(i, "split", rec["split"], "must be train, test or empty")
    if rec["source"] not in SOURCES:
        return _cell_error(i, "source", rec["source"], f"must be one of {', '.join(SOURCES)}")
    for column in ("height", "width"):
        try:
            value = int(str(rec[column]))
        except ValueError:
            return _cell_error(i, column, rec[column], "must be a positive integer")
        if value <= 0:
            return _cell_error(i, column, rec[column], "must be a positive integer")
    if not _SHA256.match(rec["sha256"]):
        return _cell_error(i, "sha256", rec["sha256"], "must be 64 lowercase hex digits")
    if not _PHASH.match(rec["phash"]):
        return _cell_error(i, "phash", rec["phash"], "must be 16 lowercase hex digits")
    if "fold" in rec:
        fold = rec["fold"]
        if not (fold is None or pd.isna(fold) or str(fold) == ""):
            try:
                int(float(str(fold)))
            except (ValueError, OverflowError):
                return _cell_error(i, "fold", fold, "must be an integer or empty")
    group = rec.get("dup_group", "")
    if group and not _POSITIVE.fullmatch(group):
        return _cell_error(i, "dup_group", group, "must be a duplicate group number (1, 2, …) or empty, "
                           "as btc prepare writes it")
    return None


def read_manifest(root: str | Path, classes: list[str] | None = None) -> pd.DataFrame:
    """Read and validate `root/manifest.csv`; every file it names must resolve inside `root`."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise ManifestError(f"{root}: not a prepared dataset (no {MANIFEST}); run 'btc prepare' first")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not a readable CSV ({e})") from None
    df = validate_manifest(df, classes)
    check_inside(df, root)
    return df


def check_inside(df: pd.DataFrame, root: str | Path) -> None:
    """Every file the manifest names, symlinks resolved, lies inside the dataset folder `root`.

    The textual check of `validate_manifest` (relative, no `..`) does not see a symlink in
    `images/` that points elsewhere; reading through it would hand any file on the machine to
    training, audit or a report. Raises `ManifestError` naming the manifest, the row and the link.
    """
    root = Path(root)
    base = root.resolve()
    for column in file_columns(df.columns):
        for row, rel in enumerate(df[column], start=1):
            if not rel:
                continue
            target = (root / rel).resolve()
            if target != base and base not in target.parents:
                raise ManifestError(
                    f"{root / MANIFEST} row {row}, column '{column}': {rel} leads to {target}, outside the "
                    "dataset (a symlink); put the file itself in the dataset, or prepare it again")


def write_manifest(df: pd.DataFrame, root: str | Path) -> Path:
    """Validate and write `root/manifest.csv` atomically, columns in contract order."""
    df = validate_manifest(df)
    columns = list(REQUIRED_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in df.columns]
    columns += [c for c in df.columns if c not in columns]
    out = df[columns]
    return atomic_write(Path(root) / MANIFEST, lambda tmp: out.to_csv(tmp, index=False, lineterminator="\n"))


@dataclass
class PreparedDataset:
    """A prepared dataset on disk: its folder, validated manifest and dataset.yaml."""

    root: Path
    manifest: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])

    @property
    def tasks(self) -> dict[str, dict[str, list[str]]]:
        """Task name → {output class: [dataset labels]}; `multiclass` is always defined."""
        tasks = {MULTICLASS: {c: [c] for c in self.classes}}
        tasks.update(self.info.get("tasks") or {})
        return tasks

    def task_labels(self, task: str) -> tuple[list[str], dict[str, int]]:
        """Output classes of `task` and the map dataset label → output index.

        Labels that the task does not mention are absent from the map: those images are not
        part of the task (e.g. `notumor` in paper 001's source task).
        """
        if task not in self.tasks:
            raise BtcError(f"unknown task '{task}' for {self.root}; defined: {', '.join(self.tasks)}")
        mapping = self.tasks[task]
        names = list(mapping)
        index = {label: i for i, name in enumerate(names) for label in mapping[name]}
        return names, index

    def image_path(self, relative: str) -> Path:
        return self.root / relative


def load_dataset(root: str | Path) -> PreparedDataset:
    """Open a prepared dataset folder, validating manifest.csv against dataset.yaml's classes."""
    root = Path(root)
    if not root.is_dir():
        raise BtcError(f"{root}: no such dataset folder")
    yaml_path = root / DATASET_YAML
    if not yaml_path.is_file():
        raise ManifestError(f"{root}: not a prepared dataset (no {DATASET_YAML}); run 'btc prepare' first")
    info = read_dataset_yaml(yaml_path)
    if not isinstance(info.get("classes"), list) or not info["classes"]:
        raise ManifestError(f"{yaml_path}: needs a non-empty 'classes' list")
    classes = [str(c) for c in info["classes"]]
    tasks = info.get("tasks") or {}
    if not isinstance(tasks, dict):
        raise ManifestError(f"{yaml_path}: 'tasks' must map task → {{output class: [labels]}}")
    for task, mapping in tasks.items():
        if not isinstance(mapping or {}, dict):
            raise ManifestError(f"{yaml_path}: task '{task}' must map output class → [labels]")
        for out_class, labels in (mapping or {}).items():
            if not isinstance(labels or [], list):
                raise ManifestError(f"{yaml_path}: task '{task}' class '{out_class}' must list labels")
            unknown = [lab for lab in labels or [] if lab not in classes]
            if unknown:
                raise ManifestError(
                    f"{yaml_path}: task '{task}' class '{out_class}' names unknown label(s) {unknown}"
                )
    return PreparedDataset(root=root, manifest=read_manifest(root, classes), info=info)


def read_dataset_yaml(path: str | Path) -> dict[str, Any]:
    """dataset.yaml as a mapping; malformed YAML or another top-level type is one line naming it."""
    path = Path(path)
    try:
        info = read_yaml(path)
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ManifestError(f"{path}: not valid YAML ({what}{where}); fix it, or prepare the dataset "
                            "again with 'btc prepare'") from None
    if info is None:
        info = {}
    if not isinstance(info, dict):
        raise ManifestError(f"{path}: must be a mapping (classes, tasks, …), not a {type(info).__name__}")
    return info


def write_dataset_yaml(root: str | Path, info: dict[str, Any]) -> Path:
    return atomic_write_yaml(Path(root) / DATASET_YAML, info)


def file_columns(columns: Iterable[str]) -> list[str]:
    """Columns naming files inside the dataset: `path` and every `*_path` but `orig_path`."""
    return [c for c in columns if c == "path" or (c.endswith("_path") and c != "orig_path")]


def split_counts(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{split or 'unsplit': {label: count}} for dataset.yaml."""
    counts: dict[str, dict[str, int]] = {}
    for (split, label), n in df.groupby(["split", "label"]).size().items():
        counts.setdefault(split or "unsplit", {})[label] = int(n)
    return counts
