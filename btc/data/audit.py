"""What is wrong with a prepared dataset: duplicates, leakage across splits/classes/folds, balance.

- **Exact duplicates**: images whose decoded pixels are identical (manifest `sha256`).
- **Near duplicates**: images whose 64-bit DCT perceptual hashes (manifest `phash`) differ in at
  most `NEAR_THRESHOLD` bits, grouped by single linkage (connected components of the
  "distance ≤ threshold" graph; the pairs come from multi-index hashing, `btc/data/hamming.py`:
  the pairs of comparing every pair, without its n² cost). When the manifest also keeps the
  fingerprints of the original files (`orig_sha256`, `orig_phash`, written by `prepare kaggle`),
  a pair also counts when the originals match: the crop of two copies of one scan with different
  margins can differ, the originals do not. A near group is a component holding at least two
  *different* images (a component of identical images is already an exact group).
- **Leakage**: a group is *cross-split* when its images sit in more than one of train/test,
  *cross-class* when they carry more than one label, *cross-fold* when they fall in more than one
  official fold. Patients: ids shared across splits (or folds), and ids that differ only by a
  trailing letter (Figshare `MR049453` / `MR049453B`).
- Class balance, the image-size histogram (original sizes when the manifest keeps them) and the
  inputs prepare skipped (from dataset.yaml).

Threshold: **4 of 64 bits** (`btc audit --threshold N` overrides it). The phash sets exactly 32
of its 64 bits, so distances are even: 4 means "two bits moved". Measured with both fingerprints:
- `kaggle-original-sample` (tests/test_audit.py): the copies across Training/Testing lie at 0–2
  (original) or 2–8 (cropped, margins differ); one pair of adjacent slices of one scan at 4; the
  closest images of *different* classes at 8. Every value from 2 to 6 separates them.
- `kaggle-224` (7019 images), single linkage: ≤ 6 chains 1140 images of all four classes into one
  group (look-alike slices link up); ≤ 4 gives groups of at most 49 images, 33 of them mixing
  classes (mostly look-alike midline sagittal slices of different patients: inspect those); ≤ 2
  leaves 2 mixed groups but misses copies whose contrast was changed (found at 4).
4 is the largest threshold without chaining, and leakage wants recall: a false group only moves a
few extra images to one side of the leak-free split.

The result is an `AuditReport` (`to_dict()` is what `btc audit --json` prints, `summary()` what
dataset.yaml keeps); `btc/commands/audit.py` shows it, this module never prints.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .hamming import near_pairs
from .manifest import load_dataset, split_counts

NEAR_THRESHOLD = 4
HASH_COLUMNS_EXACT = ("sha256", "orig_sha256")
HASH_COLUMNS_NEAR = ("phash", "orig_phash")
HASH = "phash64: 32×32 grayscale → DCT → top-left 8×8 above the median (64 bits)"


# --------------------------------------------------------------------------- grouping


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        parent = self.parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        members: dict[int, list[int]] = defaultdict(list)
        for i in range(len(self.parent)):
            members[self.find(i)].append(i)
        return [m for m in members.values() if len(m) > 1]


def _column_values(df: pd.DataFrame, column: str) -> pd.Series | None:
    if column not in df.columns:
        return None
    values = df[column].fillna("").astype(str)
    return values if (values != "").any() else None


def _union_equal(uf: _UnionFind, values: pd.Series) -> list[int]:
    """Join rows with the same non-empty value; return one representative row per value."""
    first: dict[str, int] = {}
    for row, value in enumerate(values):
        if not value:
            continue
        if value in first:
            uf.union(first[value], row)
        else:
            first[value] = row
    return list(first.values())


def _union_near(uf: _UnionFind, values: pd.Series, threshold: int) -> None:
    reps = _union_equal(uf, values)  # identical hashes: distance 0
    listed = values.tolist()
    hashes = np.array([int(listed[r], 16) for r in reps], dtype=np.uint64)
    for a, b, _ in near_pairs(hashes, threshold):  # multi-index hashing: same pairs as every pair
        uf.union(reps[int(a)], reps[int(b)])


def _sorted_groups(df: pd.DataFrame, groups: list[list[int]]) -> list[list[int]]:
    paths = df["path"].astype(str).tolist()
    return sorted((sorted(g, key=lambda r: paths[r]) for g in groups), key=lambda g: paths[g[0]])


def exact_components(df: pd.DataFrame) -> list[list[int]]:
    """Row positions of every group of ≥ 2 images with identical decoded pixels.

    Identical prepared pixels (`sha256`) or, when the manifest keeps it, identical original
    pixels (`orig_sha256`).
    """
    uf = _UnionFind(len(df))
    for column in HASH_COLUMNS_EXACT:
        values = _column_values(df, column)
        if values is not None:
            _union_equal(uf, values)
    return _sorted_groups(df, uf.groups())


def duplicate_components(df: pd.DataFrame, threshold: int = NEAR_THRESHOLD) -> list[list[int]]:
    """Row positions of every group of ≥ 2 images joined by exact or near-duplicate links.

    Links: equal `sha256` / `orig_sha256`, or `phash` / `orig_phash` within `threshold` bits
    (single linkage). Pairs are searched among distinct hashes only, so thousands of copies of
    one blank image cost nothing extra.
    """
    uf = _UnionFind(len(df))
    for column in HASH_COLUMNS_EXACT:
        values = _column_values(df, column)
        if values is not None:
            _union_equal(uf, values)
    for column in HASH_COLUMNS_NEAR:
        values = _column_values(df, column)
        if values is not None:
            _union_near(uf, values, threshold)
    return _sorted_groups(df, uf.groups())


def _hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


# --------------------------------------------------------------------------- report


def _distinct(values: list[Any]) -> set[Any]:
    return {v for v in values if v is not None and str(v) not in ("", "<NA>", "nan")}


def _columns(df: pd.DataFrame) -> dict[str, list[Any]]:
    """The columns a group record needs, as plain lists (fast to index per group)."""
    cols: dict[str, list[Any]] = {}
    for c in ("path", "split", "label", "split_dedup", "patient_id", "phash", "orig_phash"):
        if c in df.columns:
            cols[c] = df[c].fillna("").astype(str).tolist()
    if "fold" in df.columns and df["fold"].notna().any():
        folds = pd.to_numeric(df["fold"].replace("", None), errors="coerce")
        cols["fold"] = [None if pd.isna(f) else int(f) for f in folds]
    return cols


def _group_record(cols: dict[str, list[Any]], rows: list[int], near: bool) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: cols["path"][r])

    def take(c: str) -> list[Any]:
        return [cols[c][r] for r in rows]

    rec: dict[str, Any] = {"paths": take("path"), "splits": take("split"), "labels": take("label")}
    rec["cross_split"] = len(_distinct(rec["splits"])) > 1
    rec["cross_class"] = len(_distinct(rec["labels"])) > 1
    if "split_dedup" in cols:
        rec["cross_split_dedup"] = len(_distinct(take("split_dedup"))) > 1
    if "fold" in cols:
        rec["folds"] = take("fold")
        rec["cross_fold"] = len(_distinct(rec["folds"])) > 1
    if "patient_id" in cols and any(take("patient_id")):
        rec["patients"] = take("patient_id")
    if near:
        for column, key in (("phash", "max_distance"), ("orig_phash", "max_distance_orig")):
            if column in cols:
                hashes = [h for h in take(column) if h]
                rec[key] = max((_hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1:]), default=0)
    return rec


def _section(records: list[dict[str, Any]]) -> dict[str, Any]:
    out = {
        "groups": len(records),
        "files": sum(len(r["paths"]) for r in records),
        "cross_split_groups": sum(r["cross_split"] for r in records),
        "cross_class_groups": sum(r["cross_class"] for r in records),
    }
    if any("cross_fold" in r for r in records):
        out["cross_fold_groups"] = sum(r.get("cross_fold", False) for r in records)
    if any("cross_split_dedup" in r for r in records):
        out["cross_split_dedup_groups"] = sum(r.get("cross_split_dedup", False) for r in records)
    return out


def _base_id(pid: str) -> str:
    return re.sub(r"[A-Za-z]+$", "", pid) or pid


def _patients(df: pd.DataFrame) -> dict[str, Any]:
    pid = df["patient_id"].astype(str) if "patient_id" in df.columns else pd.Series([""] * len(df))
    known = df[pid != ""]
    result: dict[str, Any] = {"with_id": int(len(known)), "ids": int(pid[pid != ""].nunique())}
    splits = known.groupby(known["patient_id"].astype(str))["split"].agg(lambda s: len(_distinct(list(s))))
    cross = sorted(splits[splits > 1].index.tolist())
    result["cross_split"] = len(cross)
    result["cross_split_ids"] = cross
    if "fold" in known.columns and known["fold"].notna().any():
        folds = known.groupby(known["patient_id"].astype(str))["fold"].agg(
            lambda s: len(_distinct([None if pd.isna(v) else int(v) for v in s])))
        cross_fold = sorted(folds[folds > 1].index.tolist())
        result["cross_fold"] = len(cross_fold)
        result["cross_fold_ids"] = cross_fold
    by_base: dict[str, set[str]] = defaultdict(set)
    for p in pid[pid != ""].unique():
        by_base[_base_id(p)].add(p)
    result["similar_ids"] = sorted(sorted(v) for v in by_base.values() if len(v) > 1)
    return result


def _sizes(df: pd.DataFrame) -> dict[str, Any]:
    if {"orig_width", "orig_height"} <= set(df.columns):
        w, h, basis = df["orig_width"], df["orig_height"], "original"
    else:
        w, h, basis = df["width"], df["height"], "prepared"
    counts = Counter(f"{int(a)}x{int(b)}" for a, b in zip(w, h, strict=True) if str(a) not in ("", "nan"))
    hist = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return {"basis": basis, "distinct": len(hist), "histogram": hist}


@dataclass
class AuditReport:
    """The audit of one manifest. Sections are JSON-shaped dicts (`to_dict()` is `btc audit --json`).

    `exact` / `near`: `groups`, `files`, `cross_split_groups`, `cross_class_groups` (and
    `cross_fold_groups`, `cross_split_dedup_groups` when the manifest has folds / a leak-free
    split) and `list`, one record per group (`paths`, `splits`, `labels`, `cross_*`, …); `near`
    also holds its `threshold` and `hash`. `patients`: ids, ids across splits / folds, ids that
    differ only by a trailing letter. `sizes`: the image-size histogram. `missing`: manifest
    images absent from the folder (only when audited from a folder). `skipped` / `flagged`: the
    inputs prepare listed.
    """

    images: int
    classes: dict[str, int]
    splits: dict[str, dict[str, int]]
    exact: dict[str, Any]
    near: dict[str, Any]
    patients: dict[str, Any]
    sizes: dict[str, Any]
    skipped: list[dict[str, str]] = field(default_factory=list)
    flagged: list[dict[str, str]] = field(default_factory=list)
    dataset: str | None = None
    missing: list[str] | None = None

    @property
    def threshold(self) -> int:
        return int(self.near["threshold"])

    def to_dict(self) -> dict[str, Any]:
        """The whole report as one JSON-ready object (optional keys only when they apply)."""
        out: dict[str, Any] = {}
        if self.dataset is not None:
            out["dataset"] = self.dataset
        out.update(images=self.images, classes=self.classes, splits=self.splits, exact=self.exact,
                   near=self.near, patients=self.patients, sizes=self.sizes)
        if self.missing is not None:
            out["missing"] = self.missing
        out["skipped"] = self.skipped
        if self.flagged:
            out["flagged"] = self.flagged
        return out

    def summary(self) -> dict[str, Any]:
        """The numbers of the report, for dataset.yaml (no group lists)."""
        def numbers(section: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in section.items() if k not in ("list", "hash")}

        patients = {k: v for k, v in self.patients.items() if not isinstance(v, list)}
        patients["similar_ids"] = len(self.patients.get("similar_ids", []))
        return {
            "images": self.images,
            "exact": numbers(self.exact),
            "near": numbers(self.near),
            "patients": patients,
            "sizes": self.sizes["distinct"],
            "skipped": len(self.skipped),
        }

    def headline(self) -> str:
        """One line: the numbers a reader needs first."""
        return audit_headline(self.summary())


def audit_frame(df: pd.DataFrame, *, threshold: int | None = None, skipped: list[dict[str, str]] | None = None,
                flagged: list[dict[str, str]] | None = None, root: Path | None = None) -> AuditReport:
    """The audit report of a manifest (`root`: the dataset folder, to check its files exist)."""
    threshold = NEAR_THRESHOLD if threshold is None else int(threshold)
    df = df.reset_index(drop=True)
    exact_groups = exact_components(df)
    cols = _columns(df)
    exact = [_group_record(cols, rows, near=False) for rows in exact_groups]
    exact_id = np.arange(len(df))
    for rows in exact_groups:
        exact_id[rows] = rows[0]
    near = [_group_record(cols, rows, near=True) for rows in duplicate_components(df, threshold)
            if len(set(exact_id[rows].tolist())) > 1]
    return AuditReport(
        images=int(len(df)),
        classes={str(k): int(v) for k, v in sorted(df["label"].value_counts().items())},
        splits=split_counts(df),
        exact={**_section(exact), "list": exact},
        near={"threshold": threshold, "hash": HASH, **_section(near), "list": near},
        patients=_patients(df),
        sizes=_sizes(df),
        skipped=list(skipped or []),
        flagged=list(flagged or []),
        dataset=None if root is None else str(root),
        missing=None if root is None else [p for p in df["path"].astype(str) if not (root / p).is_file()],
    )


def audit_headline(summary: dict[str, Any]) -> str:
    """One line from the audit numbers (`AuditReport.summary()`, as dataset.yaml keeps them)."""
    e, n, p = summary["exact"], summary["near"], summary["patients"]
    parts = [
        f"{summary['images']} images",
        f"{e['groups']} exact-duplicate groups ({e['files']} files, {e['cross_split_groups']} cross-split, "
        f"{e['cross_class_groups']} cross-class)",
        f"{n['groups']} near-duplicate groups at ≤{n['threshold']} bits ({n['files']} files, "
        f"{n['cross_split_groups']} cross-split, {n['cross_class_groups']} cross-class)",
    ]
    if "cross_fold_groups" in e or "cross_fold_groups" in n:
        parts.append(f"{e.get('cross_fold_groups', 0) + n.get('cross_fold_groups', 0)} groups across folds")
    if p["ids"]:
        text = f"{p['ids']} patients, {p['cross_split']} across splits"
        if "cross_fold" in p:
            text += f", {p['cross_fold']} across folds"
        parts.append(text)
    if summary.get("skipped"):
        parts.append(f"{summary['skipped']} inputs skipped")
    return "; ".join(parts)


def dedup_split(df: pd.DataFrame, report: AuditReport | None = None,
                threshold: int | None = None) -> pd.Series:
    """A leak-free train/test split: each duplicate group (exact or near) moved to one side.

    A group spanning both splits goes wholly to the split holding most of its images (ties →
    train); every other image keeps its split.
    """
    if threshold is None:
        threshold = report.threshold if report else NEAR_THRESHOLD
    df = df.reset_index(drop=True)
    split = df["split"].astype(str).copy()
    for rows in duplicate_components(df, threshold):
        sides = Counter(s for s in split.iloc[rows] if s)
        if len(sides) > 1:
            side = "train" if sides["train"] >= sides["test"] else "test"
            split.iloc[rows] = side
    return split


# --------------------------------------------------------------------------- a dataset folder


def audit_dataset(data: str | Path, *, threshold: int | None = None) -> AuditReport:
    """`btc audit DATA`: the report of a prepared dataset folder (its files checked too)."""
    ds = load_dataset(data)
    return audit_frame(ds.manifest, threshold=threshold, skipped=ds.info.get("skipped") or [],
                       flagged=ds.info.get("flagged") or None, root=ds.root)
