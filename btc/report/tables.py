"""Paper-layout tables from run folders, side by side with the published numbers (`btc report`).

A run folder (`btc train`) or a CV folder (`btc cv`) becomes a `Run`: its config, its metrics
(a CV: the mean and std over its finished folds, from `cv.json`), its test predictions (a CV: the
folds' out-of-fold predictions, pooled), the 95 % bootstrap CI of its accuracy over those test
images, and its plots. Runs are mapped to the rows of a paper's tables by `config.yaml`'s
`model` (paper 001 also by `task`; paper 004 by `recipe` / `optimizer`). Every cell holds btc's
value, the published one (`btc/report/papers.py`) and their difference; a row no run maps to
keeps the published values and says "no run" — btc's side is never filled in.
Rendering (Markdown, LaTeX, CSV, HTML) is in `btc/report/render.py`.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from btc.errors import BtcError
from btc.io import read_yaml
from btc.report import papers as P
from btc.report.stats import McNemar, bootstrap_accuracy_ci, mcnemar

FORMATS = ("md", "tex", "csv", "html")
N_BOOT = 2000
NO_RUN = "no run"

CELL_FORMAT = ("Cell format: btc's value [± std over CV folds] [95 % bootstrap CI over the test images, "
               "accuracy only] (paper: the published value, Δ: btc − paper). Rates are percentages "
               "with two decimals (Δ in percentage points); kappa (4 decimals) and loss (5) are plain numbers. "
               "\"no run\": no run given for that row (btc's value is never filled in); "
               "\"–\": not published / not available.")


# --------------------------------------------------------------------------- runs


@dataclass
class Run:
    """A run or CV folder, read for reporting."""

    path: Path
    name: str
    kind: str                               # "train" or "cv"
    config: dict[str, Any]                  # config.yaml (a CV: its first finished fold's)
    metrics: dict[str, Any]                 # metrics.json, or cv.json's mean
    std: dict[str, Any] | None              # cv.json's std (None for a train run)
    folds: list[dict[str, Any]]             # cv.json's folds: [{fold, metrics}]
    n_folds: int
    complete: bool
    protocol: str
    predictions: pd.DataFrame               # pooled test predictions
    fold_configs: list[dict[str, Any]] = field(default_factory=list)
    ci: tuple[float, float] = (float("nan"), float("nan"))
    plots: dict[str, Path] = field(default_factory=dict)
    plot_error: str = ""

    @property
    def model(self) -> str:
        return str(self.config.get("model", ""))

    @property
    def task(self) -> str:
        return str(self.config.get("task", ""))

    @property
    def classes(self) -> list[str]:
        return list(self.metrics.get("classes") or self.config.get("classes") or [])

    @property
    def correct(self) -> np.ndarray:
        return (self.predictions["label"] == self.predictions["predicted"]).to_numpy()

    @property
    def pooled_accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.predictions) else float("nan")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BtcError(f"{path}: unreadable ({e})") from None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = read_yaml(path) if path.is_file() else {}
    except Exception as e:  # yaml errors
        raise BtcError(f"{path}: unreadable ({e})") from None
    return data if isinstance(data, dict) else {}


def _read_predictions(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BtcError(f"{path.parent}: no predictions.csv (the run folder is incomplete)")
    frame = pd.read_csv(path, keep_default_na=False)
    missing = {"path", "label", "predicted"} - set(frame.columns)
    if missing:
        raise BtcError(f"{path}: not a btc predictions file (missing {', '.join(sorted(missing))})")
    return frame


def load_run(path: Path) -> Run:
    """Read a run folder (metrics.json) or CV folder (cv.json); a `BtcError` for anything else."""
    path = Path(path)
    if not path.is_dir():
        raise BtcError(f"{path}: no such run folder")
    if (path / "cv.json").is_file():
        cv = _read_json(path / "cv.json")
        folds = list(cv.get("folds") or [])
        if not folds:
            raise BtcError(f"{path}: the CV has no finished fold yet")
        fold_dirs = [path / f"fold-{f['fold']}" for f in folds]
        fold_configs = [_read_config(d / "config.yaml") for d in fold_dirs]
        frames = []
        for d in fold_dirs:
            frame = _read_predictions(d / "predictions.csv")
            frame.insert(0, "fold", d.name)
            frames.append(frame)
        return Run(path=path, name=path.name, kind="cv", config=fold_configs[0], metrics=cv.get("mean") or {},
                   std=cv.get("std") or {}, folds=folds, n_folds=int(cv.get("n_folds", len(folds))),
                   complete=bool(cv.get("complete", True)), protocol=str(cv.get("protocol", "")),
                   predictions=pd.concat(frames, ignore_index=True), fold_configs=fold_configs)
    if (path / "metrics.json").is_file():
        metrics = _read_json(path / "metrics.json")
        config = _read_config(path / "config.yaml")
        return Run(path=path, name=path.name, kind="train", config=config, metrics=metrics, std=None, folds=[],
                   n_folds=0, complete=True, protocol=str(config.get("protocol", "")),
                   predictions=_read_predictions(path / "predictions.csv"), fold_configs=[config])
    if (path / "config.yaml").is_file():
        raise BtcError(f"{path}: the run has not finished (no metrics.json); resume it with --resume")
    if (path / "folds.csv").is_file():
        raise BtcError(f"{path}: the CV has no finished fold yet (no cv.json)")
    raise BtcError(f"{path}: not a run folder (no metrics.json) nor a CV folder (no cv.json)")


def load_runs(paths: list[Path], plots: bool = True) -> list[Run]:
    """Load every folder, give each a unique name, its accuracy CI and its plots."""
    from btc.report.plots import write_run_plots

    runs = [load_run(p) for p in paths]
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = str(r.path)
    for r in runs:
        r.ci = bootstrap_accuracy_ci(r.correct, n_boot=N_BOOT, seed=0)
        if plots:
            try:
                r.plots = write_run_plots(r.path, overwrite=False)
            except (OSError, ValueError, KeyError) as e:
                r.plot_error = f"plots not written ({type(e).__name__}: {e})"
    return runs


# --------------------------------------------------------------------------- cells and tables


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
    paper: str | None
    runs: list[Run]
    tables: list[Table]
    comparisons: list[Comparison]
    notes: list[str] = field(default_factory=list)


def _get(d: dict[str, Any] | None, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _scale(value: Any, kind: str) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return float(value) * 100.0 if kind == "percent" else float(value)


def run_cell(run: Run | None, keys: tuple[str, ...], paper: float | None, *, kind: str = "percent",
             with_ci: bool = False, compare: bool = True, span: bool = False) -> Cell:
    """btc's metric at `keys` in the run's metrics (a CV: mean ± std) next to the paper's value."""
    if run is None:
        return Cell(paper=paper, kind=kind, status=NO_RUN, compare=compare, span=span)
    value = _scale(_get(run.metrics, *keys), kind)
    std = _scale(_get(run.std, *keys), kind) if run.std is not None else None
    status = ""
    if value is None:
        status = f"no {keys[1]} class" if keys[0] == "per_class" else "not available"
    ci = None
    if with_ci and value is not None and not np.isnan(run.ci[0]):
        ci = (run.ci[0] * 100.0, run.ci[1] * 100.0)
    return Cell(value=value, std=std, ci=ci, paper=paper, kind=kind, status=status, compare=compare, span=span)


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
            table.rows.append(Row([_model_label(model), run.name if run else ""], cells, run.name if run else ""))
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
        table.rows.append(Row(labels, cells, run.name if run else ""))


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
        table.rows.append(Row([str(pub["model"]), _model_label(model), run.name if run else ""],
                              [run_cell(run, ("accuracy",), P.to_percent(pub["accuracy"], unit), with_ci=True)],
                              run.name if run else ""))
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
    fold_metrics = {f["fold"] + 1: f["metrics"] for f in (cv.folds if cv else [])}
    for k in sorted(set(t4["folds"]) | set(fold_metrics)):
        pub = t4["folds"].get(k, {})
        fold_run = None
        if k in fold_metrics:
            fold_run = _fold_view(cv, k - 1, fold_metrics[k])
        cells = [run_cell(fold_run, _macro_keys(c), P.to_percent(pub.get(c), unit), with_ci=c == "accuracy")
                 for c in t4["columns"]]
        if fold_run is None and cv is not None:
            for cell in cells:
                cell.status = "no fold"
        table.rows.append(Row([str(k), f"{cv.name}/fold-{k - 1}" if fold_run else ""], cells,
                              cv.name if fold_run else ""))
    table.rows.append(Row(["Average", cv.name if cv else ""],
                          [run_cell(cv, _macro_keys(c), P.to_percent(t4["average"][c], unit), with_ci=c == "accuracy")
                           for c in t4["columns"]], cv.name if cv else ""))
    table.notes.append("Needs a CV folder of resnet34_improved; paper fold k is btc's fold-(k−1). Precision, recall, "
                       "specificity and F1 are macro averages.")
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
        table.rows.append(Row([label, run.name if run else ""],
                              [run_cell(run, _macro_keys(c), P.to_percent(pub[c], unit), with_ci=c == "accuracy")
                               for c in t5["columns"]], run.name if run else ""))
    table.notes.append("Precision, recall, specificity and F1 are macro averages.")
    tables.append(table)
    return tables, [r for r in runs if id(r) not in used]


