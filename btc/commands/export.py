"""`btc export`: a checkpoint as ONNX, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from btc.commands.ui import out
from btc.engine.export import PARITY_INPUTS, TOLERANCE, export_onnx
from btc.errors import BtcError


def run(checkpoint: Path, onnx_path: Path, opset: int = 17) -> dict[str, Any]:
    result = export_onnx(Path(checkpoint), Path(onnx_path), opset)
    out.print(f"wrote {result['path']}: {result['model']}, input image (N, 3, {result['image_size']}, "
              f"{result['image_size']}) preprocessed, output probabilities (N, {len(result['classes'])}); "
              f"opset {result['opset']}, exporter {result['exporter']}")
    diff = result["max_abs_diff"]
    if diff is None:
        out.print("parity: not checked (ONNX Runtime is not installed; pip install 'btc[onnx]')")
    elif diff <= TOLERANCE:
        out.print(f"parity: ONNX Runtime matches PyTorch on {PARITY_INPUTS} random inputs, "
                  f"max abs diff {diff:.2e} (≤ {TOLERANCE:g})")
    else:
        raise BtcError(f"parity: ONNX Runtime differs from PyTorch by {diff:.2e} (> {TOLERANCE:g}) "
                       f"on {PARITY_INPUTS} random inputs; {result['path']} was written but is not faithful")
    return result
