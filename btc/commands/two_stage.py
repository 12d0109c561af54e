"""`btc two-stage`: chain a presence run and a second-stage run on the same test images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from btc.commands.results import metrics_table, one_line
from btc.commands.train import final_line, show
from btc.engine.two_stage import two_stage
from btc.report.plots import write_missing_plots


def run(stage1: Path, stage2: Path, *, out_dir: Path, device: str, batch_size: int,
        quiet: bool) -> dict[str, Any]:
    result = two_stage(stage1, stage2, out_dir, device=device, batch_size=batch_size)
    folder = result["folder"]
    if result["kind"] == "cv":
        for k in result["folds"]:
            write_missing_plots(folder.fold(k))
    write_missing_plots(folder)
    s1, s2 = result["stage1"], result["stage2"]
    title = (f"two-stage {s1['model']} ({s1['task']}) → {s2['model']} ({s2['task']}), "
             f"routing '{result['route']}': {result['images']} images, {result['routed_to_stage2']} "
             f"routed to stage 2, {result['excluded']} excluded")
    if result["kind"] == "cv":
        rows = [(f"fold {k}", f["metrics"]) for k, f in zip(result["folds"], result["fold_results"], strict=True)]
        rows += [("mean", result["mean"]), ("std", result["std"])]
        line = one_line(result["mean"], result["std"])
    else:
        rows = [(str(out_dir), result["metrics"])]
        line = one_line(result["metrics"])
    show(metrics_table(title, rows), quiet=quiet)
    final_line(f"two-stage folder: {out_dir} — {line}")
    return result
