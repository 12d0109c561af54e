"""`btc benchmark`: measure the models (`btc.bench.benchmark`) and show the table or the JSON.

stdout holds the table, or with `--json` the benchmark JSON and nothing else; `--out FILE`
writes the same JSON atomically; progress and the "wrote FILE" note go to stderr.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from btc.bench.benchmark import BenchmarkReport, Settings, run_benchmark
from btc.commands.ui import RichProgress, note, out, print_json, progress_for
from btc.io import atomic_write_json

TABLE_WIDTH = 150  # piped or captured output: do not squeeze the table into 80 columns


def results_table(report: BenchmarkReport) -> Table:
    """One row per model: size, FLOPs, images/s, achieved TFLOP/s, latency, memory, format."""
    s = report.settings
    cuda = s.device.type == "cuda"
    precision = report.results[0].dtype if report.results else "float32"
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False,
                  title=f"{report.device} · torch {report.header['versions']['torch']} · batch {s.batch_size} · {precision}",
                  caption="GFLOPs per image at px; img/s (inf: inference, trn: training): median of "
                          f"{s.iters} iterations after {s.warmup} warm-up; TF/s: achieved TFLOP/s = "
                          "FLOPs × img/s (× 3 for training); lat: batch 1; mem: "
                          + ("peak CUDA allocated" if cuda else "process peak RSS")
                          + " (MB); cl: channels-last")
    table.add_column("model", no_wrap=True)
    for column in ("px", "Mparams", "MiB", "GFLOPs", "inf img/s", "trn img/s", "lat ms",
                   "inf TF/s", "trn TF/s", "mem MB", "cl"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in report.results:
        table.add_row(r.model, str(r.image_size), f"{r.params / 1e6:.2f}", f"{r.size_mib:.1f}",
                      f"{r.flops / 1e9:.2f}", f"{r.infer_img_s:.1f}", f"{r.train_img_s:.1f}",
                      f"{r.latency_ms:.1f}", f"{r.infer_tflops:.3f}", f"{r.train_tflops:.3f}",
                      f"{r.peak_mem_mb:.0f}", "yes" if r.channels_last else "no")
    return table


def run(models: str = "all", *, device: str = "auto", batch_size: int = 32, image_size: int | None = None,
        amp: bool = True, channels_last: str = "auto", compile: bool = False, iters: int = 10,
        warmup: int = 3, as_json: bool = False, out_file: Path | None = None,
        quiet: bool = False) -> BenchmarkReport:
    """Measure, then print the table (or the JSON with `as_json`); write `out_file` when given."""
    settings = Settings(device=device, batch_size=batch_size, image_size=image_size, amp=amp,
                        channels_last=channels_last, compile=compile, iters=iters, warmup=warmup)
    progress = progress_for(quiet)
    with progress if isinstance(progress, RichProgress) else nullcontext():
        report = run_benchmark(models, settings, progress=progress)
    result = report.to_dict()
    if out_file is not None:
        atomic_write_json(out_file, result)
        note(f"wrote {out_file}")
    if as_json:
        print_json(result)
    else:
        screen = out if out.is_terminal else Console(highlight=False, width=max(out.width, TABLE_WIDTH))
        screen.print(results_table(report))
    return report
