"""`btc export`: ONNX with dynamic batch, metadata, and ONNX Runtime parity with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from btc.engine.config import resolve_config
from tests.conftest import run_cli

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


def make_checkpoint(tmp_path: Path, model: str, size: int) -> Path:
    """A checkpoint as `btc train` writes it (random weights, non-trivial BN statistics)."""
    from btc.models import create_model

    torch.manual_seed(0)
    config = resolve_config(model, overrides={"image_size": size})
    net = create_model(model, len(CLASSES), input_size=size)
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 3, size, size))  # move BN running stats off their defaults
    path = tmp_path / model / "checkpoint-best.pt"
    path.parent.mkdir(parents=True)
    torch.save({"model": net.state_dict(), "epoch": 0, "config": config.to_dict(), "classes": CLASSES,
                "task": "multiclass"}, path)
    return path


@pytest.mark.parametrize(("model", "opset", "exporter"), [("small_cnn", 17, "torchscript"),
                                                         ("dsconv_cbam", 18, "dynamo")])
def test_export_parity(tmp_path, capsys, model, opset, exporter):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    checkpoint = make_checkpoint(tmp_path, model, 64)
    out = tmp_path / f"{model}.onnx"
    code, stdout, err = run_cli(["export", checkpoint, "--onnx", out, "--opset", opset], capsys)
    assert code == 0, err
    assert f"opset {opset}, exporter {exporter}" in stdout
    assert "parity: ONNX Runtime matches PyTorch" in stdout and "max abs diff" in stdout
    proto = onnx.load(str(out))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == CLASSES and meta["image_size"] == "64"
    assert meta["normalize"] == resolve_config(model).normalize and "preprocessed" in meta["input"]
    # dynamic batch: other batch sizes than the export example, same probabilities as PyTorch
    from btc.engine.checkpoint import load_checkpoint

    net = load_checkpoint(checkpoint).model
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    for n in (1, 5):
        x = torch.randn(n, 3, 64, 64)
        got = session.run(["probabilities"], {"image": x.numpy()})[0]
        with torch.no_grad():
            want = torch.softmax(net(x), 1).numpy()
        assert got.shape == (n, len(CLASSES))
        np.testing.assert_allclose(got, want, atol=1e-4)
        np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


def test_export_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "checkpoint-best.pt"
    bad.write_bytes(b"garbage")
    code, _, err = run_cli(["export", bad, "--onnx", tmp_path / "m.onnx"], capsys)
    assert code == 1 and "not a readable checkpoint" in err
    code, _, err = run_cli(["export", tmp_path / "missing.pt", "--onnx", tmp_path / "m.onnx"], capsys)
    assert code == 1 and "checkpoint not found" in err
    assert not (tmp_path / "m.onnx").exists()
