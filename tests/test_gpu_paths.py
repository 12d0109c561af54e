"""The engine's GPU paths, exercised on the CPU as far as PyTorch allows (issue 17, points 5 and 7).

On the CPU: bf16 autocast, channels-last, `torch.compile` (slow) and the epoch plan (order and
augmentation drawn once, copied in one packed copy) each match the plain path within a
tolerance — or bit for bit where the arithmetic is the same. The defects of point 7 each have a
test: a final batch of one image, a scaler state saved disabled, backend flags set per run, the
memory-format choice (timed under training's conditions; never by inference), fp32 evaluation,
an explicit GPU index under torchrun.

Tests marked `cuda` need a GPU and are skipped without one (`make gpu-bench` runs them): fp16
autocast with the gradient scaler, the memory-format auto choice, one-process NCCL DDP, GPU
augmentation equal to CPU augmentation.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from btc.data.dataset import Augmentation, Preprocess
from btc.engine import devices, distributed
from btc.engine import memory_format as mf
from btc.engine import predictor as predictor_module
from btc.engine import train as train_module
from btc.engine.config import resolve_config
from btc.engine.distributed import Dist
from btc.engine.predictor import Predictor, inference_memory_format
from btc.engine.train import TensorSplit, Trainer, copy_packed, epoch_seed, plan_epoch
from btc.errors import BtcError
from btc.models import create_model
from btc.runfolder import RunFolder

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
CUDA_AVAILABLE = torch.cuda.is_available()


def needs_cuda(test):
    """Marked `cuda` (selected by `pytest -m cuda`) and skipped where no GPU is present."""
    test = pytest.mark.skipif(not CUDA_AVAILABLE, reason="needs a CUDA GPU (make gpu-bench)")(test)
    return pytest.mark.cuda(test)


def config(model: str = "small_cnn", **overrides):
    """paper 003's recipe (random crop, vertical flips) + flips and brightness, tiny."""
    values = {"image_size": 32, "batch_size": 8, "device": "cpu", "pretrained": False, "hflip": 0.5,
              "brightness": 0.2, **overrides}
    return resolve_config(model, "paper003", overrides=values)


def tiny_split(cfg, n: int = 21, seed: int = 0, device: torch.device = CPU) -> TensorSplit:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, cfg.resize_size, cfg.resize_size), dtype=torch.uint8, generator=g)
    targets = torch.randint(0, 4, (n,), generator=g)
    return TensorSplit(images, targets, [f"img{i}.png" for i in range(n)]).to(device)


def trainer(cfg, device: torch.device = CPU, seed: int = 0, model: torch.nn.Module | None = None) -> Trainer:
    torch.manual_seed(seed)
    return Trainer(model or create_model(cfg.model, 4, input_size=cfg.image_size), cfg, device)


def weights(t: Trainer) -> list[torch.Tensor]:
    return [v.detach().cpu() for v in t.model.state_dict().values()]


def reference_epoch(t: Trainer, split: TensorSplit, epoch: int) -> float:
    """The plain path: a per-step loop that draws each batch's augmentation on the host and
    copies its indices and draws at every step (btc's loop before the epoch plan)."""
    seed = epoch_seed(t.config.seed, epoch)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    t.model.train()
    order = torch.randperm(len(split), generator=generator)
    loss_sum = 0.0
    for index in order.split(t.config.batch_size):
        aug = t.predictor.preprocess.draw(len(index), generator)
        x = t.predictor.inputs(split.images[index.to(split.images.device)], aug)
        y = split.targets[index.to(split.targets.device)]
        loss = F.cross_entropy(t.forward_train(x).float(), y, reduction="sum")
        t.optimizer.zero_grad(set_to_none=True)
        (loss * (1 / len(index))).backward()  # the engine's scaling, one process
        t.optimizer.step()
        loss_sum += float(loss.detach())
    return loss_sum / len(split)


# --------------------------------------------------------------------------- the epoch plan