def _macro_keys(metric: str) -> tuple[str, ...]:
    return (metric,) if metric in ("accuracy", "kappa", "loss") else ("macro", metric)


def _fold_view(cv: Run, fold: int, metrics: dict[str, Any]) -> Run:
    """One fold of a CV as a Run (its own metrics and test predictions, hence its own CI)."""
    predictions = cv.predictions[cv.predictions["fold"] == f"fold-{fold}"]
    view = Run(path=cv.path / f"fold-{fold}", name=f"{cv.name}/fold-{fold}", kind="train", config=cv.config,
               metrics=metrics, std=None, folds=[], n_folds=0, complete=True, protocol=cv.protocol,
               predictions=predictions)
    view.ci = bootstrap_accuracy_ci(view.correct, n_boot=N_BOOT, seed=0)
    return view


# --------------------------------------------------------------------------- paper 004


def _last_epoch(run: Run) -> dict[str, float] | None:
    """Training accuracy and loss of the last epoch (a CV: mean over its folds)."""
    dirs = [run.path] if run.kind == "train" else [run.path / f"fold-{f['fold']}" for f in run.folds]
    rows = []
    for d in dirs:
        if (d / "history.csv").is_file():
            history = pd.read_csv(d / "history.csv")
            if len(history):
                rows.append(history.iloc[-1])
    if not rows:
        return None
    return {"train_accuracy": float(np.mean([r["train_accuracy"] for r in rows])),
            "train_loss": float(np.mean([r["train_loss"] for r in rows]))}


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
        table.rows.append(Row([pub["label"], run.name if run else ""], cells, run.name if run else ""))
        if run is not None and run.config.get("lr") not in (None, pub["lr"]):
            table.notes.append(f"{run.name}: lr {run.config['lr']:g}, the paper's is {pub['lr']:g}.")
    table.notes.append("Rows: resnet18_transfer runs by optimiser (recipes paper004: SGD, paper004-nadam). Test loss: mean "
                       "cross-entropy on the test images; train accuracy / loss: the last epoch's (history.csv), "
                       "as the paper reports them.")
    return [table], left


