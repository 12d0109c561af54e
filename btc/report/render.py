"""Render a `Report` (btc/report/model.py) as Markdown, LaTeX (booktabs), CSV (long) or HTML.

Markdown links the run folders' PNG plots (relative to the output file when there is one); HTML is
self-contained, with the plots embedded as base64 PNGs (its provenance table has one column per
run, and a table wider than the page scrolls sideways in its own box); CSV has one line per value cell:
`table, row, column, btc, btc_std, ci_low, ci_high, paper, diff, status, run, protocol` in display
units. In a paper table every row a run filled says in a Protocol column whether that run followed
the paper's protocol; the numbers of a run that did not (or whose provenance is unknown) carry a
numbered footnote mark, its deviations listed under the table (CSV: in the `protocol` column).

Markdown, LaTeX and HTML show only the rows a run filled; the rows no run filled become one
line under their table, "Published only (no run given): …" (CSV keeps them, with the published
values and status "no run"). Every format writes rates as percentages with two decimals, as the
papers print them (metrics.json and the terminal keep fractions), and one confidence-interval
notation, `95 % CI [a, b]`; the header says both and how a CV's mean ± std differs from its CI.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
from pathlib import Path

from btc import __version__
from btc.errors import BtcError
from btc.report.model import Cell, Report, Row, Table
from btc.runfolder import CONFUSION_PNG, CURVES_PNG, METRICS, ROC_PNG

PLOT_TITLES = {CONFUSION_PNG: "confusion matrix", CURVES_PNG: "learning curves", ROC_PNG: "ROC curves"}
MINUS = "\u2212"
ALPHA = 0.05

UNITS = ("Numbers: rates (accuracy, precision, recall, specificity, F1) are percentages with two decimals, as "
         f"the papers print them ({METRICS} and the terminal keep fractions: 0.9741 there is 97.41 here); "
         "kappa and AUC (4 decimals) and loss (5) are plain numbers.")
CELL_FORMAT = ("Cell format: btc's value [± std over CV folds][, 95 % CI [a, b] of the accuracy] (paper: the "
               "published value, Δ: btc − paper, in percentage points for rates). Rows no run was given for are "
               "not shown: each table names them in one line, \"Published only\". \"–\": not published / not "
               "available. Protocol: whether the run followed the paper's protocol (its provenance); a value "
               "marked with a footnote number is not a reproduction of the paper: the footnote lists how the run "
               "departs from the paper's protocol.")
GENERIC_FORMAT = "Cell format: value [± std over CV folds][, 95 % CI [a, b] of the accuracy]."
CI_TEXT = ("95 % CI [a, b]: percentile bootstrap of the accuracy over the test images (2000 resamples, seed 0). "
           "A CV folder shows two different estimates: mean ± std is the mean of its K fold accuracies and their "
           "spread from fold to fold, while its 95 % CI is that of the accuracy of all its out-of-fold predictions "
           "pooled (the uncertainty from the finite number of test images), so the fold mean may sit near or "
           "beyond an edge of the CI.")
MCNEMAR_TEXT = ("Runs tested on the same images with the same labels are compared with McNemar's exact test; "
                "runs with different classes (a 4-class chain and a 2-class presence run) are not.")
PUBLISHED_ONLY = "Published only (no run given)"

PROTOCOL_COLUMN = "Protocol"
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def superscript(number: int) -> str:
    """A footnote mark in Unicode superscript digits ("" for 0: no footnote)."""
    return str(number).translate(_SUPERSCRIPT) if number else ""


def protocol_label(row: Row) -> str:
    """A paper table's Protocol column: the row's verdict ("" for a row no run filled)."""
    return row.conformity.label if row.conformity is not None else ""


def protocol_csv(row: Row) -> str:
    """The protocol column of CSV: "paper's protocol" or the footnote in full."""
    if row.conformity is None:
        return ""
    return row.conformity.note or row.conformity.label


def _marked(cell: Cell, mark: int) -> int:
    """The footnote mark a cell's number carries (only a value compared with a published one)."""
    return mark if cell.compare and cell.value is not None else 0


# --------------------------------------------------------------------------- numbers


