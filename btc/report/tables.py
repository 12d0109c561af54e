"""The papers' tables from reported runs, side by side with the published numbers.

Runs (`btc/report/runs.py`) are mapped to the rows of a paper's tables by `config.yaml`'s
`model` (paper 001 also by `task`; paper 004 by `recipe` / `optimizer`):

- paper 001 (ResNeSAt): Tables III (presence) and IV (source), positive-class metrics;
- paper 002 (DSConv-CBAM): Table 3, per class and weighted average, kappa, accuracy (§4.4);
- paper 003 (improved ResNet34): Tables 2 (ablation), 3 (per class), 4 (per fold of the
  five-fold CV: paper fold k is btc's fold-k) and 5 (other networks);
- paper 004 (ResNet18 transfer): test / train accuracy and loss per optimiser (§III-A, §III-B).

Every cell holds btc's value, the published one (`btc/report/papers.py`) and their difference;
a row no run maps to keeps the published values and says "no run" — btc's side is never
filled in (the human formats then name it in one "published only" line, `Table.published_only`). A row a run filled also says whether that run followed the paper's protocol (its
provenance's deviations, `run_row`); `number_footnotes` numbers those that did not (or cannot
tell) as footnotes of the table. Without a paper, `generic_table` compares the runs on the
summary metrics.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from btc.errors import BtcError
from btc.report import papers as P
from btc.report.model import NO_RUN, Cell, Conformity, Row, Table
from btc.report.runs import Run
from btc.runfolder import HISTORY, SUMMARY_METRICS, fold_name, metric_value


def _scale(value: Any, kind: str) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return float(value) * 100.0 if kind == "percent" else float(value)


def run_cell(run: Run | None, keys: tuple[str, ...], paper: float | None, *, kind: str = "percent",
             with_ci: bool = False, compare: bool = True, span: bool = False) -> Cell:
    """btc's metric at `keys` in the run's metrics (a CV: mean ± std) next to the paper's value."""
    if run is None:
        return Cell(paper=paper, kind=kind, status=NO_RUN, compare=compare, span=span)
    value = _scale(metric_value(run.metrics, keys), kind)
    std = _scale(metric_value(run.std, keys), kind) if run.std is not None else None
    status = ""
    if value is None:
        status = f"no {keys[1]} class" if keys[0] == "per_class" else "not available"
    ci = None
    if with_ci and value is not None and not np.isnan(run.ci[0]):
        ci = (run.ci[0] * 100.0, run.ci[1] * 100.0)
    return Cell(value=value, std=std, ci=ci, paper=paper, kind=kind, status=status, compare=compare, span=span)


def run_row(labels: list[str], cells: list[Cell], run: Run | None, name: str | None = None,
            subject: str = "") -> Row:
    """A paper table's row filled by `run` (None: no run), with its conformity to the paper's
    protocol; `name`: the run to name instead of `run`'s (a CV fold's row names its CV);
    `subject`: how a "published only" line names the row (default: its first label)."""
    if run is None:
        return Row(labels, cells, subject=subject)
    deviations = run.deviations
    conformity = Conformity(None if deviations is None else tuple(deviations))
    return Row(labels, cells, name if name is not None else run.name, conformity, subject=subject)


def number_footnotes(table: Table) -> None:
    """Give every row not known to follow the paper's protocol the number of its footnote
    (rows with the same deviations share one), numbered 1, 2, … down the table."""
    table.footnotes = []
    for row in table.rows:
        note = row.conformity.note if row.conformity is not None else ""
        if not note:
            row.mark = 0
            continue
        if note not in table.footnotes:
            table.footnotes.append(note)
        row.mark = table.footnotes.index(note) + 1


def _model_label(model: str) -> str:
    return P.MODEL_LABELS.get(model, model)


def _assign(runs: list[Run], keys: list[str], key_of) -> tuple[dict[str, list[Run]], list[Run]]:
    """Runs per row key (`key_of(run)` → key or None), and the runs no key took."""
    rows: dict[str, list[Run]] = {k: [] for k in keys}
    left: list[Run] = []
    for run in runs:
        key = key_of(run)
        if key in rows:
            rows[key].append(run)
        else:
            left.append(run)
    return rows, left


def _expand(rows: dict[str, list[Run]]) -> list[tuple[str, Run | None]]:
    """(row key, run) pairs: one per run, or one with no run for a row nobody filled."""
    out: list[tuple[str, Run | None]] = []
    for key, runs in rows.items():
        out += [(key, r) for r in runs] if runs else [(key, None)]
    return out


