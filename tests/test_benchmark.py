"""`btc benchmark`: the JSON contract on CPU, the timing median, one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from btc.bench.timing import time_fn
from tests.conftest import run_cli

RESULT_TYPES = {
    "model": str, "image_size": int, "batch_size": int, "params": int, "trainable_params": int,
    "size_mb": float, "size_mib": float, "flops": int, "infer_img_s": float, "train_img_s": float,
    "latency_ms": float, "peak_mem_mb": float, "channels_last": bool, "compiled": bool,
}


def test_benchmark_cpu_json_contract(tmp_path, capsys):
    import btc.models  # noqa: F401
    from btc.models.registry import create_model
    from btc.models.summary import flops_per_image

    out = tmp_path / "out.json"
    code, stdout, stderr = run_cli(["benchmark", "--device", "cpu", "--models", "resnet18,dsconv_cbam",
                                    "--image-size", "64", "--json", out, "--iters", "2", "--warmup", "1",
                                    "--batch-size", "2"], capsys)
    assert code == 0, stderr
    assert "resnet18" in stdout and "dsconv_cbam" in stdout
    report = json.loads(out.read_text())
    assert isinstance(report["device"], str) and report["device"]
    assert report["torch"] == torch.__version__
    assert report["cuda"] is None or isinstance(report["cuda"], str)
    settings = report["settings"]
    assert isinstance(settings, dict)
    assert settings["amp"] is False  # AMP is CUDA-only
    assert settings["batch_size"] == 2 and settings["image_size"] == 64
    assert [r["model"] for r in report["results"]] == ["resnet18", "dsconv_cbam"]
    for r in report["results"]:
        assert set(RESULT_TYPES) <= set(r)
        for key, typ in RESULT_TYPES.items():
            value = r[key]
            if typ is float:
                assert isinstance(value, (int, float)) and not isinstance(value, bool), key
            else:
                assert type(value) is typ, key
        model = create_model(r["model"], 4, input_size=64)
        assert r["params"] == sum(p.numel() for p in model.parameters())
        assert r["trainable_params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert r["size_mb"] == pytest.approx(r["params"] * 4 / 1e6, abs=1e-3)
        assert r["size_mib"] == pytest.approx(r["params"] * 4 / 2**20, abs=1e-3)
        assert r["flops"] > 0 and r["flops"] == flops_per_image(model, 64)
        assert r["image_size"] == 64 and r["batch_size"] == 2
        assert r["infer_img_s"] > 0 and r["train_img_s"] > 0 and r["latency_ms"] > 0
        assert r["peak_mem_mb"] > 0
        assert r["channels_last"] is False and r["compiled"] is False  # auto → contiguous on CPU
        assert r["train_tflops"] == pytest.approx(3 * r["flops"] * r["train_img_s"] / 1e12, rel=1e-2, abs=1e-6)


def test_time_fn_median_with_fake_clock():
    durations = iter([0.0] * 2 + [5.0, 1.0, 3.0, 100.0, 2.0])  # 2 warm-up calls, then 5 timed
    now = [0.0]
    calls = []

    def fn():
        calls.append(1)
        now[0] += next(durations)

    assert time_fn(fn, iters=5, warmup=2, device="cpu", clock=lambda: now[0]) == pytest.approx(3.0)
    assert len(calls) == 7


def test_time_fn_even_count_and_real_clock():
    now = [0.0]
    seq = iter([1.0, 2.0, 4.0, 10.0])

    def fn():
        now[0] += next(seq)

    assert time_fn(fn, iters=4, warmup=0, clock=lambda: now[0]) == pytest.approx(3.0)
    assert time_fn(lambda: sum(range(100)), iters=3, warmup=1) >= 0.0
    with pytest.raises(ValueError):
        time_fn(lambda: None, iters=0, warmup=0)


def test_benchmark_unknown_model_one_line(capsys):
    code, stdout, stderr = run_cli(["benchmark", "--device", "cpu", "--models", "resnet18,nope"], capsys)
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown model 'nope'" in lines[0]
    assert "Traceback" not in stderr + stdout


def test_benchmark_bad_channels_last(capsys):
    code, _, stderr = run_cli(["benchmark", "--device", "cpu", "--models", "small_cnn",
                               "--channels-last", "maybe"], capsys)
    assert code == 1 and "--channels-last" in stderr and "Traceback" not in stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_benchmark_cuda_without_cuda(capsys):
    code, _, stderr = run_cli(["benchmark", "--device", "cuda", "--models", "small_cnn"], capsys)
    assert code == 1 and "no CUDA" in stderr and "Traceback" not in stderr


def test_preferred_memory_format_cpu_is_contiguous():
    from btc.bench.memory_format import preferred_memory_format

    model = torch.nn.Conv2d(3, 4, 3)
    assert preferred_memory_format("x", model, "cpu", 64, 2, None) == torch.contiguous_format
