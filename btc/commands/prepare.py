"""`btc prepare kaggle|figshare|folder|phantom`: write a prepared dataset and say what was done.

The source modules (`btc.data.sources.*`) do the work and return a `PrepareSummary`; skipped and
flagged inputs reach stderr as notes while the bars are shown. This module prints the result on
stdout: `wrote N images (M reused from a previous run) to OUT in S s; K skipped, F flagged`, then
the audit's headline (`audit: …`). `--quiet` hides the bars, the notes and the audit line, and
keeps the one-line result.
"""

from __future__ import annotations

import importlib
from contextlib import nullcontext
from typing import Any

from rich.markup import escape

from btc.commands.ui import RichProgress, out, progress_for
from btc.data.prepare.finishing import PrepareSummary


def result_line(summary: PrepareSummary) -> str:
    """The one-line result of a prepare (rich markup, user text escaped)."""
    where = escape(str(summary.out))
    if summary.source == "phantom":  # generated: nothing skipped, flagged, reused or audited
        return f"wrote {summary.images} images of {len(summary.classes)} classes to {where}"
    reused = f" ({summary.reused} reused from a previous run)" if summary.reused else ""
    return (f"[green]wrote[/green] {summary.images} images{reused} to {where} in {summary.seconds:.1f} s; "
            f"{len(summary.skipped)} skipped, {len(summary.flagged)} flagged")


def run(source: str, *, quiet: bool = False, **options: Any) -> PrepareSummary:
    """`prepare_<source>(**options)` of `btc.data.sources.<source>`, with progress, then the result."""
    prepare = getattr(importlib.import_module(f"btc.data.sources.{source}"), f"prepare_{source}")
    progress = progress_for(quiet)
    with progress if isinstance(progress, RichProgress) else nullcontext():
        summary = prepare(**options, progress=progress)
    out.print(result_line(summary))
    if summary.audit_headline and not quiet:
        out.print(f"audit: {escape(summary.audit_headline)}")
    return summary
