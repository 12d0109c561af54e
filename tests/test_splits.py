"""Folds and hold-outs never put a patient on both sides; official folds are respected."""

import numpy as np
import pandas as pd
import pytest

from btc.data.splits import holdout, kfold_assignments
from btc.errors import BtcError


def _frame(n_patients=30, per_patient=3, with_ids=True):
    rows = []
    for p in range(n_patients):
        for s in range(per_patient):
            rows.append({"path": f"p{p}_{s}.png", "patient_id": f"P{p}" if with_ids else "", "label": p % 3})
    return pd.DataFrame(rows)


def test_patient_grouped_kfold():
    df = _frame()
    folds = kfold_assignments(df, df["label"].to_numpy(), 5, seed=0)
    assert set(folds) == set(range(5))
    assert (df.assign(f=folds).groupby("patient_id")["f"].nunique() == 1).all()
    # stratified: every fold has every class
    assert (df.assign(f=folds).groupby("f")["label"].nunique() == 3).all()


def test_official_folds_and_errors():
    df = _frame(10, 1).assign(fold=[1, 2, 3, 4, 5] * 2)
    folds = kfold_assignments(df, df["label"].to_numpy(), 10)  # k is ignored with official folds
    assert folds.tolist() == [0, 1, 2, 3, 4] * 2
    with pytest.raises(BtcError, match="no patient ids"):
        kfold_assignments(_frame(with_ids=False), np.zeros(90, int), 3, group_by="patient")
    with pytest.raises(BtcError, match="cannot make 40 folds from 30 patients"):
        kfold_assignments(_frame(), _frame()["label"].to_numpy(), 40)


def test_holdout_fraction_grouped_and_seeded():
    df = _frame(50, 2)
    y = df["label"].to_numpy()
    a = holdout(df, y, 0.2, seed=1)
    assert a.sum() == pytest.approx(20, abs=4)
    assert not set(df.patient_id[a]) & set(df.patient_id[~a])
    assert (holdout(df, y, 0.2, seed=1) == a).all()
    assert not (holdout(df, y, 0.2, seed=2) == a).all()
    assert holdout(df, y, 0.0).sum() == 0