# --------------------------------------------------------------------------- paper 001


def tables_001(runs: list[Run]) -> tuple[list[Table], list[Run]]:
    spec = P.PAPER_001
    unit, columns = spec["unit"], spec["columns"]
    used: set[int] = set()
    tables = []
    for key, t in spec["tables"].items():
        rows, _ = _assign(runs, list(t["rows"]), lambda r, t=t: r.model if r.task == t["task"] else None)
        table = Table(key=f"001-{key}", title=t["title"], source=t["where"], label_columns=["Model", "Run"],
                      columns=[P.METRIC_LABELS[c] for c in columns])
        for model, run in _expand(rows):
            published = t["rows"][model]
            cells = []
            positive = t["positive"]
            if run is not None:
                used.add(id(run))
                if positive not in run.classes:
                    fallback = run.classes[0] if run.classes else positive
                    table.notes.append(f"{run.name}: no class '{positive}'; '{fallback}' is taken as the "
                                       "positive class")
                    positive = fallback
            for c in columns:
                keys = ("accuracy",) if c == "accuracy" else ("per_class", positive, c)
                cells.append(run_cell(run, keys, P.to_percent(published[c], unit), with_ci=c == "accuracy"))
            table.rows.append(run_row([_model_label(model), run.name if run else ""], cells, run))
        table.notes.append(f"Recall, specificity, precision and F1 are those of the positive class "
                           f"('{t['positive']}'); the paper reports ten-fold means, a CV folder shows mean ± std.")
        tables.append(table)
    return tables, [r for r in runs if id(r) not in used]


# --------------------------------------------------------------------------- paper 002


def _per_class_rows(table: Table, model: str, run: Run | None, classes: tuple[str, ...], average: str,
                    columns: tuple[str, ...], published: dict[str, dict[str, float]], unit: str,
                    extra: list[Cell] | None = None) -> None:
    """One row per class and an average row for a model (paper 002 Table 3, paper 003 Table 3)."""
    for i, cls in enumerate((*classes, "average")):
        keys_of = (lambda c, cls=cls: (average, c)) if cls == "average" else (lambda c, cls=cls: ("per_class", cls, c))
        pub = published.get(cls, {})
        cells = [run_cell(run, keys_of(c), P.to_percent(pub.get(c), unit)) for c in columns]
        if extra is not None:
            cells += extra if i == 0 else [Cell(compare=True) for _ in extra]
        labels = [_model_label(model), run.name if run else "", P.CLASS_LABELS.get(cls, cls)]
        table.rows.append(run_row(labels, cells, run))


def tables_002(runs: list[Run]) -> tuple[list[Table], list[Run]]:
    spec = P.PAPER_002
    rows, left = _assign(runs, list(spec["rows"]), lambda r: r.model)
    table = Table(key="002-3", title=spec["title"], source=spec["where"], label_columns=["Model", "Run", "Classes"],
                  columns=[P.METRIC_LABELS[c] for c in spec["columns"]] + ["Kappa", "Accuracy"])
    for model, run in _expand(rows):
        published = spec["rows"][model]
        accuracy = spec["accuracy_text"].get(model)
        extra = [run_cell(run, ("kappa",), published["kappa"], kind="number", span=True),
                 run_cell(run, ("accuracy",), accuracy, with_ci=True, span=True)]
        _per_class_rows(table, model, run, spec["classes"], spec["average"], spec["columns"],
                        published["per_class"], spec["unit"], extra)
    table.notes.append("Average: the support-weighted average (paper 002 §4.2). The paper prints two decimals; "
                       "its accuracies are §4.4's (97.41, 96.72, 89.47 %), Table 3 prints them rounded "
                       "(0.97, 0.97, 0.89).")
    return [table], left


# --------------------------------------------------------------------------- paper 003


