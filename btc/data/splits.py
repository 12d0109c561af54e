"""Train / validation / test splits and K folds that never put a patient on both sides.

- `kfold_assignments`: stratified K-fold (scikit-learn's `StratifiedKFold`), grouped by patient
  (`StratifiedGroupKFold`) whenever patient ids are known, or the dataset's official folds
  (Figshare `cvind.mat`, paper 003's protocol).
- `holdout`: one seeded stratified (patient-grouped) hold-out of a given fraction, used for the
  test split when the manifest has no train/test split and for the validation split carved out
  of a training part.
Images without a patient id are their own group. Data too small for the folds or the hold-out
asked for end in one line naming the option and what to do, checked before scikit-learn is asked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from btc.errors import BtcError

GROUPINGS = ("auto", "patient", "official", "none")


def patient_groups(df: pd.DataFrame) -> np.ndarray | None:
    """Group ids per row (patient id, or the path when unknown); None when no row has a patient."""
    if "patient_id" not in df.columns or not (df["patient_id"] != "").any():
        return None
    return np.where(df["patient_id"] != "", "patient:" + df["patient_id"], "image:" + df["path"])


def _splitter(n_splits: int, groups: np.ndarray | None, seed: int):
    if groups is None:
        return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def kfold_assignments(df: pd.DataFrame, y: np.ndarray, k: int, *, group_by: str = "auto",
                      seed: int = 0) -> np.ndarray:
    """Fold index (0..K-1) of every row.

    `group_by`: `official` uses the manifest's `fold` column (renumbered from 0); `patient`
    requires patient ids; `auto` uses official folds when present, else patient groups when
    known, else plain stratified folds; `none` ignores patients (leaky on multi-slice data).
    """
    if group_by not in GROUPINGS:
        raise BtcError(f"--group-by must be one of {', '.join(GROUPINGS)} (got {group_by!r})")
    has_official = "fold" in df.columns and df["fold"].notna().all()
    if group_by == "official" or (group_by == "auto" and has_official):
        if not has_official:
            raise BtcError("--group-by official: the manifest has no complete 'fold' column")
        values = sorted(df["fold"].unique())
        return df["fold"].map({v: i for i, v in enumerate(values)}).to_numpy(dtype=int)
    groups = None if group_by == "none" else patient_groups(df)
    if group_by == "patient" and groups is None:
        raise BtcError("--group-by patient: the manifest has no patient ids")
    n_units = len(np.unique(groups)) if groups is not None else len(df)
    if k > n_units:
        raise BtcError(f"cannot make {k} folds from {n_units} {'patients' if groups is not None else 'images'}")
    largest = _largest_class(y)
    if k > largest:
        raise BtcError(f"--folds {k}: stratified folds need a class of at least {k} images, and the largest "
                       f"class here has {largest} ({len(df)} images); use --folds {max(2, largest)} or fewer, "
                       "or more data")
    folds = np.full(len(df), -1, dtype=int)
    try:
        for i, (_, test_idx) in enumerate(_splitter(k, groups, seed).split(np.zeros(len(y)), y, groups)):
            folds[test_idx] = i
    except ValueError as e:
        raise BtcError(f"cannot make {k} stratified folds: {e}") from None
    return folds


def _largest_class(y: np.ndarray) -> int:
    """Images in the largest class (scikit-learn's stratified splitters need it ≥ the folds)."""
    return int(np.unique(np.asarray(y), return_counts=True)[1].max()) if len(y) else 0


def holdout(df: pd.DataFrame, y: np.ndarray, fraction: float, *, seed: int = 0,
            grouped: bool = True, option: str = "hold-out fraction") -> np.ndarray:
    """Boolean mask of a seeded stratified (patient-grouped) hold-out of about `fraction`.

    The hold-out is one fold of round(1 / `fraction`) stratified folds, so it needs that many
    images (patients) in all and in the largest class; when the data are too few, the `BtcError`
    names `option` (e.g. `--test-fraction`, `val_fraction`) and what to do.
    """
    if fraction <= 0 or len(df) == 0:
        return np.zeros(len(df), dtype=bool)
    n_splits = max(2, int(round(1.0 / fraction)))
    groups = patient_groups(df) if grouped else None
    n_units = len(np.unique(groups)) if groups is not None else len(df)
    unit = "patients" if groups is not None else "images"
    if n_units < n_splits:
        raise BtcError(f"{option} {fraction:g}: too few {unit} ({n_units}) for a {fraction:.0%} hold-out, "
                       f"which needs {n_splits}; use a larger fraction, or more data")
    largest = _largest_class(y)
    if largest < n_splits:
        raise BtcError(f"{option} {fraction:g}: a {fraction:.0%} stratified hold-out needs a class of at least "
                       f"{n_splits} images, and the largest class here has {largest} ({len(df)} images); "
                       f"use {option} {1 / max(2, largest):.2g} or more, 0 for none, or more data")
    import warnings

    with warnings.catch_warnings():
        # a class with fewer members than n_splits is still split as well as it can be
        warnings.simplefilter("ignore", UserWarning)
        _, test_idx = next(_splitter(n_splits, groups, seed).split(np.zeros(len(y)), y, groups))
    mask = np.zeros(len(df), dtype=bool)
    mask[test_idx] = True
    return mask
