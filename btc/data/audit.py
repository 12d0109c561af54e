"""What is wrong with a prepared dataset: duplicates, leakage across splits/classes/folds, balance.

- **Exact duplicates**: images whose decoded pixels are identical (manifest `sha256`, or
  `orig_sha256`, the original's pixels, when prepare kept it).
- **Near duplicates (same scan)**: two images are *candidates* when their 64-bit DCT perceptual
  hashes (manifest `phash`, or `orig_phash` of the originals: two copies of one scan cropped with
  other margins differ less there) differ in at most `NEAR_THRESHOLD` bits; the pairs come from
  multi-index hashing (`btc/data/hamming.py`: the pairs of comparing every pair, without its n²
  cost). A candidate is **confirmed** only by its pixels: `btc.data.similarity` compares the
  edges of the two prepared images (64 × 64, rank-transformed) and accepts at similarity ≥ 0.75,
  calibrated on kaggle-224 by looking at the pairs (the same slice re-encoded, re-windowed or
  sharpened, or a neighbouring slice of the same series; different patients score ≤ 0.66). A pair
  near by hash but different in pixels is never merged. Groups are the connected components of exact links and
  confirmed pairs (single linkage); a near group holds at least two *different* images.
- **Possible label conflicts**: a duplicate group (exact or confirmed near) whose images carry
  more than one label is listed apart, with its files (`AuditReport.conflicts`): the same scan
  cannot be two diagnoses, so one of the labels is probably wrong. Such a group is still one
  group for the leak-free protocol (`btc.data.splits.leak_free_groups`): the same image must not
  sit on both sides of a split.
- **Leakage**: a group is *cross-split* when its images sit in more than one of train/test,
  *cross-class* when they carry more than one label, *cross-fold* when they fall in more than one
  official fold. Patients: ids shared across splits (or folds), and ids that differ only by a
  trailing letter (Figshare `MR049453` / `MR049453B`).
- Class balance, the image-size histogram (original sizes when the manifest keeps them) and the
  inputs prepare skipped (from dataset.yaml).

Hash threshold: **4 of 64 bits** (`btc audit --threshold N` overrides it). The phash sets exactly
32 of its 64 bits, so distances are even: 4 means "two bits moved". On `kaggle-original-sample`
the copies across Training/Testing lie at 0–2 (original) or 2–8 (cropped, margins differ). On
`kaggle-224`, by hash alone, ≤ 6 chains 1140 images of all four classes into one group and ≤ 4
gives 925 groups, 33 of them mixing classes; the pixel check removes the look-alikes, so the
threshold only decides which pairs are worth checking.

The result is an `AuditReport` (`to_dict()` is what `btc audit --json` prints, `summary()` what
dataset.yaml keeps); `btc/commands/audit.py` shows it, this module never prints. `prepare`
stores each image's duplicate group in the manifest (`dup_group`, `Duplicates.labels`), so the
leak-free protocol does not check pixels again.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from btc.lazy import lazy_import
from btc.progress import SILENT, Progress

from .hamming import near_pairs
from .manifest import load_dataset, split_counts
from .similarity import MEASURE, MIN_SIMILARITY, FolderPixels, PixelSource, pair_similarities

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

NEAR_THRESHOLD = 4
HASH_COLUMNS_EXACT = ("sha256", "orig_sha256")
HASH_COLUMNS_NEAR = ("phash", "orig_phash")
HASH = "phash64: 32×32 grayscale → DCT → top-left 8×8 above the median (64 bits)"
DUP_GROUP = "dup_group"


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


def _union_equal(uf: _UnionFind, values: pd.Series) -> None:
    """Join rows with the same non-empty value."""
    first: dict[str, int] = {}
    for row, value in enumerate(values.tolist()):
        if not value:
            continue
        if value in first:
            uf.union(first[value], row)
        else:
            first[value] = row


def _sorted_groups(df: pd.DataFrame, groups: list[list[int]]) -> list[list[int]]:
    paths = df["path"].astype(str).tolist()
    return sorted((sorted(g, key=lambda r: paths[r]) for g in groups), key=lambda g: paths[g[0]])


def _exact_union(df: pd.DataFrame) -> _UnionFind:
    uf = _UnionFind(len(df))
    for column in HASH_COLUMNS_EXACT:
        values = _column_values(df, column)
        if values is not None:
            _union_equal(uf, values)
    return uf


def exact_components(df: pd.DataFrame) -> list[list[int]]:
    """Row positions of every group of ≥ 2 images with identical decoded pixels.

    Identical prepared pixels (`sha256`) or, when the manifest keeps it, identical original
    pixels (`orig_sha256`).
    """
    return _sorted_groups(df, _exact_union(df).groups())


def candidate_pairs(df: pd.DataFrame, threshold: int = NEAR_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """The near-duplicate candidates: pairs of different images whose hashes are within `threshold`.

    Images with identical pixels form one unit (represented by its first row); a pair of units
    is a candidate when any of their `phash` / `orig_phash` values differ in at most `threshold`
    bits (identical hashes included). Returns `(pairs, distances)`: (m, 2) row positions of the
    two units' representatives, smallest first, sorted, and the smallest distance of each pair.
    """
    df = df.reset_index(drop=True)
    uf = _exact_union(df)
    unit = np.array([uf.find(r) for r in range(len(df))], dtype=np.int64)
    best: dict[tuple[int, int], int] = {}
    for column in HASH_COLUMNS_NEAR:
        values = _column_values(df, column)
        if values is None:
            continue
        members: dict[str, set[int]] = defaultdict(set)  # hash value → units holding it
        for u, value in zip(unit.tolist(), values.tolist(), strict=True):
            if value:
                members[value].add(u)
        keys = list(members)
        buckets = [sorted(members[k]) for k in keys]
        links = [(k, k, 0) for k in range(len(keys)) if len(buckets[k]) > 1]
        hashes = np.array([int(k, 16) for k in keys], dtype=np.uint64)
        links += [(int(a), int(b), int(d)) for a, b, d in near_pairs(hashes, threshold)]
        for a, b, d in links:
            for i in buckets[a]:
                for j in buckets[b]:
                    if i != j:
                        pair = (min(i, j), max(i, j))
                        best[pair] = min(best.get(pair, d), d)
    ordered = sorted(best)
    pairs = np.array(ordered, dtype=np.int64).reshape(-1, 2)
    return pairs, np.array([best[p] for p in ordered], dtype=np.int64)


@dataclass
class Duplicates:
    """The duplicate structure of a manifest (row positions in manifest order).

    `exact`: groups of identical pixels. `groups`: connected components of exact links and
    confirmed near pairs, ≥ 2 rows each; `near`: those holding at least two different images.
    `pairs` / `distances` / `similarities` / `confirmed`: every candidate pair examined, its hash
    distance, its pixel similarity (NaN when `verified` is False: no pixels to check, nothing
    merged) and whether it was confirmed.
    """

    exact: list[list[int]]
    groups: list[list[int]]
    near: list[list[int]]
    pairs: np.ndarray
    distances: np.ndarray
    similarities: np.ndarray
    confirmed: np.ndarray
    threshold: int
    min_similarity: float
    verified: bool
    size: int

    def labels(self) -> list[str]:
        """The manifest's `dup_group` column: the group's number (1…G, in path order) or ''."""
        out = [""] * self.size
        for number, rows in enumerate(self.groups, start=1):
            for r in rows:
                out[r] = str(number)
        return out


def find_duplicates(df: pd.DataFrame, pixels: PixelSource | None = None, *, threshold: int = NEAR_THRESHOLD,
                    min_similarity: float = MIN_SIMILARITY, progress: Progress = SILENT) -> Duplicates:
    """Exact groups, and near groups of candidates (`candidate_pairs`) confirmed by `pixels`.

    Without `pixels` no candidate is confirmed: a hash alone never merges two images.
    """
    df = df.reset_index(drop=True)
    uf = _exact_union(df)
    exact = _sorted_groups(df, uf.groups())
    pairs, distances = candidate_pairs(df, threshold)
    similarities = np.full(len(pairs), np.nan, dtype=np.float32)
    if pixels is not None and len(pairs):
        rows = np.unique(pairs)
        signatures = pixels.signatures(rows.tolist(), progress)
        similarities = pair_similarities(signatures, np.searchsorted(rows, pairs))
    confirmed = similarities >= min_similarity  # NaN: False
    for a, b in pairs[confirmed].tolist():
        uf.union(a, b)
    groups = _sorted_groups(df, uf.groups())
    exact_of = np.arange(len(df))
    for rows in exact:
        exact_of[rows] = rows[0]
    near = [g for g in groups if len(set(exact_of[g].tolist())) > 1]
    return Duplicates(exact=exact, groups=groups, near=near, pairs=pairs, distances=distances,
                      similarities=similarities, confirmed=confirmed, threshold=int(threshold),
                      min_similarity=float(min_similarity), verified=pixels is not None, size=len(df))


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


def _group_record(cols: dict[str, list[Any]], rows: list[int], near: bool,
                  similarity: float | None = None) -> dict[str, Any]:
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
    if similarity is not None:
        rec["similarity"] = round(similarity, 4)  # its weakest confirmed pair
    return rec


def _weakest_links(dups: Duplicates) -> dict[int, float]:
    """First row of each group → the smallest similarity among the confirmed pairs inside it."""
    group_of = {r: g[0] for g in dups.groups for r in g}
    weakest: dict[int, float] = {}
    for (a, _), sim in zip(dups.pairs[dups.confirmed].tolist(), dups.similarities[dups.confirmed].tolist(),
                           strict=True):
        g = group_of[a]
        weakest[g] = min(weakest.get(g, sim), sim)
    return weakest


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
    split) and `list`, one record per group (`paths`, `splits`, `labels`, `cross_*`, …; a near
    group also `max_distance` and `similarity`, its weakest confirmed pair). `near` also holds
    the hash `threshold` and `hash`, the pixel check (`measure`, `min_similarity`, `verified`)
    and the candidate pairs it examined: `candidates`, `confirmed`, `rejected` and
    `rejected_cross_class`. `conflicts`: the duplicate groups (exact, or near: the two kinds
    joined) whose images carry more than one label — possible label errors — each with `kind`
    (`exact` when all its images are identical), its files, labels and splits. `patients`: ids,
    ids across splits / folds, ids that differ only by a trailing letter. `sizes`: the image-size
    histogram. `missing`: manifest images absent from the folder (only when audited from a
    folder). `skipped` / `flagged`: the inputs prepare listed.
    """

    images: int
    classes: dict[str, int]
    splits: dict[str, dict[str, int]]
    exact: dict[str, Any]
    near: dict[str, Any]
    patients: dict[str, Any]
    sizes: dict[str, Any]
    conflicts: list[dict[str, Any]] = field(default_factory=list)
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
                   near=self.near, label_conflicts=self.conflicts, patients=self.patients, sizes=self.sizes)
        if self.missing is not None:
            out["missing"] = self.missing
        out["skipped"] = self.skipped
        if self.flagged:
            out["flagged"] = self.flagged
        return out

    def summary(self) -> dict[str, Any]:
        """The numbers of the report, for dataset.yaml (no group lists)."""
        def numbers(section: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in section.items() if k not in ("list", "hash", "measure")}

        patients = {k: v for k, v in self.patients.items() if not isinstance(v, list)}
        patients["similar_ids"] = len(self.patients.get("similar_ids", []))
        return {
            "images": self.images,
            "exact": numbers(self.exact),
            "near": numbers(self.near),
            "label_conflicts": len(self.conflicts),
            "patients": patients,
            "sizes": self.sizes["distinct"],
            "skipped": len(self.skipped),
        }

    def headline(self) -> str:
        """One line: the numbers a reader needs first."""
        return audit_headline(self.summary())


