"""`btc audit DATA [--json] [--threshold N] [--min-similarity S]`: duplicates and leakage, shown.

`btc.data.audit.audit_dataset` computes the `AuditReport`; this module prints it: a headline,
the class balance per split, the exact and near-duplicate groups (the first 15 of each, with the
split and label of every image and what leaks), how many hash candidates the pixel check
confirmed and rejected, the possible label conflicts (every one, with its files), patients,
image sizes, missing images and the inputs prepare skipped or flagged. The pixel check shows a
progress bar on stderr (not with `--quiet` or `--json`). `--json` prints `AuditReport.to_dict()`
on stdout and nothing else.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from btc.commands.ui import RichProgress, out, print_json, progress_for
from btc.data.audit import AuditReport, audit_dataset

MAX_GROUPS = 15


def balance_table(report: AuditReport) -> Table:
    table = Table(title="class balance")
    table.add_column("label")
    for split in report.splits:
        table.add_column(split, justify="right")
    table.add_column("total", justify="right")
    for label, total in report.classes.items():
        table.add_row(label, *[str(report.splits[s].get(label, 0)) for s in report.splits], str(total))
    return table


def _items(group: dict) -> str:
    return ", ".join(f"{p} ({s or '-'}/{lab})" for p, s, lab in zip(group["paths"], group["splits"], group["labels"],
                                                                    strict=True))


def _print_groups(kind: str, section: dict, max_groups: int) -> None:
    title = f"{kind} duplicates" + (" (same scan, confirmed by pixels)" if kind == "near" else "")
    if not section["groups"]:
        out.print(f"{title}: none")
        return
    table = Table(title=f"{title}: {section['groups']} groups, {section['files']} files, "
                        f"{section['cross_split_groups']} cross-split, {section['cross_class_groups']} cross-class")
    table.add_column("#", justify="right")
    table.add_column("images (split/label)")
    table.add_column("leak")
    for i, g in enumerate(section["list"][:max_groups], start=1):
        items = _items(g)
        leak = " ".join(w for w, on in (("split", g["cross_split"]), ("class", g["cross_class"]),
                                          ("fold", g.get("cross_fold", False))) if on)
        table.add_row(str(i), escape(items), leak)
    out.print(table)
    if section["groups"] > max_groups:
        out.print(f"… {section['groups'] - max_groups} more groups (see --json)")


def _print_checks(near: dict) -> None:
    if not near.get("verified", True):
        out.print(f"{near['candidates']} hash candidates at ≤ {near['threshold']} bits not checked (no pixels): none merged")
        return
    out.print(f"pixel check: {near['candidates']} hash candidates at ≤ {near['threshold']} bits, "
              f"{near['confirmed']} confirmed (similarity ≥ {near['min_similarity']:g}), {near['rejected']} rejected "
              f"({near['rejected_cross_class']} of them between classes)")


def _print_conflicts(conflicts: list[dict]) -> None:
    if not conflicts:
        out.print("possible label conflicts: none")
        return
    table = Table(title=f"possible label conflicts: {len(conflicts)} groups of the same scan with different labels")
    table.add_column("#", justify="right")
    table.add_column("kind")
    table.add_column("images (split/label)")
    table.add_column("similarity", justify="right")
    for i, g in enumerate(conflicts, start=1):
        sim = g.get("similarity")
        table.add_row(str(i), g["kind"], escape(_items(g)), "identical" if sim is None else f"{sim:.3f}")
    out.print(table)


def print_report(report: AuditReport, max_groups: int = MAX_GROUPS) -> None:
    """The report as rich tables and lines on stdout."""
    out.print(f"[bold]{escape(report.dataset or '')}[/bold]: {escape(report.headline())}")
    out.print(balance_table(report))
    _print_groups("exact", report.exact, max_groups)
    _print_groups("near", report.near, max_groups)
    _print_checks(report.near)
    _print_conflicts(report.conflicts)
    p = report.patients
    if p["ids"]:
        line = f"patients: {p['ids']} ids on {p['with_id']} images; {p['cross_split']} across splits"
        if "cross_fold" in p:
            line += f", {p['cross_fold']} across folds"
        if p["similar_ids"]:
            line += f"; ids differing only by a trailing letter: {p['similar_ids']}"
        out.print(escape(line))
    sizes = report.sizes
    top = ", ".join(f"{k}: {v}" for k, v in list(sizes["histogram"].items())[:8])
    more = f", … ({sizes['distinct']} sizes)" if sizes["distinct"] > 8 else ""
    out.print(f"{sizes['basis']} image sizes: {top}{more}")
    if report.missing:
        out.print(f"[red]{len(report.missing)} manifest images missing[/red], e.g. {escape(report.missing[0])}")
    for s in report.skipped:
        out.print(f"skipped {escape(s['path'])}: {escape(s['reason'])}")
    for s in report.flagged:
        out.print(f"flagged {escape(s['path'])}: {escape(s['reason'])}")


def run(data: str | Path, *, as_json: bool = False, threshold: int | None = None,
        min_similarity: float | None = None, quiet: bool = False) -> AuditReport:
    """Audit `data` and print the report (tables, or one JSON object with `as_json`)."""
    progress = progress_for(quiet or as_json)
    with progress if isinstance(progress, RichProgress) else nullcontext():
        report = audit_dataset(data, threshold=threshold, min_similarity=min_similarity, progress=progress)
    if as_json:
        print_json(report.to_dict())
    else:
        print_report(report)
    return report
