"""The benchmark scripts run end to end at tiny sizes and save their JSON contract: the shared
result header (`btc.bench.provenance`: benchmark, device, versions, command, date) and their rows.

(Their figures are measured, never asserted: on a shared CPU they say nothing about a GPU.)
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEADER = {"benchmark", "device", "versions", "command", "date"}


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
        "--workers", "0", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert HEADER | {"rows"} <= set(result) and result["benchmark"] == "train_throughput"
    assert [r["model"] for r in result["rows"]] == ["small_cnn", "mlp"]
    for row in result["rows"]:
        assert row["btc_img_s"] > 0 and row["ceiling_img_s"] > 0 and row["naive_img_s"] > 0
        assert row["btc_over_ceiling"] == pytest.approx(row["btc_img_s"] / row["ceiling_img_s"])
        assert row["btc_over_naive"] == pytest.approx(row["btc_img_s"] / row["naive_img_s"])


@pytest.mark.slow
def test_cv_walltime_extrapolates_from_concurrent_folds(phantom_dir, tmp_path):
    out = tmp_path / "cw.json"
    result = _script("cv_walltime").main([
        "--data", str(phantom_dir), "--model", "small_cnn", "--folds", "3", "--epochs", "4", "--device", "cpu",
        "--image-size", "64", "--steps", "1", "--warmup", "1", "--parallel-folds", "1,2", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert HEADER <= set(result) and result["benchmark"] == "cv_walltime"
    assert result["protocol"]["folds"] == 3 and result["protocol"]["epochs"] == 4
    one, two = result["rows"]
    assert [len(one["measured"]), len(two["measured"])] == [1, 2]
    assert [m["fold"] for m in two["measured"]] == [1, 2]  # folds are numbered 1…K
    for row in (one, two):
        m = row["measured"][0]
        expected_fold = 4 * row["measured"][0]["n_train"] / m["train_img_s"] + m["n_test"] / m["eval_img_s"]
        if len(row["measured"]) == 1:
            assert row["fold_s"] == pytest.approx(expected_fold)
        assert row["protocol_s"] == pytest.approx(row["fold_s"] * (3 if row["parallel_folds"] == 1 else 2))
    assert 60 < sum(m["n_train"] + m["n_test"] for m in one["measured"]) <= 96  # the phantom's 96 images


def test_throughput_sweep_records_each_batch_size(tmp_path):
    out = tmp_path / "ts.json"
    result = _script("throughput_sweep").main([
        "--device", "cpu", "--models", "small_cnn", "--image-size", "32", "--batch-sizes", "1,2",
        "--iters", "1", "--warmup", "0", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert HEADER <= set(result) and result["benchmark"] == "throughput_sweep"
    assert result["settings"]["batch_sizes"] == [1, 2] and "batch_size" not in result["settings"]
    points = result["results"]
    assert [(p["model"], p["batch_size"]) for p in points] == [("small_cnn", 1), ("small_cnn", 2)]
    for p in points:  # each point is a `btc benchmark` result entry (or an error)
        assert "error" in p or (p["infer_img_s"] > 0 and p["image_size"] == 32)


@pytest.mark.slow
def test_run_cpu_measures_each_model_in_its_own_process(tmp_path):
    out = tmp_path / "cpu.json"
    _script("run_cpu").main(["--models", "small_cnn,mlp", "--image-size", "32", "--batch-size", "2",
                             "--iters", "1", "--warmup", "0", "--out", str(out)])
    result = json.loads(out.read_text())
    assert HEADER | {"host", "torch", "settings", "results"} <= set(result)
    assert result["settings"]["device_type"] == "cpu" and result["settings"]["batch_size"] == 2
    assert [r["model"] for r in result["results"]] == ["small_cnn", "mlp"]
    assert all(r["peak_mem_mb"] > 0 and r["train_img_s"] > 0 for r in result["results"])


def test_onnx_vs_eager_times_both_runtimes(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "onnx.json"
    result = _script("onnx_vs_eager").main(["--models", "small_cnn", "--batch-sizes", "1", "--iters", "1",
                                            "--warmup", "0", "--threads", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert HEADER <= set(result) and "onnxruntime" in result["versions"]
    (row,) = result["results"]
    assert row["model"] == "small_cnn" and row["batch_size"] == 1
    assert row["eager_images_per_s"] > 0 and row["ort_images_per_s"] > 0
    assert row["speedup"] == pytest.approx(row["ort_images_per_s"] / row["eager_images_per_s"])
    assert row["max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_leakage_effect_trains_both_protocols_and_splits_the_test_by_twins(phantom_dir, tmp_path):
    out = tmp_path / "le.json"
    args = ["--data", str(phantom_dir), "--runs", str(tmp_path / "runs"), "--models", "mlp", "--seeds", "0",
            "--image-size", "32", "--epochs", "2", "--snapshot-every", "1", "--out", str(out)]
    assert _script("leakage_effect").main([*args, "--only", "train"]) is None
    result = _script("leakage_effect").main([*args, "--only", "analyse"])  # the runs trained above
    assert json.loads(out.read_text()) == result
    assert HEADER | {"settings", "results"} <= set(result) and result["benchmark"] == "leakage_effect"
    assert result["settings"]["trained"]["mlp"]["epochs"] == 2
    (entry,) = result["results"]
    paper, leak_free = entry["paper"], entry["leak-free"]
    # the leak-free test set is the paper's without the images that have a twin in training
    assert paper["twin"]["n"] + paper["no_twin"]["n"] == paper["test"]["n"]
    assert leak_free["test"]["n"] == paper["test"]["n"] - paper["twin"]["n"]
    assert leak_free["twin"]["n"] == 0
    assert [s["epoch"] for s in paper["snapshots"]] == [1, 2]
    low, high = entry["paper_minus_leak_free"]["ci95"]
    assert low <= entry["paper_minus_leak_free"]["difference"] <= high
