"""`btc benchmark`: the JSON contract on CPU (`--out FILE`, `--json` on stdout), the timing
median, one-line errors, and the benchmark part returning values without printing."""

from __future__ import annotations

import json

import pytest
import torch

from btc.engine.timing import time_fn
from tests.conftest import run_cli

RESULT_TYPES = {
    "model": str, "image_size": int, "batch_size": int, "params": int, "trainable_params": int,
    "size_mb": float, "size_mib": float, "flops": int, "infer_img_s": float, "train_img_s": float,
    "latency_ms": float, "peak_mem_mb": float, "dtype": str, "memory_format": str, "channels_last": bool,
    "compiled": bool,
}
TINY = ["benchmark", "--device", "cpu", "--models", "small_cnn", "--image-size", "32", "--iters", "1",
        "--warmup", "0", "--batch-size", "2"]


def test_benchmark_cpu_json_contract(tmp_path, capsys):
    import btc.models  # noqa: F401
    from btc.models.registry import create_model
    from btc.models.summary import flops_per_image

    out = tmp_path / "out.json"
    code, stdout, stderr = run_cli(["benchmark", "--device", "cpu", "--models", "resnet18,dsconv_cbam",
                                    "--image-size", "64", "--out", out, "--iters", "2", "--warmup", "1",
                                    "--batch-size", "2"], capsys)
    assert code == 0, stderr
    assert "resnet18" in stdout and "dsconv_cbam" in stdout  # the table
    assert f"wrote {out}" in stderr
    report = json.loads(out.read_text())
    assert isinstance(report["device"], str) and report["device"]
    assert report["benchmark"] == "benchmark" and report["date"] and report["command"]
    assert report["torch"] == torch.__version__ == report["versions"]["torch"]
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
        assert r["memory_format"] == "contiguous" and r["dtype"] == "float32"
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
    from btc.engine.memory_format import preferred_memory_format

    model = torch.nn.Conv2d(3, 4, 3)
    assert preferred_memory_format("x", model, "cpu", 64, 2, None) == torch.contiguous_format


def test_benchmark_json_is_alone_on_stdout(tmp_path, capsys):
    code, stdout, stderr = run_cli([*TINY, "--json"], capsys)
    assert code == 0, stderr
    report = json.loads(stdout)  # the whole of stdout is one JSON document
    assert [r["model"] for r in report["results"]] == ["small_cnn"]
    assert report["settings"]["image_size"] == 32 and report["settings"]["iters"] == 1
    assert not list(tmp_path.iterdir())  # --json writes no file


def test_benchmark_json_and_out_write_the_same_object(tmp_path, capsys):
    out = tmp_path / "sub" / "bench.json"
    code, stdout, stderr = run_cli([*TINY, "--json", "--out", out, "--quiet"], capsys)
    assert code == 0, stderr
    printed, written = json.loads(stdout), json.loads(out.read_text())
    assert printed == written
    assert [p.name for p in out.parent.iterdir()] == ["bench.json"]  # atomic write: no temp file left
    assert stderr.strip() == f"wrote {out}"  # --quiet: no progress bar


def test_benchmark_part_returns_values_and_prints_nothing(capsys):
    from btc.bench.benchmark import ModelResult, Settings, run_benchmark
    from btc.progress import Progress

    class Recorder(Progress):
        def __init__(self):
            self.infos = []

        def update(self, task, *, advance=0, completed=None, total=None, info=None, description=None):
            self.infos.append((advance, info))

    progress = Recorder()
    report = run_benchmark("small_cnn", Settings(device="cpu", batch_size=2, image_size=32, iters=1, warmup=0),
                           progress=progress)
    assert capsys.readouterr() == ("", "")
    (result,) = report.results
    assert isinstance(result, ModelResult) and result.model == "small_cnn"
    assert result.to_dict()["size_mib"] == pytest.approx(result.params * 4 / 2**20, abs=1e-3)
    assert report.to_dict()["results"] == [result.to_dict()]
    assert progress.infos == [(0, "small_cnn"), (1, "small_cnn")]


def test_benchmark_isolated_process_gives_the_same_figures():
    from btc.bench.benchmark import Settings, benchmark_model, benchmark_model_isolated

    settings = Settings(device="cpu", batch_size=2, image_size=32, iters=1, warmup=0)
    here, there = benchmark_model("small_cnn", settings), benchmark_model_isolated("small_cnn", settings)
    assert (there.params, there.flops, there.memory_format) == (here.params, here.flops, here.memory_format)
    assert there.infer_img_s > 0 and there.train_img_s > 0 and there.peak_mem_mb > 0


def test_record_choice_keeps_the_faster_format(tmp_path, monkeypatch):
    from btc.engine.memory_format import cached_choice, record_choice

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cached_choice("m|gpu|64|2|fp32") is None
    assert record_choice("m|gpu|64|2|fp32", {"contiguous": 2.0, "channels_last": 1.5}) == torch.channels_last
    assert cached_choice("m|gpu|64|2|fp32") == torch.channels_last
    record_choice("m|gpu|64|2|fp32", {"contiguous": 1.0, "channels_last": 1.5})
    assert cached_choice("m|gpu|64|2|fp32") == torch.contiguous_format


def test_both_formats_measured_the_faster_reported_and_recorded(tmp_path, monkeypatch):
    """The CUDA `auto` path (both formats timed, the faster kept for the engine), run on CPU."""
    import json as json_

    from btc.bench.benchmark import Settings, benchmark_model
    from btc.engine.memory_format import FORMATS, cache_key, cache_path, cached_choice

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(Settings, "memory_formats", lambda self: list(FORMATS.values()))
    settings = Settings(device="cpu", batch_size=2, image_size=32, iters=1, warmup=0)
    result = benchmark_model("small_cnn", settings)
    key = cache_key("small_cnn", settings.device, 32, 2, None)
    entry = json_.loads(cache_path().read_text())[key]
    assert set(entry["seconds"]) == set(FORMATS)
    assert result.memory_format == entry["format"] == min(entry["seconds"], key=entry["seconds"].get)
    assert cached_choice(key) == FORMATS[result.memory_format]


def test_channels_last_on_is_reported():
    from btc.bench.benchmark import Settings, benchmark_model

    result = benchmark_model("small_cnn", Settings(device="cpu", batch_size=2, image_size=32, iters=1, warmup=0,
                                                   channels_last="on"))
    assert result.memory_format == "channels_last" and result.to_dict()["channels_last"] is True
