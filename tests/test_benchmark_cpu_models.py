"""CPU speed work (issue 17 point 4): the faster layer formulations compute what the old ones did,
and `benchmarks/cpu_models.py` runs end to end and saves its JSON contract.

Each reference below is the formulation a layer had before it was rewritten for speed, applied to
the same module (the same weights): outputs must agree within 1e-5 and so must every gradient,
in the contiguous and the channels-last memory format.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from btc.models import create_model
from btc.models.dsconv_cbam import DSConvBlock
from btc.models.layers import CBAM, ChannelAttention, SpatialAttention, SplitAttn, SqueezeExcite

REPO = Path(__file__).resolve().parents[1]
FORMATS = [torch.contiguous_format, torch.channels_last]

# ------------------------------------------------------------------ the old formulations


def old_channel_attention(m: ChannelAttention, x: torch.Tensor) -> torch.Tensor:
    avg = m.fc2(m.act(m.fc1(x.mean((2, 3), keepdim=True))))
    mx = m.fc2(m.act(m.fc1(x.amax((2, 3), keepdim=True))))
    return torch.sigmoid(avg + mx)


def old_spatial_attention(m: SpatialAttention, x: torch.Tensor) -> torch.Tensor:
    pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)
    return torch.sigmoid(m.bn(m.conv(pooled)))


def old_cbam(m: CBAM, x: torch.Tensor) -> torch.Tensor:
    x = x * old_channel_attention(m.channel, x)
    return x * old_spatial_attention(m.spatial, x)


def old_squeeze_excite(m: SqueezeExcite, x: torch.Tensor) -> torch.Tensor:
    s = m.fc2(m.act(m.fc1(x.mean((2, 3), keepdim=True))))
    return x * torch.sigmoid(s)


def old_split_attn(m: SplitAttn, x: torch.Tensor) -> torch.Tensor:
    x = m.act0(m.bn0(m.conv(x)))
    b, rc, h, w = x.shape
    if m.radix > 1:
        x = x.reshape(b, m.radix, rc // m.radix, h, w)
        gap = x.sum(dim=1)
    else:
        gap = x
    attn = m.fc2(m.act1(m.bn1(m.fc1(gap.mean((2, 3), keepdim=True)))))
    attn = m.rsoftmax(attn).view(b, -1, 1, 1)
    if m.radix > 1:
        out = (x * attn.reshape(b, m.radix, rc // m.radix, 1, 1)).sum(dim=1)
    else:
        out = x * attn
    return out.contiguous()


def old_dsconv_block(m: DSConvBlock, x: torch.Tensor) -> torch.Tensor:
    return old_cbam(m.cbam, m.pool(m.act(m.conv(x))))  # conv → ReLU → pool → CBAM


def old_dsconv_cbam(model, x: torch.Tensor) -> torch.Tensor:
    for block in model.blocks:
        x = old_dsconv_block(block, x)
    return model.fc(model.act(model.fc1(model.flatten(x))))


# ------------------------------------------------------------------ comparison


def outputs_and_grads(module: torch.nn.Module, forward, x: torch.Tensor, seed: int = 1):
    """Output, input gradient and parameter gradients of `forward(x)` under a fixed random loss."""
    x = x.detach().clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    out = forward(x)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    (out * weight).sum().backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return out.detach(), x.grad.clone(), grads


def assert_same(module, new_forward, old_forward, x, atol=1e-5):
    new_out, new_dx, new_grads = outputs_and_grads(module, new_forward, x)
    old_out, old_dx, old_grads = outputs_and_grads(module, old_forward, x)
    assert new_out.shape == old_out.shape
    torch.testing.assert_close(new_out, old_out, rtol=0, atol=atol)
    scale = max(1.0, old_dx.abs().max().item())
    torch.testing.assert_close(new_dx, old_dx, rtol=1e-4, atol=atol * scale)
    assert new_grads.keys() == old_grads.keys() and new_grads
    # at the module's scale: a gradient that is only rounding noise (the bias of a conv followed
    # by a training-mode BatchNorm, whose true gradient is 0) differs by rounding noise
    scale = max(1.0, max(g.abs().max().item() for g in old_grads.values()))
    for name, g in old_grads.items():
        torch.testing.assert_close(new_grads[name], g, rtol=1e-4, atol=atol * scale, msg=name)
    return new_out


@pytest.mark.parametrize("memory_format", FORMATS)
def test_cbam_gates_match_the_old_formulation(memory_format):
    torch.manual_seed(0)
    x = torch.randn(3, 32, 11, 13).contiguous(memory_format=memory_format)
    cbam = CBAM(32, 16, 5, spatial_norm=False)
    assert_same(cbam.channel, cbam.channel, lambda t: old_channel_attention(cbam.channel, t), x)
    assert_same(cbam.spatial, cbam.spatial, lambda t: old_spatial_attention(cbam.spatial, t), x)
    assert_same(cbam, cbam, lambda t: old_cbam(cbam, t), x)
    gate = SpatialAttention(7, norm=True).train()  # ResNeSAt's gate, with BN
    assert_same(gate, gate, lambda t: old_spatial_attention(gate, t), x)


@pytest.mark.parametrize("memory_format", FORMATS)
def test_squeeze_excite_matches_the_old_formulation(memory_format):
    torch.manual_seed(0)
    se = SqueezeExcite(64, 16)
    x = torch.randn(4, 64, 7, 5).contiguous(memory_format=memory_format)
    out = assert_same(se, se, lambda t: old_squeeze_excite(se, t), x)
    assert out.is_contiguous(memory_format=memory_format)


@pytest.mark.parametrize("memory_format", FORMATS)
@pytest.mark.parametrize("radix", [1, 2])
def test_split_attention_matches_and_keeps_the_memory_format(memory_format, radix):
    torch.manual_seed(0)
    sa = SplitAttn(32, 32, radix=radix).train()
    x = torch.randn(4, 32, 9, 9).contiguous(memory_format=memory_format)
    out = assert_same(sa, sa, lambda t: old_split_attn(sa, t), x)
    # channels-last in, channels-last out: the next conv sees one format (the old
    # `.contiguous()` handed it NCHW, and mixed formats take slow paths forward and backward)
    assert out.is_contiguous(memory_format=memory_format)


@pytest.mark.parametrize("memory_format", FORMATS)
def test_dsconv_block_pools_before_relu_with_the_same_result(memory_format):
    torch.manual_seed(0)
    block = DSConvBlock(3, 32)
    # odd side (the pool floors), and a conv output that is negative in many windows, so that
    # whole windows are ≤ 0 and ReLU's zeros tie inside windows (where the orders could differ)
    x = (torch.randn(2, 3, 21, 21) - 0.5).contiguous(memory_format=memory_format)
    out = assert_same(block, block, lambda t: old_dsconv_block(block, t), x)
    assert (out == 0).any()


@pytest.mark.parametrize("memory_format", FORMATS)
def test_dsconv_cbam_matches_the_old_formulation_end_to_end(memory_format):
    torch.manual_seed(0)
    model = create_model("dsconv_cbam", 4, input_size=64).to(memory_format=memory_format)
    x = torch.randn(4, 3, 64, 64).contiguous(memory_format=memory_format)
    assert_same(model, model, lambda t: old_dsconv_cbam(model, t), x)
    # and a training step from the same weights lands on the same weights
    twin = create_model("dsconv_cbam", 4, input_size=64).to(memory_format=memory_format)
    twin.load_state_dict(model.state_dict())
    y = torch.tensor([0, 1, 2, 3])
    for net, forward in ((model, model), (twin, lambda t: old_dsconv_cbam(twin, t))):
        net.zero_grad(set_to_none=True)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        F.cross_entropy(forward(x), y).backward()
        opt.step()
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=name)


# ------------------------------------------------------------------ the benchmark script


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_models_reports_train_steps_flops_matmul_and_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "cpu.json"
    result = _script("cpu_models").main([
        "--models", "mlp,small_cnn", "--sizes", "32", "--batch-size", "4", "--infer-batch", "2",
        "--threads", "1", "--steps", "1", "--warmup", "0", "--rounds", "2", "--matmul-n", "64",
        "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert {"benchmark", "device", "versions", "command", "date", "rows", "rounds"} <= set(result)
    assert result["benchmark"] == "cpu_models" and len(result["rounds"]) == 2
    assert [(r["model"], r["image_size"], r["threads"]) for r in result["rows"]] == [
        ("mlp", 32, 1), ("small_cnn", 32, 1)]
    for row in result["rows"]:
        assert set(row["train_ms_per_step"]) == {"contiguous", "channels_last"}
        assert all(v > 0 for v in row["train_ms_per_step"].values())
        assert all(v > 0 for v in row["infer_img_s"].values()) and row["ort_img_s"] > 0
        assert row["flops_per_image"] > 0 and row["params"] > 0
        # a step counted as it runs: the forward of the batch, then the weight gradients (one
        # forward's worth) and the input gradients of every layer but the first (at most one more)
        assert 2 * 4 * row["flops_per_image"] < row["train_flops_per_step"] <= 3 * 4 * row["flops_per_image"]
        best = min(row["train_ms_per_step"].values()) / 1e3
        assert row["train_gflop_s"] == pytest.approx(row["train_flops_per_step"] / best / 1e9)
        assert row["of_matmul"] == pytest.approx(row["train_gflop_s"] / row["matmul_gflop_s"])


def test_dsconv_cbam_runs_channels_last_on_the_cpu_from_any_input_layout():
    torch.manual_seed(0)
    model = create_model("dsconv_cbam", 4, input_size=64).eval()
    seen = []
    model.blocks[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(out, old_dsconv_cbam(model, x), rtol=0, atol=1e-5)
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
