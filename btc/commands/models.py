"""`btc models`: the model registry with parameters, sizes, MACs and FLOPs.

The figures come from `btc.models.summary` (see its docstring for what each one counts). The
table shows both compute columns, labelled: `GMACs` (multiply-adds, the unit torchvision's
documentation calls "GFLOPS") and `GFLOPs (2×MACs)`. `--json` prints the rows as a JSON list on
stdout and nothing else, with every field of `ModelSummary` (`name`, `paper`, `params`,
`size_mib`, `state_mib`, `macs`, `flops`, …).
"""

from __future__ import annotations

from dataclasses import asdict

from rich import box
from rich.table import Table

from btc.commands.ui import out, print_json
from btc.models.summary import NUM_CLASSES, ModelSummary, summarize_models


def table(rows: list[ModelSummary]) -> Table:
    """The rich table of `btc models`."""
    result = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=0, caption_justify="left",
                   caption=f"params, trainable: millions; MiB: float32 parameters; state: whole "
                           f"state dict (MiB); {NUM_CLASSES}-class heads\n"
                           "per image at the paper's input side (px): GMACs = 10^9 multiply-adds "
                           "(torchvision's 'GFLOPS'), GFLOPs = 2 × GMACs")
    result.add_column("model", no_wrap=True)
    for column in ("paper", "px", "params", "trainable", "MiB", "state", "GMACs",
                   "GFLOPs\n(2×MACs)"):
        result.add_column(column, justify="right", no_wrap=True)
    for r in rows:
        result.add_row(r.name, r.paper or "-", str(r.input_size), f"{r.params / 1e6:.2f}",
                       f"{r.trainable_params / 1e6:.3f}", f"{r.size_mib:.2f}",
                       f"{r.state_mib:.2f}", f"{r.macs / 1e9:.2f}", f"{r.flops / 1e9:.2f}")
    return result


def run(names: list[str] | None = None, as_json: bool = False) -> None:
    """Summarise `names` (default: every registered model) and print a table, or JSON."""
    selected = [n.strip() for n in names if n.strip()] if names else None
    rows = summarize_models(selected)
    if as_json:
        print_json([asdict(r) for r in rows])
    else:
        out.print(table(rows))
