"""`btc cv --parallel-folds N`: folds in separate processes give the sequential CV's results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli

ARGS = ["--model", "small_cnn", "--image-size", "64", "--batch-size", "16", "--epochs", "2", "--folds", "3",
        "--device", "cpu", "--no-pretrained", "--set", "val_fraction=0.25", "-q"]


@pytest.mark.slow
def test_parallel_folds_equal_sequential_folds(phantom_dir, tmp_path, capsys):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker: float sums in the same order (2 threads drift by ~1e-4)
    try:
        code, _, err = run_cli(["cv", "--data", phantom_dir, *ARGS, "--out", tmp_path / "seq"], capsys)
        assert code == 0, err
        # fold 2 done beforehand: the parallel run must leave it alone and run folds 1 and 3
        code, _, err = run_cli(["cv", "--data", phantom_dir, *ARGS, "--fold", "2", "--out", tmp_path / "par"], capsys)
        assert code == 0, err
    finally:
        torch.set_num_threads(threads)
    before = (tmp_path / "par" / "fold-2" / "metrics.json").stat().st_mtime_ns
    code, _, err = run_cli(["cv", "--data", phantom_dir, *ARGS, "--parallel-folds", "2", "--out", tmp_path / "par"],
                           capsys)
    assert code == 0, err
    assert (tmp_path / "par" / "fold-2" / "metrics.json").stat().st_mtime_ns == before
    seq, par = (json.loads((tmp_path / run / "cv.json").read_text()) for run in ("seq", "par"))
    assert par["complete"] and [f["fold"] for f in par["folds"]] == [1, 2, 3]
    for a, b in zip(seq["folds"], par["folds"], strict=True):
        assert a["metrics"]["confusion_matrix"] == b["metrics"]["confusion_matrix"]
        assert a["metrics"]["auc"] == pytest.approx(b["metrics"]["auc"], abs=1e-4)
    for k in range(1, 4):
        pa, pb = (pd.read_csv(tmp_path / run / f"fold-{k}" / "predictions.csv") for run in ("seq", "par"))
        probs = [c for c in pa.columns if c.startswith("prob_")]
        np.testing.assert_allclose(pb[probs], pa[probs], atol=1e-6)


def test_parallel_folds_with_a_finished_cv_of_another_config_is_refused(phantom_dir, tmp_path, capsys):
    code, _, err = run_cli(["cv", "--data", phantom_dir, *ARGS, "--fold", "1", "--out", tmp_path / "cv"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["cv", "--data", phantom_dir, *ARGS, "--lr", "0.5", "--parallel-folds", "2",
                            "--out", tmp_path / "cv"], capsys)
    assert code == 1 and "holds a run with another config (lr)" in err