def tables_003(runs: list[Run]) -> tuple[list[Table], list[Run]]:
    spec = P.PAPER_003
    unit = spec["unit"]
    used: set[int] = set()
    tables = []

    # Table 2: ablation accuracies.
    t2 = spec["table2"]
    rows, _ = _assign(runs, list(t2["rows"]), lambda r: r.model)
    table = Table(key="003-2", title=t2["title"], source=t2["where"], label_columns=["Model", "Network", "Run"],
                  columns=["Accuracy"])
    for model, run in _expand(rows):
        if run is not None:
            used.add(id(run))
        pub = t2["rows"][model]
        table.rows.append(run_row([str(pub["model"]), _model_label(model), run.name if run else ""],
                                  [run_cell(run, ("accuracy",), P.to_percent(pub["accuracy"], unit), with_ci=True)],
                                  run, subject=f"{pub['model']} ({_model_label(model)})"))
    table.notes.append("A: Inception-v2 downsampling, B: multi-scale input, C: SE attention (resnet34_a, _b, _c; "
                       "resnet34_improved has all three).")
    tables.append(table)

    # Table 3: per class.
    t3 = spec["table3"]
    table = Table(key="003-3", title=t3["title"], source=t3["where"], label_columns=["Model", "Run", "Type"],
                  columns=[P.METRIC_LABELS[c] for c in t3["columns"]])
    for model, run in _expand(rows):
        _per_class_rows(table, model, run, t3["classes"], t3["average"], t3["columns"], t3["rows"][model], unit)
    table.notes.append("Average: the plain (macro) mean over the four classes, as in the paper.")
    tables.append(table)

    # Table 4: per fold of the improved network's five-fold CV.
    t4 = spec["table4"]
    cvs = [r for r in runs if r.model == t4["model"] and r.kind == "cv"]
    cv = cvs[0] if cvs else None
    table = Table(key="003-4", title=t4["title"], source=t4["where"], label_columns=["K-Fold", "Run"],
                  columns=[P.METRIC_LABELS[c] for c in t4["columns"]])
    if cv is not None:
        used.add(id(cv))
    fold_runs = {f.fold: f for f in (cv.folds if cv else [])}
    for k in sorted(set(t4["folds"]) | set(fold_runs)):
        pub = t4["folds"].get(k, {})
        fold_run = fold_runs.get(k)
        cells = [run_cell(fold_run, _macro_keys(c), P.to_percent(pub.get(c), unit), with_ci=c == "accuracy")
                 for c in t4["columns"]]
        if fold_run is None and cv is not None:
            for cell in cells:
                cell.status = "no fold"
        table.rows.append(run_row([str(k), f"{cv.name}/{fold_run.name}" if fold_run else ""], cells, fold_run,
                                  name=cv.name if cv else None, subject=f"fold {k}"))
    table.rows.append(run_row(["Average", cv.name if cv else ""],
                              [run_cell(cv, _macro_keys(c), P.to_percent(t4["average"][c], unit), with_ci=c == "accuracy")
                               for c in t4["columns"]], cv, subject="the average"))
    first, last = min(t4["folds"]), max(t4["folds"])
    table.notes.append(f"Needs a CV folder of resnet34_improved; paper fold k is btc's fold k ({fold_name(first)} … "
                       f"{fold_name(last)}). Precision, recall, specificity and F1 are macro averages.")
    if len(cvs) > 1:
        table.notes.append(f"Only the first CV of {t4['model']} is shown; also given: "
                           + ", ".join(r.name for r in cvs[1:]))
    tables.append(table)

    # Table 5: other networks.
    t5 = spec["table5"]
    rows5, _ = _assign(runs, list(t5["rows"]), lambda r: r.model)
    table = Table(key="003-5", title=t5["title"], source=t5["where"], label_columns=["Network", "Run"],
                  columns=[P.METRIC_LABELS[c] for c in t5["columns"]])
    for model, run in _expand(rows5):
        if run is not None:
            used.add(id(run))
        pub = t5["rows"][model]
        label = t5["labels"].get(model, _model_label(model))
        table.rows.append(run_row([label, run.name if run else ""],
                                  [run_cell(run, _macro_keys(c), P.to_percent(pub[c], unit), with_ci=c == "accuracy")
                                   for c in t5["columns"]], run))
    table.notes.append("Precision, recall, specificity and F1 are macro averages.")
    tables.append(table)
    return tables, [r for r in runs if id(r) not in used]


def _macro_keys(metric: str) -> tuple[str, ...]:
    return (metric,) if metric in ("accuracy", "kappa", "loss") else ("macro", metric)


# --------------------------------------------------------------------------- paper 004


def _last_epoch(run: Run) -> dict[str, float] | None:
    """Training accuracy and loss of the last epoch (a CV: mean over its folds)."""
    rows = [history.iloc[-1] for _, history in run.histories()
            if {"train_accuracy", "train_loss"} <= set(history.columns)]
    if not rows:
        return None
    values = {key: pd.to_numeric(pd.Series([r[key] for r in rows]), errors="coerce")
              for key in ("train_accuracy", "train_loss")}  # an empty cell: not available
    return {key: float(v.mean()) for key, v in values.items()}


