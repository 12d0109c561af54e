"""Train / validation / test splits and K folds, and the groups that must never straddle them.

Two protocols (issue 15) differ only in the groups they give these functions:
- **image level** (`groups=None`): every image on its own, as papers 001 and 003 split (random
  10-fold CV; a random one-fifth test set and 5-fold CV) — leaky wherever an image has a copy or
  a patient has several slices;
- **leak-free** (`groups=leak_free_groups(dataset)`): the union of patient ids, exact duplicates
  (the same decoded pixels) and near duplicates confirmed by their pixels (`btc.data.audit`,
  the same scan; cross-class twins included — they are also listed as possible label conflicts).
  Every hold-out, validation carve-out and fold keeps a group on one side.

- `kfold_assignments`: stratified K-fold (scikit-learn's `StratifiedKFold`, or
  `StratifiedGroupKFold` with groups).
- `holdout`: one seeded stratified (grouped) hold-out of a given fraction: the test split when
  the manifest has none, the validation images carved out of a training part.
- `twins_across`: the test images whose group has a training image — what leaks through an
  official split such as Kaggle's Training/Testing folders.
- `fill_folds`: folds for the rows an official fold column leaves empty (the no-tumour images
  merged into Figshare, whose `cvind.mat` folds cover only its own slices), balanced per label
  and keeping every group in one fold.

Called without `groups`, `kfold_assignments` and `holdout` keep btc 0.1's behaviour (`group_by`:
official folds when the manifest has them, patients when known, else images). Data too small for
the folds or the hold-out asked for end in one line naming the option and what to do, checked
before scikit-learn is asked.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from btc.errors import BtcError
from btc.lazy import lazy_import
from btc.progress import SILENT, Progress

from .audit import DUP_GROUP, find_duplicates
from .manifest import PreparedDataset
from .similarity import FolderPixels

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

GROUPINGS = ("auto", "patient", "official", "none")


class _FromGroupBy:
    """The default of `groups`: not given, so `group_by` (btc 0.1's option) decides."""

    def __repr__(self) -> str:
        return "FROM_GROUP_BY"


FROM_GROUP_BY = _FromGroupBy()
Groups = np.ndarray | None | _FromGroupBy


# --------------------------------------------------------------------------- groups


def patient_groups(df: pd.DataFrame) -> np.ndarray | None:
    """Group ids per row (patient id, or the path when unknown); None when no row has a patient."""
    if "patient_id" not in df.columns or not (df["patient_id"] != "").any():
        return None
    return np.where(df["patient_id"] != "", "patient:" + df["patient_id"], "image:" + df["path"])


def group_labels(df: pd.DataFrame) -> np.ndarray:
    """One int label per row: the connected components of "same patient id", "same `dup_group`"
    and "same pixels" (`sha256`: exact copies stay together even in a manifest whose `dup_group`
    was edited).

    Empty values link nothing (a row without patient and duplicate is its own group). Labels are
    numbered in manifest order of each group's first row.
    """
    n = len(df)
    heads, tails = [np.arange(n)], [np.arange(n)]
    for column in ("patient_id", DUP_GROUP, "sha256"):
        if column not in df.columns:
            continue
        values = df[column].fillna("").astype(str).to_numpy()
        rows = np.flatnonzero(values != "")
        if not len(rows):
            continue
        codes, _ = pd.factorize(values[rows])
        _, first = np.unique(codes, return_index=True)  # the first row holding each value
        heads.append(rows)
        tails.append(rows[first][codes])
    a, b = np.concatenate(heads), np.concatenate(tails)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, components = connected_components(graph, directed=False)
    return pd.factorize(components)[0].astype(np.int64)


def leak_free_groups(dataset: PreparedDataset, progress: Progress = SILENT) -> np.ndarray:
    """One group label per manifest row, in manifest order: patients ∪ exact ∪ confirmed near duplicates.

    Reads the manifest's `dup_group` (written by `btc prepare`); a dataset prepared before that
    column existed gets its duplicate groups computed here, pixels checked (a few seconds for 7k
    images), and nothing is written to it.
    """
    df = dataset.manifest
    if DUP_GROUP not in df.columns:
        duplicates = find_duplicates(df, FolderPixels(dataset.root, df["path"].astype(str).tolist()), progress=progress)
        df = df.assign(**{DUP_GROUP: duplicates.labels()})
    return group_labels(df)


def twins_across(groups: np.ndarray, train_mask: np.ndarray, test_mask: np.ndarray) -> np.ndarray:
    """Bool per row: a test row whose group also has a training row (its twin leaks the answer)."""
    groups, train_mask, test_mask = np.asarray(groups), np.asarray(train_mask, bool), np.asarray(test_mask, bool)
    return test_mask & np.isin(groups, np.unique(groups[train_mask]))


def _unit_count(groups: np.ndarray | None, n: int) -> tuple[int, str]:
    if groups is None:
        return n, "images"
    return len(np.unique(groups)), "groups"


# --------------------------------------------------------------------------- folds and hold-outs


def _splitter(n_splits: int, groups: np.ndarray | None, seed: int):
    if groups is None:
        return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def _largest_class(y: np.ndarray) -> int:
    """Images in the largest class (scikit-learn's stratified splitters need it ≥ the folds)."""
    return int(np.unique(np.asarray(y), return_counts=True)[1].max()) if len(y) else 0


def _groups_of(df: pd.DataFrame, group_by: str) -> tuple[np.ndarray | None, str]:
    """btc 0.1's `group_by` (not `official`) as explicit groups, and the unit's name."""
    groups = None if group_by == "none" else patient_groups(df)
    if group_by == "patient" and groups is None:
        raise BtcError("--group-by patient: the manifest has no patient ids")
    return groups, "patients" if groups is not None else "images"


def kfold_assignments(df: pd.DataFrame, y: np.ndarray, k: int, *, groups: Groups = FROM_GROUP_BY,
                      group_by: str = "auto", seed: int = 0) -> np.ndarray:
    """Fold index (0..K-1) of every row: stratified by `y`, no group in two folds.

    `groups`: None for image-level folds, or one label per row (e.g. `leak_free_groups`).
    Without it, btc 0.1's `group_by` decides: `official` uses the manifest's `fold` column
    (renumbered from 0); `patient` requires patient ids; `auto` uses official folds when present,
    else patient groups when known, else image-level folds; `none` ignores patients.
    """
    if isinstance(groups, _FromGroupBy):
        if group_by not in GROUPINGS:
            raise BtcError(f"--group-by must be one of {', '.join(GROUPINGS)} (got {group_by!r})")
        has_official = "fold" in df.columns and df["fold"].notna().all()
        if group_by == "official" or (group_by == "auto" and has_official):
            if not has_official:
                raise BtcError("--group-by official: the manifest has no complete 'fold' column")
            values = sorted(df["fold"].unique())
            return df["fold"].map({v: i for i, v in enumerate(values)}).to_numpy(dtype=int)
        groups, unit = _groups_of(df, group_by)
    else:
        groups = None if groups is None else np.asarray(groups)
        unit = _unit_count(groups, len(df))[1]
    n_units = len(np.unique(groups)) if groups is not None else len(df)
    if k > n_units:
        raise BtcError(f"cannot make {k} folds from {n_units} {unit}")
    largest = _largest_class(y)
    if k > largest:
        raise BtcError(f"--folds {k}: stratified folds need a class of at least {k} images, and the largest "
                       f"class here has {largest} ({len(df)} images); use --folds {max(2, largest)} or fewer, "
                       "or more data")
    folds = np.full(len(df), -1, dtype=int)
    try:
        with warnings.catch_warnings():
            # a class with fewer members than k is still split as well as it can be
            warnings.simplefilter("ignore", UserWarning)
            for i, (_, test_idx) in enumerate(_splitter(k, groups, seed).split(np.zeros(len(y)), y, groups)):
                folds[test_idx] = i
    except ValueError as e:
        raise BtcError(f"cannot make {k} stratified folds: {e}") from None
    return folds


def holdout(df: pd.DataFrame, y: np.ndarray, fraction: float, *, groups: Groups = FROM_GROUP_BY,
            seed: int = 0, grouped: bool = True, option: str = "hold-out fraction") -> np.ndarray:
    """Boolean mask of a seeded stratified hold-out of about `fraction`, no group on both sides.

    `groups`: None for an image-level hold-out, or one label per row (e.g. `leak_free_groups`);
    without it, patient groups when the manifest has patient ids and `grouped` is True (btc 0.1).
    The hold-out is one fold of round(1 / `fraction`) stratified folds, so it needs that many
    images (groups) in all and in the largest class; when the data are too few, the `BtcError`
    names `option` (e.g. `--test-fraction`, `val_fraction`) and what to do.
    """
    if fraction <= 0 or len(df) == 0:
        return np.zeros(len(df), dtype=bool)
    n_splits = max(2, int(round(1.0 / fraction)))
    if isinstance(groups, _FromGroupBy):
        groups = patient_groups(df) if grouped else None
        unit = "patients" if groups is not None else "images"
    else:
        groups = None if groups is None else np.asarray(groups)
        unit = _unit_count(groups, len(df))[1]
    n_units = len(np.unique(groups)) if groups is not None else len(df)
    if n_units < n_splits:
        raise BtcError(f"{option} {fraction:g}: too few {unit} ({n_units}) for a {fraction:.0%} hold-out, "
                       f"which needs {n_splits}; use a larger fraction, or more data")
    largest = _largest_class(y)
    if largest < n_splits:
        raise BtcError(f"{option} {fraction:g}: a {fraction:.0%} stratified hold-out needs a class of at least "
                       f"{n_splits} images, and the largest class here has {largest} ({len(df)} images); "
                       f"use {option} {1 / max(2, largest):.2g} or more, 0 for none, or more data")
    with warnings.catch_warnings():
        # a class with fewer members than n_splits is still split as well as it can be
        warnings.simplefilter("ignore", UserWarning)
        _, test_idx = next(_splitter(n_splits, groups, seed).split(np.zeros(len(y)), y, groups))
    mask = np.zeros(len(df), dtype=bool)
    mask[test_idx] = True
    return mask


def fill_folds(folds: np.ndarray, labels: np.ndarray, groups: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """`folds` (1…K per row; NaN where missing) completed for the rows that have none, as ints.

    A row whose group already has a fold takes it (the group's most common one, the lowest on a
    tie). The other groups, in a seeded random order, largest first, each go to the fold holding
    the fewest rows of the group's (most common) label so far — then the fewest rows, then the
    lowest number — so every label is spread evenly over the K folds (stratified) and no group
    spans two folds. The same inputs give the same folds.
    """
    folds = np.asarray(folds, dtype=float)
    labels, groups = np.asarray(labels).astype(str), np.asarray(groups)
    known = ~np.isnan(folds)
    out = np.where(known, np.nan_to_num(folds), 0).astype(np.int64)
    given: dict[object, list[int]] = {}
    for g, f in zip(groups[known].tolist(), out[known].tolist(), strict=True):
        given.setdefault(g, []).append(f)
    fold_of_group = {g: min(set(fs), key=lambda f: (-fs.count(f), f)) for g, fs in given.items()}
    per_label = {lab: np.zeros(k + 1, dtype=int) for lab in np.unique(labels)}
    totals = np.zeros(k + 1, dtype=int)
    np.add.at(totals, out[known], 1)
    for lab in per_label:
        np.add.at(per_label[lab], out[known & (labels == lab)], 1)
    missing = np.flatnonzero(~known)
    todo = pd.unique(groups[missing])
    todo = todo[np.random.default_rng(seed).permutation(len(todo))]
    members = {g: missing[groups[missing] == g] for g in todo}
    for g in sorted(todo, key=lambda g: -len(members[g])):  # stable: the seeded order within a size
        rows = members[g]
        fold = fold_of_group.get(g)
        if fold is None:
            label = min(set(labels[rows].tolist()), key=lambda lab: (-int((labels[rows] == lab).sum()), lab))
            fold = min(range(1, k + 1), key=lambda f: (per_label[label][f], totals[f], f))
        out[rows] = fold
        for r in rows:
            per_label[labels[r]][fold] += 1
        totals[fold] += len(rows)
    return out
