"""`btc audit DATA [--json] [--threshold N]`: duplicates and leakage of a prepared dataset, shown.

`btc.data.audit.audit_dataset` computes the `AuditReport`; this module prints it: a headline,
the class balance per split, the exact and near-duplicate groups (the first 15 of each, with the
split and label of every image and what leaks), patients, image sizes, missing images and the
inputs prepare skipped or flagged. `--json` prints `AuditReport.to_dict()` on stdout and nothing
else.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from btc.commands.ui import out, print_json
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


def _print_groups(kind: str, section: dict, max_groups: int) -> None:
    title = f"{kind} duplicates" + (f" (phash ≤ {section['threshold']} bits)" if kind == "near" else "")
    if not section["groups"]:
        out.print(f"{title}: none")
        return
    table = Table(title=f"{title}: {section['groups']} groups, {section['files']} files, "
                        f"{section['cross_split_groups']} cross-split, {section['cross_class_groups']} cross-class")
    table.add_column("#", justify="right")
    table.add_column("images (split/label)")
    table.add_column("leak")
    for i, g in enumerate(section["list"][:max_groups], start=1):
        items = ", ".join(f"{p} ({s or '-'}/{lab})" for p, s, lab in zip(g["paths"], g["splits"], g["labels"], strict=True))
        leak = " ".join(w for w, on in (("split", g["cross_split"]), ("class", g["cross_class"]),
                                          ("fold", g.get("cross_fold", False))) if on)
        table.add_row(str(i), escape(items), leak)
    out.print(table)
    if section["groups"] > max_groups:
        out.print(f"… {section['groups'] - max_groups} more groups (see --json)")


def print_report(report: AuditReport, max_groups: int = MAX_GROUPS) -> None:
    """The report as rich tables and lines on stdout."""
    out.print(f"[bold]{escape(report.dataset or '')}[/bold]: {escape(report.headline())}")
    out.print(balance_table(report))
    _print_groups("exact", report.exact, max_groups)
    _print_groups("near", report.near, max_groups)
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


def run(data: str | Path, *, as_json: bool = False, threshold: int | None = None) -> AuditReport:
    """Audit `data` and print the report (tables, or one JSON object with `as_json`)."""
    report = audit_dataset(data, threshold=threshold)
    if as_json:
        print_json(report.to_dict())
    else:
        print_report(report)
    return report