def audit_frame(df: pd.DataFrame, *, threshold: int | None = None, min_similarity: float | None = None,
                pixels: PixelSource | None = None, duplicates: Duplicates | None = None,
                skipped: list[dict[str, str]] | None = None, flagged: list[dict[str, str]] | None = None,
                root: Path | None = None, progress: Progress = SILENT) -> AuditReport:
    """The audit report of a manifest.

    Near-duplicate candidates are checked with `pixels`, or with the images under `root` (the
    dataset folder, whose files are also checked to exist); `duplicates` (from `find_duplicates`)
    skips the search. With neither pixels nor root, no near pair is confirmed (`verified` False).
    """
    threshold = NEAR_THRESHOLD if threshold is None else int(threshold)
    df = df.reset_index(drop=True)
    if duplicates is None:
        if pixels is None and root is not None:
            pixels = FolderPixels(root, df["path"].astype(str).tolist())
        duplicates = find_duplicates(df, pixels, threshold=threshold, progress=progress,
                                     min_similarity=MIN_SIMILARITY if min_similarity is None else min_similarity)
    cols = _columns(df)
    weakest = _weakest_links(duplicates)
    exact = [_group_record(cols, rows, near=False) for rows in duplicates.exact]
    near = [_group_record(cols, rows, near=True, similarity=weakest.get(rows[0])) for rows in duplicates.near]
    near_first = {rows[0] for rows in duplicates.near}
    conflicts = []
    for rows in duplicates.groups:
        rec = _group_record(cols, rows, near=False, similarity=weakest.get(rows[0]))
        if rec["cross_class"]:
            conflicts.append({"kind": "near" if rows[0] in near_first else "exact", **rec})
    labels = df["label"].astype(str).to_numpy()
    rejected = ~duplicates.confirmed
    pairs = duplicates.pairs
    checks = {
        "measure": MEASURE, "min_similarity": duplicates.min_similarity, "verified": duplicates.verified,
        "candidates": int(len(pairs)), "confirmed": int(duplicates.confirmed.sum()), "rejected": int(rejected.sum()),
        "rejected_cross_class": int((rejected & (labels[pairs[:, 0]] != labels[pairs[:, 1]])).sum()),
    }
    return AuditReport(
        images=int(len(df)),
        classes={str(k): int(v) for k, v in sorted(df["label"].value_counts().items())},
        splits=split_counts(df),
        exact={**_section(exact), "list": exact},
        near={"threshold": duplicates.threshold, "hash": HASH, **checks, **_section(near), "list": near},
        conflicts=conflicts,
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
        _near_text(n),
    ]
    if summary.get("label_conflicts"):
        parts.append(f"{summary['label_conflicts']} possible label conflicts (same scan, different labels)")
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