# --------------------------------------------------------------------------- generic


GENERIC_COLUMNS = (("Accuracy", ("accuracy",), "percent"), ("Kappa", ("kappa",), "number"),
                   ("AUC", ("auc",), "number"), ("Precision", ("macro", "precision"), "percent"),
                   ("Recall", ("macro", "recall"), "percent"), ("Specificity", ("macro", "specificity"), "percent"),
                   ("F1", ("macro", "f1"), "percent"), ("Loss", ("loss",), "loss"))


def generic_table(runs: list[Run]) -> Table:
    table = Table(key="runs", title="Comparison of the given runs", source="", label_columns=["Run", "Model", "Task"],
                  columns=[c for c, _, _ in GENERIC_COLUMNS])
    for run in runs:
        cells = [run_cell(run, keys, None, kind=kind, with_ci=name == "Accuracy", compare=False)
                 for name, keys, kind in GENERIC_COLUMNS]
        table.rows.append(Row([run.name, run.model, run.task], cells, run.name))
    table.notes.append("Precision, recall, specificity and F1 are macro averages; a CV folder shows mean ± std over "
                       "its folds and the CI of its pooled out-of-fold predictions.")
    return table


BUILDERS = {"001": tables_001, "002": tables_002, "003": tables_003, "004": tables_004}
TITLES = {"001": "Paper 001 (ResNeSAt): Tables III and IV",
          "002": "Paper 002 (DSConv-CBAM): Table 3",
          "003": "Paper 003 (improved ResNet34): Tables 2, 3, 4 and 5",
          "004": "Paper 004 (ResNet18 transfer learning): accuracy and loss per optimiser"}


# --------------------------------------------------------------------------- comparisons, provenance


def compare_runs(runs: list[Run]) -> list[Comparison]:
    """McNemar's test for every pair of runs tested on the same images (matched by path)."""
    out = []
    for a, b in combinations(runs, 2):
        pa, pb = a.predictions, b.predictions
        if len(pa) != len(pb) or set(pa["path"]) != set(pb["path"]) or pa["path"].duplicated().any():
            out.append(Comparison(a.name, b.name, None, "not paired (different test images)"))
            continue
        aligned = pb.set_index("path").loc[pa["path"]]
        correct_b = (aligned["label"] == aligned["predicted"]).to_numpy()
        out.append(Comparison(a.name, b.name, mcnemar(a.correct, correct_b)))
    return out