def _decimals(kind: str) -> int:
    """percent: 2 decimals; loss: 5 (paper 004 prints 0.03446); other plain numbers (kappa, AUC): 4."""
    return {"percent": 2, "loss": 5}.get(kind, 4)


def fmt_value(value: float | None, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{_decimals(kind)}f}"


def fmt_diff(diff: float, kind: str, minus: str = MINUS) -> str:
    d = _decimals(kind)
    rounded = round(diff, d)
    if rounded == 0:
        return f"{0:.{d}f}"
    return ("+" if rounded > 0 else minus) + f"{abs(rounded):.{d}f}"


def ci_text(low: float, high: float, kind: str = "percent") -> str:
    """The one notation of a confidence interval: `95 % CI [a, b]`."""
    return f"95 % CI [{fmt_value(low, kind)}, {fmt_value(high, kind)}]"


def btc_text(cell: Cell, pm: str = "±", with_ci: bool = True) -> str:
    """btc's side of a cell: value [± std][, 95 % CI [a, b]], or why it is absent."""
    if cell.value is None:
        return cell.status or ""
    text = fmt_value(cell.value, cell.kind)
    if cell.std is not None:
        text += f" {pm} {fmt_value(cell.std, cell.kind)}"
    if cell.ci is not None and with_ci:
        text += ", " + ci_text(*cell.ci, cell.kind)
    return text


def paper_text(cell: Cell, minus: str = MINUS, with_word: bool = True) -> str:
    """The paper's side of a cell: (paper X, Δ ±Y); empty outside paper tables."""
    if not cell.compare or cell.empty:
        return ""
    word = "paper " if with_word else ""
    published = "–" if cell.paper is None else fmt_value(cell.paper, cell.kind)
    if cell.diff is None:
        return f"({word}{published})"
    return f"({word}{published}, Δ {fmt_diff(cell.diff, cell.kind, minus)})"


def cell_text(cell: Cell, mark: int = 0) -> str:
    """Plain one-line text of a cell (Markdown): `97.41, 95 % CI [96.40, 98.30] ¹ (paper 97.41, Δ 0.00)`."""
    if cell.empty:
        return ""
    return " ".join(t for t in (btc_text(cell), superscript(_marked(cell, mark)), paper_text(cell)) if t)


def _header(table: Table) -> list[str]:
    return table.label_columns + table.columns + ([PROTOCOL_COLUMN] if table.compared else [])


def _display_labels(rows: list[Row]) -> list[list[str]]:
    """Row labels with repeats of the row above blanked (a model's group of class rows)."""
    out, previous = [], None
    for row in rows:
        labels = list(row.labels)
        if previous is not None:
            for j in range(len(labels)):
                if row.labels[: j + 1] == previous[: j + 1] and labels[j]:
                    labels[j] = ""
        out.append(labels)
        previous = row.labels
    return out


