"""`btc weights list | fetch MODEL… | import MODEL FILE`: ImageNet weights in the torchvision and
timm caches (issue 14; sources and checks in `btc.models.weights`).

`list` shows every model's weights source and whether its file is cached (`--json`: a list of
`{model, source, cache, file, cached}`); `fetch` downloads ahead of time, for clusters whose
compute nodes have no internet; `import` copies a local file into the right cache under the name
torchvision / timm look for, after checking its tensors against the source network.
"""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.table import Table

from btc.commands.ui import out, print_json, progress_for
from btc.errors import BtcError
from btc.models import list_models
from btc.models.weights import (
    WeightsRecord,
    fetch_weights,
    import_weights,
    pretrained_source,
    weights_table,
)


def run_list(as_json: bool = False) -> None:
    """Print each model's weights source and whether it is cached."""
    rows = weights_table()
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0),
                  caption="file: in the torch hub cache (torchvision) or the Hugging Face hub "
                          "cache (timm); --json gives full paths", caption_justify="left")
    table.add_column("model", no_wrap=True)
    table.add_column("weights", overflow="fold")
    table.add_column("cached", no_wrap=True)
    table.add_column("file", overflow="fold")
    for r in rows:
        if r.source is None:
            table.add_row(r.model, "from scratch", "", "")
        else:
            table.add_row(r.model, r.source, "yes" if r.cached else "no", Path(r.file or "").name)
    out.print(table)


def _line(model: str, record: WeightsRecord) -> str:
    return f"{model}: {record.summary()} at {record.file}"


def run_fetch(models: list[str], *, every: bool = False, quiet: bool = False,
              as_json: bool = False) -> None:
    """Download the weights of `models` (or of every model with a source) into their caches."""
    if every:
        models = [m for m in list_models() if pretrained_source(m) is not None]
    if not models:
        raise BtcError("name the models to fetch (btc weights list shows them), or pass --all")
    for m in models:
        pretrained_source(m)  # unknown names fail before any download
    records: dict[str, WeightsRecord] = {}
    with progress_for(quiet) as progress:
        for m in models:
            records[m] = fetch_weights(m, progress=progress)
    if as_json:
        print_json({m: r.to_dict() for m, r in records.items()})
    else:
        for m, r in records.items():
            out.print(_line(m, r))


def run_import(model: str, file: Path, *, as_json: bool = False) -> None:
    """Copy `file` into the cache where `model`'s weights are looked for."""
    record = import_weights(model, file)
    if as_json:
        print_json(record.to_dict())
    else:
        out.print(f"imported {_line(model, record)}")
