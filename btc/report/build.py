"""`btc report`'s content: runs → a paper's tables (or the generic comparison), provenance,
McNemar comparisons of paired runs, and the runs' plots.

Each run or CV folder is read once (`btc/report/runs.py`; a folder given twice counts once); a
paper's tables come from `btc/report/tables.py` (a row whose run departs from the paper's protocol
numbered as a footnote of its table), the paper / leak-free side-by-side table from
`btc/report/protocols.py` (or, when runs of both protocols differ in other settings too, a note
saying which), the provenance rows from `btc/report/provenance.py`, and the missing plots of
every run are drawn into its folder (`btc/report/plots.py`) when the format shows them.
`btc/report/render.py` turns the `Report` into text; `btc/commands/report.py` prints or writes it.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from btc.errors import BtcError
from btc.report.figure3 import BUILDERS, TITLES  # tables.py's, paper 001 with its Fig. 3
from btc.report.model import Comparison, Report, Table
from btc.report.plots import missing_plots, present_plots, write_plots
from btc.report.protocols import protocol_pairs, protocol_table, unpaired_note
from btc.report.provenance import provenance
from btc.report.runs import Run, read_runs
from btc.report.stats import mcnemar
from btc.report.tables import generic_table, normalize_paper, number_footnotes


def _classes_text(run: Run) -> str:
    return f"{len(run.classes)} classes ({', '.join(run.classes)})"


def _different_images(a: Run, b: Run, side_by_side: bool) -> str:
    """Why two runs with different test images get no test here; a paper / leak-free pair is
    tested in the side-by-side table, on the images both predicted."""
    shared = len(set(a.predictions.paths) & set(b.predictions.paths))
    if side_by_side and shared:
        return f"different test images: McNemar on the {shared} shared test images in the side-by-side table"
    return f"not paired (different test images, {shared} shared)"


def compare_runs(runs: list[Run], side_by_side: list[tuple[Run, Run]] | None = None) -> list[Comparison]:
    """McNemar's exact test for every pair of runs that predict the same labels on the same test
    images (matched by path). A pair that does not is listed with the reason it has no test: its
    classes differ (a 4-class two-stage chain and its 2-class presence run: "right" does not mean
    the same thing), its test images differ (a pair in `side_by_side`, the paper / leak-free
    table, is pointed there), or the same image carries different labels."""
    in_table = {frozenset((id(a), id(b))) for a, b in side_by_side or []}
    out = []
    for a, b in combinations(runs, 2):
        pa, pb = a.predictions.paths, b.predictions.paths
        if list(a.classes) != list(b.classes):
            out.append(Comparison(a.name, b.name, None, f"no test: different labels ({_classes_text(a)} vs "
                                                          f"{_classes_text(b)})"))
            continue
        if len(pa) != len(pb) or set(pa) != set(pb) or len(set(pa)) != len(pa):
            out.append(Comparison(a.name, b.name, None,
                                  _different_images(a, b, frozenset((id(a), id(b))) in in_table)))
            continue
        order = [{path: i for i, path in enumerate(pb)}[path] for path in pa]
        if not (a.predictions.targets == b.predictions.targets[order]).all():
            out.append(Comparison(a.name, b.name, None, "no test: the same images carry different labels"))
            continue
        out.append(Comparison(a.name, b.name, mcnemar(a.correct, b.correct[order])))
    return out


def _side_by_side(runs: list[Run]) -> tuple[list[Table], list[str]]:
    """The paper / leak-free table, or else the note saying why no two runs were paired."""
    table = protocol_table(runs)
    if table is not None:
        return [table], []
    note = unpaired_note(runs)
    return [], [note] if note else []


def _add_plots(run: Run) -> None:
    """Draw the run's missing plots and record those present (a failure becomes a note)."""
    try:
        write_plots(run, missing_plots(run.folder))
    except (OSError, ValueError, KeyError, TypeError, IndexError, OverflowError) as e:  # a malformed file
        run.plot_error = f"plots not written ({type(e).__name__}: {e})"
    run.plots = present_plots(run.folder)


def build_report(paths: list[Path], paper: str | None = None, plots: bool = True) -> Report:
    """The report of run / CV folders: `paper`'s tables (None: a comparison of the runs)."""
    paper = normalize_paper(paper)
    if not paths:
        raise BtcError("give at least one run or CV folder")
    runs = read_runs([Path(p) for p in paths])
    if plots:
        for run in runs:
            _add_plots(run)
    notes = []
    if paper is None:
        tables = [generic_table(runs)]
        title = "btc report: comparison of runs"
    else:
        tables, left = BUILDERS[paper](runs)
        for table in tables:
            number_footnotes(table)
        title = f"btc report: {TITLES[paper]}"
        for run in left:
            notes.append(f"{run.name} ({run.model or '?'}, task {run.task or '?'}, {run.kind}) is in none of paper "
                         f"{paper}'s tables.")
    side_by_side, why_not = _side_by_side(runs)
    tables += side_by_side
    notes += why_not
    for run in runs:
        if not run.complete:
            notes.append(f"{run.name}: only {len(run.folds)} of {run.n_folds} folds have finished.")
        if run.plot_error:
            notes.append(f"{run.name}: {run.plot_error}")
    comparisons = compare_runs(runs, protocol_pairs(runs))
    return Report(title=title, paper=paper, runs=runs, tables=tables, comparisons=comparisons,
                  provenance=[provenance(r) for r in runs], notes=notes)