def _plot_link(path: Path, out: Path | None) -> str:
    if out is None:
        return path.as_posix()
    try:
        return Path(os.path.relpath(path.resolve(), Path(out).resolve().parent)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.resolve().as_posix()


def _comparison_rows(report: Report, minus: str = MINUS) -> list[list[str]]:
    rows = []
    for c in report.comparisons:
        if c.result is None:
            rows.append([c.a, c.b, "–", "–", "–", c.reason or "not paired", "–"])
            continue
        r = c.result
        p = f"{r.p_value:.4g}"
        verdict = "yes" if r.significant(ALPHA) else "no"
        rows.append([c.a, c.b, str(r.n), str(r.b), str(r.c), p, verdict])
    return rows


COMPARISON_HEADER = ["Run A", "Run B", "Test images", "A right, B wrong", "A wrong, B right", "p (exact)",
                     f"Significant (α = {ALPHA:g})"]


def _intro(report: Report) -> list[str]:
    return [f"Written by btc {__version__} from {len(report.runs)} run folder(s).", UNITS,
            CELL_FORMAT if report.paper else GENERIC_FORMAT, CI_TEXT, MCNEMAR_TEXT]


def _shown(table: Table) -> list[tuple[list[str], Row]]:
    """(display labels, row) of the rows a human format shows: those a run filled."""
    rows = table.filled_rows
    return list(zip(_display_labels(rows), rows, strict=True))


def published_only_text(table: Table) -> str:
    """The line that stands for the rows no run filled ("" when there are none)."""
    return f"{PUBLISHED_ONLY}: {', '.join(table.published_only)}." if table.published_only else ""


# --------------------------------------------------------------------------- Markdown


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]], n_left: int, text_last: bool = False) -> list[str]:
    """The first `n_left` columns left-aligned, the numbers right-aligned (`text_last`: the last
    column is text, left-aligned: a paper table's Protocol)."""
    left = set(range(n_left)) | ({len(header) - 1} if text_last else set())
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |",
             "|" + "|".join(":---" if i in left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return lines


def render_md(report: Report, out: Path | None = None) -> str:
    lines = [f"# {report.title}", ""]
    lines += [f"_{line}_" for line in _intro(report)] + [""]
    for table in report.tables:
        lines += [f"## {table.title}", ""]
        if table.source:
            lines += [f"Published: {table.source}.", ""]
        rows = [labels + [cell_text(c, row.mark) for c in row.cells]
                + ([" ".join(t for t in (protocol_label(row), superscript(row.mark)) if t)] if table.compared else [])
                for labels, row in _shown(table)]
        if rows:
            lines += _md_table(_header(table), rows, len(table.label_columns), text_last=table.compared) + [""]
        if table.published_only:
            lines += [_md_escape(published_only_text(table)), ""]
        for k, note in enumerate(table.footnotes, 1):
            lines += [f"{superscript(k)} {_md_escape(note)}", ""]
        lines += [f"- {n}" for n in table.notes] + ([""] if table.notes else [])
    lines += ["## Runs: data, protocol, device", ""]
    prov = report.provenance
    lines += _md_table(list(prov[0]), [list(p.values()) for p in prov], len(prov[0])) + [""]
    if report.comparisons:
        lines += ["## Paired comparisons (McNemar)", ""]
        lines += _md_table(COMPARISON_HEADER, _comparison_rows(report), 2) + [""]
    plotted = [r for r in report.runs if r.plots]
    if plotted:
        lines += ["## Plots", ""]
        for run in plotted:
            links = [f"![{run.name}: {PLOT_TITLES.get(name, name)}]({_plot_link(path, out)})"
                     for name, path in run.plots.items()]
            lines += [f"### {run.name}", "", " ".join(links), ""]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- LaTeX


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "±": r"$\pm$", "Δ": r"$\Delta$", "α": r"$\alpha$", MINUS: "$-$", "–": "--", "≥": r"$\geq$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))


def _tex_mark(mark: int) -> str:
    return rf"\textsuperscript{{{mark}}}" if mark else ""


def _tex_cell(cell: Cell, mark: int = 0) -> str:
    if cell.empty:
        return ""
    text = tex_escape(btc_text(cell)) + _tex_mark(_marked(cell, mark))
    if cell.compare:
        text = " ".join(p for p in (text, tex_escape(paper_text(cell, minus=MINUS, with_word=False))) if p)
    return text


def _tex_tabular(header: list[str], rows: list[list[str]], n_left: int, escaped: bool = False,
                 text_last: bool = False) -> list[str]:
    """A booktabs tabular: the first `n_left` columns left-aligned, the others right-aligned
    (`text_last`: but the last, a paper table's Protocol)."""
    spec = "l" * n_left + "r" * (len(header) - n_left - text_last) + "l" * text_last
    esc = (lambda x: x) if escaped else tex_escape
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(tex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(esc(c) for c in row) + r" \\" for row in rows]
    return lines + [r"\bottomrule", r"\end{tabular}"]


def render_tex(report: Report, out: Path | None = None) -> str:
    lines = ["% " + report.title, "% needs \\usepackage{booktabs}"]
    lines += ["% " + line for line in _intro(report)] + [""]
    for table in report.tables:
        caption = table.title + (f" (published: {table.source})" if table.source else "")
        rows = [[tex_escape(x) for x in labels] + [_tex_cell(c, row.mark) for c in row.cells]
                + ([tex_escape(protocol_label(row)) + _tex_mark(row.mark)] if table.compared else [])
                for labels, row in _shown(table)]
        lines += [r"\begin{table}[ht]", r"\centering", r"\footnotesize", rf"\caption{{{tex_escape(caption)}}}",
                  rf"\label{{tab:btc-{table.key}}}"]
        if rows:
            lines += _tex_tabular(_header(table), rows, len(table.label_columns), escaped=True,
                                  text_last=table.compared)
        footnotes = [_tex_mark(k) + tex_escape(f" {n}") for k, n in enumerate(table.footnotes, 1)]
        below = [tex_escape(published_only_text(table))] if table.published_only else []
        below += [tex_escape(" ".join(table.notes))] if table.notes else []
        if footnotes or below:
            text = r" \\ ".join(footnotes + below)
            lines += [r"\par\smallskip", r"\parbox{\linewidth}{\scriptsize " + text + "}"]
        lines += [r"\end{table}", ""]
    prov = report.provenance
    keys = list(prov[0])
    lines += [r"\begin{table}[ht]", r"\centering", r"\scriptsize", r"\caption{Runs: data, protocol, device}"]
    lines += _tex_tabular(["field"] + [p["run"] for p in prov], [[k] + [p[k] for p in prov] for k in keys[1:]],
                          len(prov) + 1)
    lines += [r"\end{table}", ""]
    if report.comparisons:
        lines += [r"\begin{table}[ht]", r"\centering", r"\scriptsize", r"\caption{Paired comparisons (McNemar)}"]
        lines += _tex_tabular(COMPARISON_HEADER, _comparison_rows(report), 2) + [r"\end{table}", ""]
    for note in report.notes:
        lines.append("% note: " + note)
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- CSV


CSV_HEADER = ["table", "row", "column", "btc", "btc_std", "ci_low", "ci_high", "paper", "diff", "status", "run",
              "protocol"]


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6f}".rstrip("0").rstrip(".") if value != 0 else "0"


