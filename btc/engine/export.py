"""`btc export`: a trained checkpoint as an ONNX model with a dynamic batch dimension.

The ONNX graph is the network followed by a softmax:

- input `image`: float32 (N, 3, S, S), **already preprocessed** — preprocessing is the
  caller's job: grayscale → resize to `resize_size` (`interpolation`) → centre crop to
  `image_size` → [0, 1] → normalisation (`normalize`: imagenet mean/std, per-image
  standardisation or none), the gray channel repeated three times; for a Kaggle-prepared
  training set, the extreme-point crop first (`btc predict` does all of it). These parameters
  are written into the model's `metadata_props` (`image_size`, `resize_size`, `interpolation`,
  `normalize`, `mean`, `std`, `classes`, …).
- output `probabilities`: float32 (N, classes).

Opset ≥ 18 uses torch's `torch.export`-based exporter (`dynamo=True`, the default since torch
2.9), falling back to the TorchScript exporter if it fails on a model; opset < 18 (the default
17, for older runtimes) uses the TorchScript exporter, since the new exporter only emits ≥ 18 and
its down-conversion fails on these models. The output names the exporter used. When
ONNX Runtime is installed (extra `onnx`), the file is checked: on 4 random inputs its
probabilities must match PyTorch's within 1e-4 (max abs difference reported).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from btc.data.dataset import IMAGENET_MEAN, IMAGENET_STD
from btc.engine.checkpoint import Checkpoint, load_checkpoint
from btc.errors import BtcError
from btc.io import atomic_write, refuse_foreign_file

TOLERANCE = 1e-4
PARITY_INPUTS = 4


class WithSoftmax(nn.Module):
    """network(image) → class probabilities (the exported graph)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(image), dim=1)


def _export(module: nn.Module, example: torch.Tensor, path: Path, opset: int) -> str:
    """Write `module` to `path` at exactly `opset`; returns the exporter used.

    The torch.export-based exporter emits opset ≥ 18 (down-conversion to 17 fails on these
    models), so opsets below 18 use the TorchScript exporter, which writes them natively.
    """
    common = dict(input_names=["image"], output_names=["probabilities"], opset_version=opset)
    reason = f"opset {opset} < 18"
    if opset >= 18:
        sink = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (example,), str(path), dynamo=True, external_data=False,
                                  dynamic_shapes={"image": {0: torch.export.Dim("batch")}}, **common)
            return "dynamo (torch.export)"
        except Exception as exc:  # fall back to the TorchScript exporter
            reason = "dynamo exporter failed: " + (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), dynamo=False,
                          dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}}, **common)
    return f"torchscript ({reason})"


def metadata(ck: Checkpoint, exporter: str) -> dict[str, str]:
    cfg = ck.config
    meta = {
        "btc_model": cfg.model, "task": ck.task, "classes": json.dumps(ck.classes),
        "image_size": str(cfg.image_size), "resize_size": str(cfg.resize_size),
        "interpolation": cfg.interpolation, "normalize": cfg.normalize,
        "input": "image: float32 (N, 3, image_size, image_size), preprocessed by the caller "
                 "(grayscale → resize to resize_size → centre crop to image_size → /255 → normalize; "
                 "gray channel repeated 3×)",
        "output": "probabilities: float32 (N, classes), softmax included",
        "exporter": exporter, "epochs_trained": str(ck.epochs_trained),
    }
    if cfg.normalize == "imagenet":
        meta.update(mean=json.dumps(IMAGENET_MEAN), std=json.dumps(IMAGENET_STD))
    elif cfg.normalize == "standardize":
        meta["normalize_note"] = "per image: (x - mean) / max(std, 1/sqrt(#pixels)) over all 3 channels"
    return meta


def parity(path: Path, module: nn.Module, size: int, seed: int = 0) -> float | None:
    """Max |ORT − PyTorch| of the probabilities on random inputs; None without ONNX Runtime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    x = torch.randn(PARITY_INPUTS, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = module(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"image": x.numpy()})[0]
    return float(abs(got - expected).max())


def _written_by_btc(path: Path) -> bool:
    """An ONNX file btc exported (its metadata names the btc model)."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 — not an ONNX file (or not readable): not btc's
        return False
    return any(p.key == "btc_model" for p in model.metadata_props)


def export_onnx(checkpoint: Path, onnx_path: Path, opset: int = 17) -> dict[str, Any]:
    """Export `checkpoint` to `onnx_path` (atomic); returns what was done."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)
    except ImportError as exc:
        raise BtcError(f"btc export needs the optional 'onnx' extra ({exc.name} is missing): "
                       "pip install 'btc[onnx]'") from None

    refuse_foreign_file(onnx_path, "--onnx", _written_by_btc)
    ck = load_checkpoint(checkpoint)
    module = WithSoftmax(ck.model).eval()
    size = ck.config.image_size
    example = torch.zeros(2, 3, size, size)  # batch 2: a batch of 1 would be specialised
    result: dict[str, Any] = {}

    def write(tmp: Path) -> None:
        result["exporter"] = _export(module, example, tmp, opset)
        model = onnx.load(str(tmp))
        for key, value in metadata(ck, result["exporter"]).items():
            prop = model.metadata_props.add()
            prop.key, prop.value = key, value
        result["opset"] = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
        onnx.save(model, str(tmp))
        result["max_abs_diff"] = parity(tmp, module, size)

    try:
        atomic_write(onnx_path, write)
    except BtcError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BtcError(f"ONNX export of '{ck.config.model}' failed: {first}") from None
    result.update(path=onnx_path, model=ck.config.model, image_size=size, classes=ck.classes)
    return result