def tables_004(runs: list[Run]) -> tuple[list[Table], list[Run]]:
    spec = P.PAPER_004
    unit = spec["unit"]
    variants = spec["rows"]

    def key_of(run: Run) -> str | None:
        """The variant of the run's optimiser (its recipe's, unless overridden), else of its recipe."""
        if run.model != spec["model"]:
            return None
        if "optimizer" in run.config:
            by_optimizer = [k for k, v in variants.items() if v["optimizer"] == run.config["optimizer"]]
            return by_optimizer[0] if by_optimizer else None
        recipe = run.config.get("recipe")
        return str(recipe) if recipe in variants else None

    rows, left = _assign(runs, list(variants), key_of)
    table = Table(key="004", title=spec["title"], source=spec["where"], label_columns=["Optimiser", "Run"],
                  columns=["Test accuracy", "Test loss", "Train accuracy", "Train loss"])
    for key, run in _expand(rows):
        pub = variants[key]
        cells = [run_cell(run, ("accuracy",), P.to_percent(pub.get("accuracy"), unit), with_ci=True),
                 run_cell(run, ("loss",), pub.get("loss"), kind="loss")]
        last = _last_epoch(run) if run else None
        for metric, kind in (("train_accuracy", "percent"), ("train_loss", "loss")):
            published = P.to_percent(pub.get(metric), unit) if kind == "percent" else pub.get(metric)
            if run is None:
                cells.append(Cell(paper=published, kind=kind, status=NO_RUN))
            elif last is None:
                cells.append(Cell(paper=published, kind=kind, status="no history"))
            else:
                cells.append(Cell(value=_scale(last[metric], kind), paper=published, kind=kind))
        table.rows.append(run_row([pub["label"], run.name if run else ""], cells, run))
        if run is not None and run.config.get("lr") not in (None, pub["lr"]):
            table.notes.append(f"{run.name}: lr {run.config['lr']:g}, the paper's is {pub['lr']:g}.")
    table.notes.append("Rows: resnet18_transfer runs by optimiser (recipes paper004: SGD, paper004-nadam). Test loss: mean "
                       f"cross-entropy on the test images; train accuracy / loss: the last epoch's ({HISTORY}), "
                       "as the paper reports them.")
    return [table], left


# --------------------------------------------------------------------------- generic


def metric_kind(keys: tuple[str, ...]) -> str:
    """How a metric is shown: loss (5 decimals), kappa / AUC (4) or a rate in percent (2)."""
    return {"loss": "loss", "kappa": "number", "auc": "number"}.get(keys[-1], "percent")


GENERIC_COLUMNS = tuple((title[0].upper() + title[1:], keys) for keys, title in SUMMARY_METRICS) + (("Loss", ("loss",)),)


def generic_table(runs: list[Run]) -> Table:
    table = Table(key="runs", title="Comparison of the given runs", source="", label_columns=["Run", "Model", "Task"],
                  columns=[c for c, _ in GENERIC_COLUMNS])
    for run in runs:
        cells = [run_cell(run, keys, None, kind=metric_kind(keys), with_ci=keys == ("accuracy",), compare=False)
                 for _, keys in GENERIC_COLUMNS]
        table.rows.append(Row([run.name, run.model, run.task], cells, run.name))
    table.notes.append("Macro: the plain mean over the classes. A CV folder shows mean ± std over its folds and the "
                       "CI of its pooled out-of-fold predictions.")
    return table


BUILDERS = {"001": tables_001, "002": tables_002, "003": tables_003, "004": tables_004}
TITLES = {"001": "Paper 001 (ResNeSAt): Tables III and IV",
          "002": "Paper 002 (DSConv-CBAM): Table 3",
          "003": "Paper 003 (improved ResNet34): Tables 2, 3, 4 and 5",
          "004": "Paper 004 (ResNet18 transfer learning): accuracy and loss per optimiser"}


def normalize_paper(paper: str | None) -> str | None:
    """The paper's key ("1", "01" and "001" are "001"); a `BtcError` for a paper without tables."""
    if paper is None:
        return None
    text = str(paper).strip()
    key = text.zfill(3) if re.fullmatch(r"\d{1,3}", text) else text
    if key not in BUILDERS:
        raise BtcError(f"unknown --paper '{paper}': choose one of {', '.join(BUILDERS)}")
    return key