def _near_text(n: dict[str, Any]) -> str:
    text = (f"{n['groups']} near-duplicate groups ({n['files']} files, {n['cross_split_groups']} cross-split, "
            f"{n['cross_class_groups']} cross-class)")
    if not n.get("verified", True):
        return text + f"; {n.get('candidates', 0)} hash candidates at ≤{n['threshold']} bits not checked (no pixels)"
    if "candidates" in n:
        return text + (f", confirmed by pixels from {n['candidates']} hash candidates at ≤{n['threshold']} bits "
                       f"(similarity ≥ {n['min_similarity']:g})")
    return text + f" at ≤{n['threshold']} bits"  # dataset.yaml of btc 0.1: by hash alone


def dedup_split(df: pd.DataFrame, duplicates: Duplicates) -> pd.Series:
    """A leak-free train/test split: each duplicate group (exact or confirmed near) on one side.

    A group spanning both splits goes wholly to the split holding most of its images (ties →
    train); every other image keeps its split.
    """
    df = df.reset_index(drop=True)
    split = df["split"].astype(str).copy()
    for rows in duplicates.groups:
        sides = Counter(s for s in split.iloc[rows] if s)
        if len(sides) > 1:
            side = "train" if sides["train"] >= sides["test"] else "test"
            split.iloc[rows] = side
    return split


# --------------------------------------------------------------------------- a dataset folder


def audit_dataset(data: str | Path, *, threshold: int | None = None, min_similarity: float | None = None,
                  progress: Progress = SILENT) -> AuditReport:
    """`btc audit DATA`: the report of a prepared dataset folder (its files checked too, near
    candidates confirmed by their pixels)."""
    ds = load_dataset(data)
    return audit_frame(ds.manifest, threshold=threshold, skipped=ds.info.get("skipped") or [],
                       flagged=ds.info.get("flagged") or None, root=ds.root, min_similarity=min_similarity,
                       progress=progress)
