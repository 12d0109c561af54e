"""`btc report`: render the report of run / CV folders (`btc.report.build`) to stdout or a file.

Without `--out` the rendered report (Markdown, LaTeX, CSV or HTML) is the only thing on stdout;
with `--out FILE` it is written atomically (Markdown links to the plots are then relative to
FILE) and one line on stderr says where.
"""

from __future__ import annotations

import sys
from pathlib import Path

from btc.commands.ui import note
from btc.io import atomic_write_text, refuse_foreign_file
from btc.report.build import build_report
from btc.report.render import PLOTTED_FORMATS, normalize_format, render
from btc.report.tables import normalize_paper


def _written_by_btc(path: Path) -> bool:
    """A report btc wrote: its title (md, html, tex) or its CSV header says so."""
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return "btc report" in head or head.startswith("table,row,column,btc")


def run(runs: list[Path], *, paper: str | None = None, fmt: str = "md", out: Path | None = None) -> str:
    """Build, render and show (or write) the report; returns its text."""
    fmt = normalize_format(fmt)
    paper = normalize_paper(paper)
    if out is not None:
        refuse_foreign_file(out, "--out", _written_by_btc)
    report = build_report([Path(p) for p in runs], paper, plots=fmt in PLOTTED_FORMATS)
    text = render(report, fmt, out=out)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write_text(out, text)
        note(f"wrote {out}")
    return text
