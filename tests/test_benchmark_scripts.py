"""The issue-8 benchmark scripts run end to end at tiny sizes and save their JSON contract.

(Their figures are measured, never asserted: on a shared CPU they say nothing about a GPU.)
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_throughput_measures_three_loops(phantom_dir, tmp_path):
    out = tmp_path / "tt.json"
    result = _script("train_throughput").main([
        "--data", str(phantom_dir), "--raw", str(phantom_dir / "images"), "--models", "small_cnn,mlp",
        "--device", "cpu", "--image-size", "64", "--batch-size", "8", "--steps", "2", "--warmup", "1",
        "--workers", "0", "--json", str(out)])
    assert json.loads(out.read_text()) == result
    assert {"device", "versions", "command", "date", "rows"} <= set(result)
    assert [r["model"] for r in result["rows"]] == ["small_cnn", "mlp"]
    for row in result["rows"]:
        assert row["btc_img_s"] > 0 and row["ceiling_img_s"] > 0 and row["naive_img_s"] > 0
        assert row["btc_over_ceiling"] == pytest.approx(row["btc_img_s"] / row["ceiling_img_s"])
        assert row["btc_over_naive"] == pytest.approx(row["btc_img_s"] / row["naive_img_s"])


def test_cv_walltime_extrapolates_from_concurrent_folds(phantom_dir, tmp_path):
    out = tmp_path / "cw.json"
    result = _script("cv_walltime").main([
        "--data", str(phantom_dir), "--model", "small_cnn", "--folds", "3", "--epochs", "4", "--device", "cpu",
        "--image-size", "64", "--steps", "1", "--warmup", "1", "--parallel-folds", "1,2", "--json", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["protocol"]["folds"] == 3 and result["protocol"]["epochs"] == 4
    one, two = result["rows"]
    assert [len(one["measured"]), len(two["measured"])] == [1, 2]
    for row in (one, two):
        m = row["measured"][0]
        expected_fold = 4 * row["measured"][0]["n_train"] / m["train_img_s"] + m["n_test"] / m["eval_img_s"]
        if len(row["measured"]) == 1:
            assert row["fold_s"] == pytest.approx(expected_fold)
        assert row["protocol_s"] == pytest.approx(row["fold_s"] * (3 if row["parallel_folds"] == 1 else 2))
    assert 60 < sum(m["n_train"] + m["n_test"] for m in one["measured"]) <= 96  # the phantom's 96 images