def protocol_text(run: Run) -> str:
    """The split protocol, saying whether it is the paper's split or the leak-free one."""
    protocol = run.protocol or "unknown"
    if "split_dedup" in protocol:
        return f"leak-free ({protocol})"
    if "'split'" in protocol:
        return f"paper's split ({protocol})"
    return protocol


def _distinct(run: Run, key: str) -> str:
    values = list(dict.fromkeys(str(c.get(key, "")) for c in (run.fold_configs or [run.config])))
    values = [v for v in values if v]
    return "; ".join(values) if values else "–"


def provenance(run: Run) -> dict[str, str]:
    """What produced a run: data, split protocol, device, seed, btc version, epochs, image size."""
    c = run.config
    low, high = run.ci
    n = len(run.predictions)
    folds = ""
    if run.kind == "cv":
        folds = f"{len(run.folds)} of {run.n_folds} folds" + ("" if run.complete else " (incomplete)")
    return {
        "run": run.name,
        "folder": str(run.path),
        "kind": "CV, " + folds if run.kind == "cv" else "train",
        "model": run.model or "–",
        "recipe": str(c.get("recipe", "")) or "–",
        "task": run.task or "–",
        "data": f"{c.get('dataset', '–')} ({c.get('data', '–')})",
        "protocol": protocol_text(run),
        "device": _distinct(run, "device_name"),
        "seed": _distinct(run, "seed"),
        "btc version": _distinct(run, "btc_version"),
        "epochs": _distinct(run, "epochs"),
        "image size": _distinct(run, "image_size"),
        "test images": str(n),
        "accuracy (95 % CI)": ("–" if not n else
                               f"{run.pooled_accuracy * 100:.2f} [{low * 100:.2f}, {high * 100:.2f}]"
                               + (" pooled over folds" if run.kind == "cv" else "")),
    }


# --------------------------------------------------------------------------- entry points


def build_report(paths: list[Path], paper: str | None = None, plots: bool = True) -> Report:
    """The report's content (tables, provenance, comparisons) for run / CV folders."""
    paper = normalize_paper(paper)
    if not paths:
        raise BtcError("give at least one run or CV folder")
    runs = load_runs(paths, plots=plots)
    notes = []
    if paper is None:
        tables, left = [generic_table(runs)], []
        title = "btc report: comparison of runs"
    else:
        tables, left = BUILDERS[paper](runs)
        title = f"btc report: {TITLES[paper]}"
        for run in left:
            notes.append(f"{run.name} ({run.model or '?'}, task {run.task or '?'}, {run.kind}) is in none of paper "
                         f"{paper}'s tables.")
    for run in runs:
        if run.kind == "cv" and not run.complete:
            notes.append(f"{run.name}: only {len(run.folds)} of {run.n_folds} folds have finished.")
        if run.plot_error:
            notes.append(f"{run.name}: {run.plot_error}")
    return Report(title=title, paper=paper, runs=runs, tables=tables, comparisons=compare_runs(runs), notes=notes)


def normalize_paper(paper: str | None) -> str | None:
    if paper is None:
        return None
    text = str(paper).strip()
    key = text.zfill(3) if re.fullmatch(r"\d{1,3}", text) else text
    if key not in BUILDERS:
        raise BtcError(f"unknown --paper '{paper}': choose one of {', '.join(BUILDERS)}")
    return key


def normalize_format(fmt: str) -> str:
    key = str(fmt).strip().lower().lstrip(".")
    key = {"markdown": "md", "latex": "tex", "htm": "html"}.get(key, key)
    if key not in FORMATS:
        raise BtcError(f"unknown --format '{fmt}': choose one of {', '.join(FORMATS)}")
    return key


def report_command(runs: list[Path], paper: str | None = None, fmt: str = "md", out: Path | None = None) -> str:
    """`btc report`: render the report and write it to `out` (atomically) or to stdout."""
    from btc.io import atomic_write_text
    from btc.report.render import render

    fmt = normalize_format(fmt)
    paper = normalize_paper(paper)
    report = build_report([Path(p) for p in runs], paper, plots=fmt in ("md", "html"))
    text = render(report, fmt, out=out)
    if out is not None:
        atomic_write_text(out, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return text