def test_epoch_plan_draws_what_a_per_step_loop_draws():
    pre = Preprocess(image_size=24, resize_size=28, crop="random", normalize="unit", hflip=0.5, vflip=0.5,
                     brightness=0.3)
    plan = plan_epoch(23, 8, pre, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    order = torch.randperm(23, generator=g)
    per_step = [pre.draw(len(batch), g) for batch in order.split(8)]
    assert torch.equal(plan.order, order) and plan.bounds == ((0, 8), (8, 16), (16, 23)) and plan.dropped == 0
    expected = Augmentation.cat(per_step)
    for ours, theirs in zip(plan.aug.fields(), expected.fields(), strict=True):
        assert torch.equal(ours, theirs)
    for (start, stop), draws in zip(plan.bounds, per_step, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(plan.aug.select(slice(start, stop)).fields(), draws.fields(),
                                                     strict=True))


def test_epoch_plan_drops_a_final_batch_too_small_to_train_on():
    pre = Preprocess(image_size=24, resize_size=24, normalize="unit", hflip=0.5)
    plan = plan_epoch(17, 8, pre, torch.Generator().manual_seed(0))  # 8 + 8 + 1
    assert (len(plan), plan.dropped, plan.bounds) == (16, 1, ((0, 8), (8, 16)))
    assert len(plan.aug.hflip) == 16
    plan = plan_epoch(18, 8, pre, torch.Generator().manual_seed(0), smallest=3)  # torchrun, 3 processes
    assert (len(plan), plan.dropped) == (16, 2)
    assert len(plan_epoch(1, 8, pre, torch.Generator(), smallest=2)) == 0


def test_packed_copy_is_exact():
    """Order, crop offsets, flags and brightness factors survive the one float64 copy bit for bit."""
    tensors = [torch.tensor([0, 5, 2**40 + 3]), torch.tensor([True, False, True]),
               torch.tensor([0.8123457, 1.1999999, 1.0], dtype=torch.float32)]
    for moved, original in zip(copy_packed(tensors, CPU), tensors, strict=True):
        assert moved.dtype == original.dtype and torch.equal(moved, original)
    plan = plan_epoch(10, 4, Preprocess(24, 28, crop="random", hflip=0.5), torch.Generator().manual_seed(1))
    assert plan.to(CPU) is plan  # nothing to copy on the CPU


def test_train_epoch_equals_the_per_step_loop_bit_for_bit():
    """The epoch plan (drawn once, sliced per step) is the plain per-step loop's arithmetic."""
    cfg = config()
    split = tiny_split(cfg, n=21)  # 8 + 8 + 5: no batch dropped
    ours, plain = trainer(cfg), trainer(cfg)
    for epoch in range(2):
        stats = ours.train_epoch(split, epoch)
        assert stats.loss == pytest.approx(reference_epoch(plain, split, epoch), abs=1e-6)
        assert stats.images == 21
    assert all(torch.equal(a, b) for a, b in zip(weights(ours), weights(plain), strict=True))


# --------------------------------------------------------------------------- point 7: defects


@pytest.mark.parametrize("model", ["resnest50", "resnesat"])
def test_final_training_batch_of_one_image_is_dropped_not_a_crash(model, tmp_path):
    """Split-attention's BatchNorm on pooled 1×1 features cannot train on one image: 5 images in
    batches of 4 leave one, which is dropped and counted in the history row."""
    cfg = resolve_config(model, overrides={"image_size": 32, "batch_size": 4, "device": "cpu", "pretrained": False,
                                           "epochs": 1, "val_fraction": 0.0})
    split = tiny_split(cfg, n=5)
    t = trainer(cfg)
    stats = t.train_epoch(split, 0)
    assert stats.images == 4 and torch.isfinite(torch.tensor(stats.loss))
    history = t.fit(split, None, RunFolder(tmp_path), {"config": cfg.to_dict()})
    assert history[0]["train_images"] == 4


def test_smallest_batch_under_torchrun():
    """One image per process at least; two per process where BatchNorm is per process (gloo)."""
    cfg = config()
    t = trainer(cfg)
    assert t.smallest_batch == 2
    t.dist = Dist(rank=0, world_size=3)
    assert t.smallest_batch == 6  # small_cnn has BatchNorm, gloo keeps per-process statistics
    mlp = trainer(config("mlp"))
    mlp.dist = Dist(rank=0, world_size=3)
    assert mlp.smallest_batch == 3
    with pytest.raises(BtcError, match="needs at least 2"):
        trainer(cfg).train_epoch(tiny_split(cfg, n=1), 0)


def test_resume_loads_a_scaler_saved_disabled_into_an_enabled_one():
    """A checkpoint from a run without the fp16 scaler (CPU, bf16, amp off) resumes where the
    scaler is on (a GPU without bf16): the empty scaler state is not loaded."""
    cfg = config()
    saved = trainer(cfg).state(0, {})
    assert saved["scaler"] == {}  # a disabled scaler's state
    resumed = trainer(cfg)
    resumed.scaler = torch.amp.GradScaler("cpu", enabled=True)
    resumed.load_state(saved)
    assert resumed.scaler.get_scale() == 65536.0  # its own initial scale, untouched
    enabled = trainer(cfg)
    enabled.scaler = torch.amp.GradScaler("cpu", init_scale=128.0, enabled=True)
    resumed.load_state(enabled.state(0, {}))
    assert resumed.scaler.get_scale() == 128.0


def _flags() -> tuple[bool, bool, bool]:
    return (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
            torch.are_deterministic_algorithms_enabled())


@pytest.mark.parametrize("deterministic", [True, False])
def test_backend_flags_are_set_per_run_not_by_building(deterministic, tmp_path):
    cfg = config(deterministic=deterministic, epochs=1)
    before = _flags()
    t = trainer(cfg)
    Predictor(copy.deepcopy(t.model), cfg, CPU).predict(tiny_split(cfg, n=3).images)
    assert _flags() == before  # building a trainer or predicting changes no global flag
    seen = []
    t.on_batch = lambda done, total: seen.append(_flags())
    t.fit(tiny_split(cfg, n=10), None, RunFolder(tmp_path), {})
    assert set(seen) == {(not deterministic, deterministic, deterministic)}
    assert _flags() == before  # restored after the run


def test_inference_uses_the_cached_memory_format_and_never_times(monkeypatch, tmp_path):
    """`btc predict` with channels_last auto on CUDA: the training run's cached choice, else
    contiguous — no timing (faked GPU: only the cache key needs its name)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setattr(mf, "time_fn", lambda *a, **k: pytest.fail("inference must not time"))
    monkeypatch.setattr(predictor_module, "amp_dtype", lambda config, device: torch.bfloat16)
    gpu = torch.device("cuda")
    cfg = config(channels_last="auto", compile=True)
    assert inference_memory_format(cfg, gpu) == torch.contiguous_format  # cache miss
    key = mf.cache_key(cfg.model, gpu, cfg.image_size, cfg.batch_size, torch.bfloat16, compiled=True)
    assert key.endswith("|bfloat16|compiled")
    mf.record_choice(key, {"channels_last": 1.0, "contiguous": 2.0})
    assert inference_memory_format(cfg, gpu) == torch.channels_last
    assert inference_memory_format(config(channels_last="auto"), gpu) == torch.contiguous_format  # not compiled
    assert inference_memory_format(config(channels_last="off"), gpu) == torch.contiguous_format
    assert inference_memory_format(config(channels_last="on"), CPU) == torch.channels_last


def test_evaluation_is_fp32_when_training_uses_bf16_autocast(monkeypatch):
    """Training steps run under bf16 autocast; validation/test probabilities are the fp32 forward's."""
    bf16 = lambda config, device: torch.bfloat16  # noqa: E731 — what a bf16 GPU resolves to
    monkeypatch.setattr(train_module, "amp_dtype", bf16)
    monkeypatch.setattr(predictor_module, "amp_dtype", bf16)
    cfg = config()
    t = trainer(cfg)
    assert t.amp_dtype == torch.bfloat16 and not t.scaler.is_enabled()
    dtypes = set()
    hook = t.model.register_forward_hook(lambda module, args, out: dtypes.add(out.dtype))
    split = tiny_split(cfg, n=12)
    t.train_epoch(split, 0)
    assert dtypes == {torch.bfloat16}
    dtypes.clear()
    probs = torch.from_numpy(t.predict(split))
    hook.remove()
    assert dtypes == {torch.float32}
    t.model.eval()
    with torch.no_grad():
        x = t.predictor.inputs(split.images)
        fp32 = torch.softmax(t.model(x), dim=1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = torch.softmax(t.model(x).float(), dim=1)
    torch.testing.assert_close(probs, fp32, rtol=0, atol=1e-6)
    assert (low - fp32).abs().max() > 1e-4  # bf16 logits would have shown


def test_explicit_gpu_index_under_torchrun_is_refused(monkeypatch):
    monkeypatch.setattr(distributed, "current", lambda: Dist(rank=1, world_size=2, local_rank=1))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(BtcError, match="under torchrun would put every process on one GPU"):
        devices.resolve_device("cuda:0")
    assert devices.resolve_device("cuda") == torch.device("cuda", 1)  # GPU LOCAL_RANK
    assert devices.resolve_device("auto") == torch.device("cuda", 1)


# --------------------------------------------------------------------------- point 5 on the CPU


def test_bf16_autocast_training_matches_fp32_within_tolerance(monkeypatch):
    cfg = config()
    split = tiny_split(cfg, n=16)
    fp32 = trainer(cfg)
    monkeypatch.setattr(train_module, "amp_dtype", lambda config, device: torch.bfloat16)
    bf16 = trainer(cfg)
    a, b = fp32.train_epoch(split, 0), bf16.train_epoch(split, 0)
    assert b.loss == pytest.approx(a.loss, rel=0.02)
    torch.testing.assert_close(torch.from_numpy(bf16.predict(split)), torch.from_numpy(fp32.predict(split)),
                               rtol=0, atol=0.02)


def test_channels_last_matches_contiguous():
    split = tiny_split(config(), n=16)
    plain, cl = trainer(config(channels_last="off")), trainer(config(channels_last="on"))
    assert cl.predictor.memory_format == torch.channels_last
    conv = next(m for m in cl.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    a, b = plain.train_epoch(split, 0), cl.train_epoch(split, 0)
    assert b.loss == pytest.approx(a.loss, abs=1e-5)
    torch.testing.assert_close(torch.from_numpy(cl.predict(split)), torch.from_numpy(plain.predict(split)),
                               rtol=0, atol=1e-4)


@pytest.mark.slow
def test_torch_compile_on_the_cpu_matches_eager():
    split = tiny_split(config(), n=16)
    eager, compiled = trainer(config()), trainer(config(compile=True))
    assert compiled.forward_train is not compiled.model  # the compiled module
    a, b = eager.train_epoch(split, 0), compiled.train_epoch(split, 0)
    assert b.loss == pytest.approx(a.loss, abs=1e-4)
    torch.testing.assert_close(torch.from_numpy(compiled.predict(split)), torch.from_numpy(eager.predict(split)),
                               rtol=0, atol=1e-4)


# --------------------------------------------------------------------------- CUDA only


@needs_cuda
def test_gpu_augmentation_equals_cpu_augmentation():
    gpu = torch.device("cuda")
    batch = torch.randint(0, 256, (9, 1, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for normalize in ("imagenet", "unit", "standardize"):
        pre = Preprocess(32, 40, crop="random", normalize=normalize, hflip=0.5, vflip=0.5, brightness=0.3)
        aug = pre.draw(9, torch.Generator().manual_seed(3))
        on_cpu = pre.apply(batch, aug)
        on_gpu = pre.apply(batch.to(gpu), aug.to(gpu))
        torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=0, atol=1e-5)
        torch.testing.assert_close(pre.apply(batch.to(gpu)).cpu(), pre.apply(batch), rtol=0, atol=1e-5)
    # the epoch plan reaches the GPU in one packed copy, exactly
    plan = plan_epoch(21, 8, pre, torch.Generator().manual_seed(5))
    moved = plan.to(gpu)
    assert moved.order.device.type == "cuda" and moved.bounds == plan.bounds
    for a, b in zip((moved.order, *moved.aug.fields()), (plan.order, *plan.aug.fields()), strict=True):
        assert a.dtype == b.dtype and torch.equal(a.cpu(), b)
    # and a GPU epoch trains on what a CPU epoch trains on
    cfg = config(device="cuda", amp="off", channels_last="off", deterministic=True)
    split = tiny_split(cfg, n=21)
    cpu_t, gpu_t = trainer(config(channels_last="off")), trainer(cfg, gpu)
    a, b = cpu_t.train_epoch(split, 0), gpu_t.train_epoch(split.to(gpu), 0)
    assert b.images == a.images and b.loss == pytest.approx(a.loss, rel=1e-2)  # (TF32 convolutions)


@needs_cuda
def test_fp16_autocast_with_the_grad_scaler(monkeypatch):
    """A GPU without bf16: fp16 autocast and the gradient scaler train like fp32 and resume."""
    gpu = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    cfg = config(device="cuda", channels_last="off")
    split = tiny_split(cfg, n=32, device=gpu)
    fp16 = trainer(cfg, gpu)
    assert fp16.amp_dtype == torch.float16 and fp16.scaler.is_enabled()
    fp32 = trainer(config(device="cuda", channels_last="off", amp="off"), gpu)
    initial = weights(fp16)
    a, b = fp32.train_epoch(split, 0), fp16.train_epoch(split, 0)
    assert b.loss == pytest.approx(a.loss, rel=0.05)  # (the scaler may skip its first steps)
    fp16.train_epoch(split, 1)
    trained = weights(fp16)
    assert all(torch.isfinite(w.float()).all() for w in trained)
    assert any(not torch.equal(w, w0) for w, w0 in zip(trained, initial, strict=True))  # steps were taken
    assert fp16.scaler.get_scale() > 0
    state = fp16.state(1, {})
    assert state["scaler"]  # an enabled scaler's state is saved …
    resumed = trainer(cfg, gpu)
    resumed.load_state(state)
    assert resumed.scaler.get_scale() == fp16.scaler.get_scale()  # … and restored
    probs = resumed.predict(split)
    assert probs.dtype.name == "float32" and abs(probs.sum(1) - 1).max() < 1e-5


@needs_cuda
def test_memory_format_auto_is_timed_once_under_training_conditions(monkeypatch, tmp_path):
    gpu = torch.device("cuda")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    real_time_fn = mf.time_fn
    benchmark_flags = []

    def timed(*args, **kwargs):
        benchmark_flags.append(torch.backends.cudnn.benchmark)
        return real_time_fn(*args, **kwargs)

    monkeypatch.setattr(mf, "time_fn", timed)
    cfg = config(device="cuda", channels_last="auto")
    before = torch.backends.cudnn.benchmark
    first = trainer(cfg, gpu)
    assert benchmark_flags and set(benchmark_flags) == {True}  # timed as training runs (autotuned)
    assert torch.backends.cudnn.benchmark == before  # and the flag restored
    key = mf.cache_key(cfg.model, gpu, cfg.image_size, cfg.batch_size, first.amp_dtype)
    assert mf.cached_choice(key) == first.predictor.memory_format
    monkeypatch.setattr(mf, "time_fn", lambda *a, **k: pytest.fail("the cached choice is reused"))
    assert trainer(cfg, gpu).predictor.memory_format == first.predictor.memory_format
    assert Predictor(copy.deepcopy(first.model), cfg, gpu).memory_format == first.predictor.memory_format
    first.train_epoch(tiny_split(cfg, n=16, device=gpu), 0)


class _OneProcessGroup(Dist):
    """A process group of one that takes btc's data-parallel path (DDP, SyncBatchNorm, all-reduce)."""

    @property
    def active(self) -> bool:
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_cuda
@pytest.mark.skipif(not torch.distributed.is_nccl_available(), reason="NCCL is not built in")
def test_one_process_nccl_ddp_equals_plain_training(monkeypatch):
    import torch.distributed as dist

    gpu = torch.device("cuda", 0)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        cfg = config(device="cuda", channels_last="off", amp="off")
        split = tiny_split(cfg, n=21, device=gpu)
        plain = trainer(cfg, gpu)
        monkeypatch.setattr(distributed, "current", lambda: _OneProcessGroup(0, 1, 0))
        ddp = trainer(cfg, gpu)
        assert isinstance(ddp.forward_train, torch.nn.parallel.DistributedDataParallel)
        assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in ddp.model.modules())
        for epoch in range(2):
            a, b = plain.train_epoch(split, epoch), ddp.train_epoch(split, epoch)
            assert b.loss == pytest.approx(a.loss, rel=1e-3)
        torch.testing.assert_close(torch.from_numpy(ddp.predict(split)), torch.from_numpy(plain.predict(split)),
                                   rtol=0, atol=1e-3)
    finally:
        dist.destroy_process_group()



# --------------------------------------------------------------------------- make gpu-bench


@pytest.mark.slow
def test_gpu_bench_smoke_run_on_the_cpu(tmp_path):
    """`GPU=0 make gpu-bench`: every step at tiny sizes on the CPU, one JSON each with the result
    header, outside benchmarks/results; a second run skips every step whose result exists."""
    results, work = tmp_path / "results", tmp_path / "work"
    kept = sorted((REPO / "benchmarks" / "results").glob("*"))
    if shutil.which("make"):
        cmd = ["make", "--no-print-directory", "gpu-bench", f"BENCH_RESULTS={results}", f"BENCH_WORK={work}"]
    else:
        cmd = [sys.executable, "benchmarks/gpu_bench.py", "--results", str(results), "--work", str(work)]
    env = {**os.environ, "GPU": "0", "FORCE": ""}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    paper_models = ["resnesat", "dsconv_cbam", "resnet34_improved", "resnet18_transfer"]
    paper002 = ["dsconv_cbam", "mobilenet_v2", "mlp"]
    expected = {"cuda_tests", "benchmark", "train_throughput", "cv_walltime",
                *(f"paper002-kaggle224-{m}" for m in paper002)}
    assert {p.name for p in results.iterdir()} == {f"{stem}-cpu.json" for stem in expected}
    result = {stem: json.loads((results / f"{stem}-cpu.json").read_text()) for stem in expected}
    for stem, value in result.items():
        assert {"benchmark", "device", "versions", "command", "date"} <= set(value), stem
        assert value["device"].startswith("cpu") and value["versions"]["torch"] == torch.__version__
    tests = result["cuda_tests"]
    assert tests["ok"] and tests["tests"] and tests["counts"]["skipped"] == len(tests["tests"])  # no GPU here
    assert all(t["test"].startswith("tests.test_gpu_paths") for t in tests["tests"])
    assert [r["model"] for r in result["benchmark"]["results"]] == paper_models
    assert [r["model"] for r in result["train_throughput"]["rows"]] == paper_models
    assert all(r["btc_img_s"] > 0 for r in result["train_throughput"]["rows"])
    assert [r["parallel_folds"] for r in result["cv_walltime"]["rows"]] == [1]
    for model in paper002:
        run = result[f"paper002-kaggle224-{model}"]
        assert run["ok"] and run["recipe"] == "paper002" and len(run["history"]) == 1
        assert 0.0 <= run["metrics"]["accuracy"] <= 1.0
        # only the model with ImageNet weights is started from random ones (a recorded deviation)
        assert ("--no-pretrained" in run["command"].split()) == (model == "mobilenet_v2")
    assert sorted((REPO / "benchmarks" / "results").glob("*")) == kept  # nothing written there

    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("skipped (result exists)") == len(expected)
