"""`btc demo` (issue 18.8): the first thing a newcomer runs shows a model that learns what the
phantom draws: at least 0.85 accuracy on held-out phantom patients, every class well above
chance (0.25), validation curves in its plot, a report, and the one-line result under `-q`.

The full demo is marked slow (about two minutes on two idle CPU cores); its settings are checked
without training.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from btc.commands.demo import DEMO
from btc.runfolder import CVFolder
from tests.conftest import run_cli


def test_demo_settings_hold_out_patients_and_validate():
    overrides = DEMO["overrides"]
    assert DEMO["folds"] == 3 and overrides["protocol"] == "leak-free"  # test folds of whole patients
    assert overrides["val_fraction"] > 0  # validation curves in learning_curves.png
    assert overrides["device"] == "cpu" and overrides["pretrained"] is False  # no download, no GPU


@pytest.mark.slow
def test_demo_learns_the_phantom(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, err = run_cli(["demo", "--out", out, "-q"], capsys)
    assert code == 0, err
    lines = stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("demo finished in ") and "3-fold CV: accuracy " in lines[0]
    cv = CVFolder(out / f"{DEMO['model']}-cv{DEMO['folds']}")
    summary = cv.read_summary()
    assert summary.complete and [f.fold for f in summary.folds] == [1, 2, 3]
    assert summary.mean["accuracy"] >= 0.85, summary.mean["accuracy"]
    # every class well above chance, on the pooled out-of-fold predictions
    for index, name in enumerate(cv.fold(1).read_predictions().classes):
        right = total = 0
        for k in (1, 2, 3):
            p = cv.fold(k).read_predictions()
            right += int(((p.targets == index) & (p.predicted == index)).sum())
            total += int((p.targets == index).sum())
        assert right / total >= 0.7, (name, right, total)
    # held-out patients: no patient has images in two test folds (so never in training and test)
    manifest = pd.read_csv(out / "phantom" / "manifest.csv").set_index("path")
    folds = pd.read_csv(cv.path / "folds.csv")
    assert (folds.assign(patient=manifest.loc[folds["path"], "patient_id"].to_numpy())
            .groupby("patient")["fold"].nunique() == 1).all()
    # validation curves: every fold has validation loss and accuracy for every epoch
    for k in (1, 2, 3):
        history = cv.fold(k).read_history()
        assert len(history) == DEMO["overrides"]["epochs"]
        assert history["val_accuracy"].notna().all() and history["val_loss"].notna().all()
    for name in ("report.md", "confusion_matrix.png", "learning_curves.png", "roc.png"):
        assert (cv.path / name).stat().st_size > 0
    report = (cv.path / "report.md").read_text()
    assert "95 % CI [" in report and "leak-free" in report
    assert json.loads((cv.path / "cv.json").read_text())["mean"]["accuracy"] == summary.mean["accuracy"]
