"""Paper 001's Fig. 3, the baseline comparison, from btc's runs: a table with btc's values only.

Paper 001 §III-B ("Existing Classification Networks Comparison", Fig. 3) trains the networks of
its references [1]–[7] on 80 % of the images, tests them on the other 20 % and draws their test
accuracy for (a) the presence of a tumour and (b) its source. The figure is a chart and the paper
prints no value for it (`papers.PAPER_001_FIGURE_3` holds its description, not numbers), so this
table holds btc's values alone: every cell's published side is "–", and a note says so.

Rows: the train runs (single 80/20 hold-out runs, not CVs) of btc's member of each family —
`vgg16`, `resnet50`, `resnext50`, `densenet121`, `seresnet50`, `sknet50`, `resnest50` — and of
the proposed `resnesat`, on the task of each panel (`presence`, `source`), in the figure's order;
networks without a run are named in one note per panel instead of empty rows. Columns: accuracy
(with its 95 % CI) and the positive class's recall, specificity, precision and F1 (as Tables III
and IV). A row follows paper 001's protocol when its run does (its provenance's deviations) and
was trained with paper 001's recipe (a `vgg16` run with its default, paper 003's, does not).

`BUILDERS` and `TITLES` are `tables.py`'s, with paper 001's report extended by this table (placed
first, as the figure comes before Tables III and IV): `build.py` takes them from here.
"""

from __future__ import annotations

from btc.report import papers as P
from btc.report.model import Cell, Conformity, Row, Table
from btc.report.runs import Run
from btc.report.tables import BUILDERS as PAPER_BUILDERS
from btc.report.tables import TITLES as PAPER_TITLES
from btc.report.tables import run_cell, tables_001

FIGURE = P.PAPER_001_FIGURE_3
COLUMNS = ("accuracy", "recall", "specificity", "precision", "f1")


def conformity(run: Run) -> Conformity:
    """The run's deviations from paper 001's protocol, plus a recipe other than paper 001's."""
    found = run.deviations
    recipe = run.config.get("recipe")
    if recipe is not None and recipe != FIGURE["recipe"]:
        extra = f"recipe {recipe} (Fig. 3: paper 001's protocol, recipe {FIGURE['recipe']})"
        found = [*(found or []), extra]
    return Conformity(None if found is None else tuple(found))


def _cells(run: Run, positive: str) -> list[Cell]:
    keys = {c: ("accuracy",) if c == "accuracy" else ("per_class", positive, c) for c in COLUMNS}
    return [run_cell(run, keys[c], None, with_ci=c == "accuracy") for c in COLUMNS]


def figure_3(runs: list[Run]) -> tuple[Table, list[Run]]:
    """The Fig. 3 table from `runs` and the runs it shows."""
    networks = FIGURE["networks"]
    table = Table(key="001-fig3", title=FIGURE["title"], source=FIGURE["where"],
                  label_columns=["Task", "Network", "Reference", "Run"],
                  columns=[P.METRIC_LABELS[c] for c in COLUMNS])
    used: list[Run] = []
    for panel in FIGURE["panels"].values():
        shown = [r for r in runs if r.kind == "train" and r.task == panel["task"] and r.model in networks]
        shown.sort(key=lambda r: list(networks).index(r.model))
        for run in shown:
            positive = panel["positive"]
            if positive not in run.classes and run.classes:
                table.notes.append(f"{run.name}: no class '{positive}'; '{run.classes[0]}' is taken as the "
                                   "positive class")
                positive = run.classes[0]
            labels = [panel["label"], *networks[run.model], run.name]
            table.rows.append(Row(labels, _cells(run, positive), run.name, conformity(run)))
        used += shown
        missing = [label for m, (label, _) in networks.items() if m not in {r.model for r in shown}]
        if missing:
            table.notes.append(f"{panel['label']}: no run given for {', '.join(missing)}.")
    skipped = [r.name for r in runs if r.kind == "cv" and r.model in networks
               and r.task in {p["task"] for p in FIGURE["panels"].values()}]
    if skipped:
        table.notes.append(f"Not in Fig. 3 (a CV, not one 80/20 split): {', '.join(skipped)}.")
    table.notes.append("Paper 001 prints no numbers for Fig. 3 (a chart; the text gives none): every value here is "
                       "btc's, and the paper's side of each cell is \"–\", not published. The paper reads the "
                       f"figure as: {FIGURE['finding']}")
    positives = ", ".join(f"'{p['positive']}' for {p['task']}" for p in FIGURE["panels"].values())
    table.notes.append(f"The references name families, not depths: btc's member of each is the Network column "
                       f"(btc models: {', '.join(networks)}). Recall, specificity, precision and F1 are those of "
                       f"the positive class ({positives}), as in Tables III and IV.")
    return table, used


def tables_001_with_figure_3(runs: list[Run]) -> tuple[list[Table], list[Run]]:
    """Paper 001's report: Fig. 3, then Tables III and IV; the runs in none of them."""
    figure, used = figure_3(runs)
    tables, left = tables_001(runs)
    return [figure, *tables], [r for r in left if not any(r is u for u in used)]


BUILDERS = {**PAPER_BUILDERS, "001": tables_001_with_figure_3}
TITLES = {**PAPER_TITLES, "001": "Paper 001 (ResNeSAt): Fig. 3, Tables III and IV"}
