"""CPU inference throughput: eager PyTorch vs ONNX Runtime, for resnet18 and dsconv_cbam.

Each model (random weights, 4 classes, softmax included) is exported as `btc export` does
(`btc.export.WithSoftmax`, TorchScript exporter at opset 17, dynamic batch) and timed at its
paper input size, batch 1 and 8: `--warmup` untimed runs, then the median of `--iters` timed
runs (`btc.engine.timing.time_fn`), reported as images/s. Both runtimes get the same number of
threads (`--threads`). Writes JSON (the shared result header: device, versions, command, date)
to `benchmarks/results/onnx_vs_eager-cpu.json` or `--out FILE`.

    python benchmarks/onnx_vs_eager.py --iters 10 --warmup 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from btc.bench.provenance import result_header  # noqa: E402
from btc.engine.export import WithSoftmax, _export  # noqa: E402
from btc.engine.timing import time_fn  # noqa: E402
from btc.io import atomic_write_json  # noqa: E402
from btc.models import create_model, get_spec  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="resnet18,dsconv_cbam")
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "onnx_vs_eager-cpu.json")
    args = ap.parse_args(argv)

    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            size = get_spec(name).input_size
            torch.manual_seed(0)
            module = WithSoftmax(create_model(name, 4, input_size=size)).eval()
            path = Path(tmp) / f"{name}.onnx"
            exporter = _export(module, torch.zeros(2, 3, size, size), path, 17)
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for batch in (int(b) for b in args.batch_sizes.split(",")):
                x = torch.randn(batch, 3, size, size)
                xn = x.numpy()
                with torch.inference_mode():
                    eager = time_fn(lambda m=module, x=x: m(x), args.iters, args.warmup)
                    diff = float(abs(session.run(None, {"image": xn})[0] - module(x).numpy()).max())
                onnx_s = time_fn(lambda s=session, xn=xn: s.run(None, {"image": xn}), args.iters, args.warmup)
                row = {"model": name, "input_size": size, "batch_size": batch,
                       "eager_images_per_s": batch / eager, "ort_images_per_s": batch / onnx_s,
                       "speedup": eager / onnx_s, "max_abs_diff": diff, "exporter": exporter}
                rows.append(row)
                print(f"{name:12s} {size}px batch {batch}: eager {row['eager_images_per_s']:8.1f} img/s  "
                      f"ORT {row['ort_images_per_s']:8.1f} img/s  ×{row['speedup']:.2f}  (max diff {diff:.1e})")
    result = result_header("onnx_vs_eager", torch.device("cpu"))
    result["versions"]["onnxruntime"] = ort.__version__
    result.update({
        "threads": args.threads, "iters": args.iters, "warmup": args.warmup, "statistic": "median",
        "note": "random weights (throughput does not depend on them); machine shared with other jobs",
        "results": rows,
    })
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