def render_csv(report: Report, out: Path | None = None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for table in report.tables:
        keep = [i for i, name in enumerate(table.label_columns) if name != "Run"]
        for row in table.rows:
            labels = [row.labels[i] for i in keep if row.labels[i]]
            for name, cell in zip(table.columns, row.cells, strict=True):
                if cell.empty:
                    continue
                label = labels[0] if cell.span else " / ".join(labels)
                writer.writerow([table.key, label, name, _num(cell.value), _num(cell.std),
                                 _num(cell.ci[0]) if cell.ci else "", _num(cell.ci[1]) if cell.ci else "",
                                 _num(cell.paper), _num(cell.diff), cell.status, row.run,
                                 protocol_csv(row) if table.compared else ""])
    for row in report.provenance:
        for key, value in row.items():
            if key != "run":
                writer.writerow(["provenance", row["run"], key, value, "", "", "", "", "", "", row["run"], ""])
    for c in report.comparisons:
        r = c.result
        writer.writerow(["mcnemar", f"{c.a} vs {c.b}", "p_value", _num(r.p_value) if r else "", "", "", "", "", "",
                         "" if r else (c.reason or "not paired"), "", ""])
    return buffer.getvalue()


# --------------------------------------------------------------------------- HTML


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; vertical-align: top; }
th { border-bottom: 2px solid #444; text-align: left; }
td.num { text-align: right; }
.value { white-space: nowrap; }
.paper { color: #666; font-size: 0.85em; }
.missing { color: #b00; font-style: italic; }
.footnote { color: #b00; font-size: 0.85em; margin: 0.2em 0; }
.published { color: #666; font-style: italic; margin: 0.3em 0 1em; }
.notes { color: #444; font-size: 0.85em; }
.wide { overflow-x: auto; max-width: 100%; }
.ci { color: #333; font-size: 0.85em; }
figure { display: inline-block; margin: 0.5em; max-width: 100%; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
"""


def _html_mark(mark: int) -> str:
    return f"<sup>{mark}</sup>" if mark else ""


def _html_wrap(text: str) -> str:
    """Escaped text that a narrow column breaks only after its commas ("paper 96.00," / "Δ −17.43")."""
    return ", ".join(html.escape(part).replace(" ", "&nbsp;") for part in text.split(", "))


def _html_cell(cell: Cell, mark: int = 0) -> str:
    if cell.empty:
        return '<td class="num"></td>'
    main = html.escape(btc_text(cell, with_ci=False))
    main = f'<span class="{"value" if cell.value is not None else "missing"}">{main}</span>'
    main += _html_mark(_marked(cell, mark))
    if cell.ci is not None and cell.value is not None:
        main += f'<br><span class="ci">{_html_wrap(ci_text(*cell.ci, cell.kind))}</span>'
    side = paper_text(cell)
    side = f'<br><span class="paper">{_html_wrap(side)}</span>' if side else ""
    return f'<td class="num">{main}{side}</td>'


def _html_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A table in a box that scrolls sideways when the table is wider than the page."""
    lines = ['<div class="wide"><table>', "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    lines += ["<tr>" + "".join(row) + "</tr>" for row in rows]
    return lines + ["</table></div>"]


def _td(text: str) -> str:
    return f"<td>{html.escape(str(text))}</td>"


def render_html(report: Report, out: Path | None = None) -> str:
    body = [f"<h1>{html.escape(report.title)}</h1>"] + [f'<p class="notes">{html.escape(x)}</p>' for x in _intro(report)]
    for table in report.tables:
        body.append(f"<h2>{html.escape(table.title)}</h2>")
        if table.source:
            body.append(f'<p class="notes">Published: {html.escape(table.source)}.</p>')
        rows = [[_td(x) for x in labels] + [_html_cell(c, row.mark) for c in row.cells]
                + ([f"<td>{html.escape(protocol_label(row))}{_html_mark(row.mark)}</td>"] if table.compared else [])
                for labels, row in _shown(table)]
        if rows:
            body += _html_table(_header(table), rows)
        if table.published_only:
            body.append(f'<p class="published">{html.escape(published_only_text(table))}</p>')
        body += [f'<p class="footnote"><sup>{k}</sup> {html.escape(n)}</p>' for k, n in enumerate(table.footnotes, 1)]
        if table.notes:
            body.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in table.notes) + "</ul>")
    prov = report.provenance  # one column per run (a row per run would be 18 columns wide)
    body.append("<h2>Runs: data, protocol, device</h2>")
    body += _html_table(["field"] + [p["run"] for p in prov], [[_td(k)] + [_td(p[k]) for p in prov]
                                                             for k in list(prov[0])[1:]])
    if report.comparisons:
        body.append("<h2>Paired comparisons (McNemar)</h2>")
        body += _html_table(COMPARISON_HEADER, [[_td(x) for x in row] for row in _comparison_rows(report)])
    plotted = [r for r in report.runs if r.plots]
    if plotted:
        body.append("<h2>Plots</h2>")
        for run in plotted:
            body.append(f"<h3>{html.escape(run.name)}</h3>")
            for name, path in run.plots.items():
                data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
                caption = html.escape(f"{run.name}: {PLOT_TITLES.get(name, name)}")
                body.append(f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{caption}</figcaption></figure>")
    if report.notes:
        body.append("<h2>Notes</h2>")
        body.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in report.notes) + "</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(report.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


RENDERERS = {"md": render_md, "tex": render_tex, "csv": render_csv, "html": render_html}
FORMATS = tuple(RENDERERS)
PLOTTED_FORMATS = ("md", "html")  # the formats that show the runs' plots


def normalize_format(fmt: str) -> str:
    """The format's key ("markdown" is "md", "latex" is "tex"); a `BtcError` for an unknown one."""
    key = str(fmt).strip().lower().lstrip(".")
    key = {"markdown": "md", "latex": "tex", "htm": "html"}.get(key, key)
    if key not in FORMATS:
        raise BtcError(f"unknown --format '{fmt}': choose one of {', '.join(FORMATS)}")
    return key


def render(report: Report, fmt: str, out: Path | None = None) -> str:
    """The report as text in `fmt` (md, tex, csv, html); `out`: where it will be written (for links)."""
    return RENDERERS[fmt](report, out)
