"""What a report holds, independent of its format: tables of cells, comparisons, provenance.

`btc/report/build.py` fills a `Report` from run folders (the paper tables come from
`btc/report/tables.py`); `btc/report/render.py` turns it into Markdown, LaTeX, CSV or HTML.
Values are in display units: rates in percent, kappa / AUC / loss as plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from btc.report.runs import Run
from btc.report.stats import McNemar


@dataclass
class Cell:
    """One value cell: btc's value next to the published one (display units)."""

    value: float | None = None          # btc
    std: float | None = None            # over CV folds
    ci: tuple[float, float] | None = None
    paper: float | None = None
    kind: str = "percent"               # percent (2 decimals), loss (5) or number (4: kappa, AUC)
    status: str = ""                    # why btc's value is absent: "no run", "no class …"
    compare: bool = True                # a paper table (shows the paper's value and Δ)
    span: bool = False                  # belongs to the row group (first row of a model), not one row

    @property
    def diff(self) -> float | None:
        if self.value is None or self.paper is None:
            return None
        return self.value - self.paper

    @property
    def empty(self) -> bool:
        return self.value is None and self.paper is None and not self.status


@dataclass
class Row:
    labels: list[str]
    cells: list[Cell]
    run: str = ""                       # the run that filled the row


@dataclass
class Table:
    key: str
    title: str
    source: str
    label_columns: list[str]
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    a: str
    b: str
    result: McNemar | None              # None: not paired
    reason: str = ""


@dataclass
class Report:
    title: str
    paper: str | None                   # "001" … "004", or None for the generic comparison
    runs: list[Run]
    tables: list[Table]
    comparisons: list[Comparison]
    provenance: list[dict[str, str]]    # one row per run: field → text (btc/report/provenance.py)
    notes: list[str] = field(default_factory=list)
