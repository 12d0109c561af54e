"""What a report holds, independent of its format: tables of cells, comparisons, provenance.

`btc/report/build.py` fills a `Report` from run folders (the paper tables come from
`btc/report/tables.py`); `btc/report/render.py` turns it into Markdown, LaTeX, CSV or HTML.
Values are in display units: rates in percent, kappa / AUC / loss as plain numbers.
Every row of a paper table that a run filled carries that run's `Conformity` with the paper's
protocol (from its provenance, DESIGN.md Provenance): a row that did not follow it, or whose
provenance is unknown, gets a numbered footnote of its table (`Table.footnotes`), so no Δ reads
as a reproduction when it is not one (issue 14). A row no run filled keeps the published values
(CSV lists them); the human formats collapse such rows into one "published only" line per table
(`Table.published_only`) so the runs given are not lost among them (issue 18).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from btc.report.runs import Run
from btc.report.stats import McNemar

NO_RUN = "no run"  # the status of a cell whose row no run filled


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


UNKNOWN_PROVENANCE = "provenance unknown (written by btc < 0.2)"


@dataclass(frozen=True)
class Conformity:
    """Whether the run behind a row followed its paper's protocol."""

    deviations: tuple[str, ...] | None  # (): the paper's protocol; None: provenance unknown

    @property
    def follows(self) -> bool:
        return self.deviations == ()

    @property
    def label(self) -> str:
        """A short verdict for a table column."""
        if self.deviations is None:
            return "provenance unknown"
        return "paper's protocol" if self.follows else "not the paper's protocol"

    @property
    def note(self) -> str:
        """The footnote of a row that is not known to follow the protocol ("" when it does)."""
        if self.deviations is None:
            return f"{UNKNOWN_PROVENANCE}: not known to follow the paper's protocol"
        return "" if self.follows else "not the paper's protocol: " + "; ".join(self.deviations)


@dataclass
class Row:
    labels: list[str]
    cells: list[Cell]
    run: str = ""                       # the run that filled the row
    conformity: Conformity | None = None    # None: no run filled the row
    mark: int = 0                       # the number of its table's footnote (0: none)
    subject: str = ""                   # what the row is about, for "published only" (default: first label)

    @property
    def published_only(self) -> bool:
        """No run filled the row: it holds only the paper's values."""
        cells = [c for c in self.cells if not c.empty]
        return self.conformity is None and bool(cells) and all(c.status == NO_RUN for c in cells)


@dataclass
class Table:
    key: str
    title: str
    source: str
    label_columns: list[str]
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)   # footnote k is footnotes[k - 1]

    @property
    def compared(self) -> bool:
        """Whether the table sets btc's values against published ones (a paper table)."""
        return any(c.compare for row in self.rows for c in row.cells)

    @property
    def filled_rows(self) -> list[Row]:
        """The rows a run filled (or that say why a run's value is missing): those shown."""
        return [row for row in self.rows if not row.published_only]

    @property
    def published_only(self) -> list[str]:
        """The subjects of the rows no run filled, each once, in table order."""
        return list(dict.fromkeys(row.subject or row.labels[0] for row in self.rows if row.published_only))


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
