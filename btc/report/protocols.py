"""The same model under the paper's protocol and the leak-free protocol, side by side (issue 15).

For every pair of runs given to `btc report` that differ only in their protocol (same model,
task, dataset and seed; `config.yaml`'s `protocol`: `paper` or `leak-free`), one row: the
accuracy under each with its 95 % bootstrap CI, the difference paper − leak-free with its 95 % CI
(the two test sets resampled independently: under leak-free the test set loses the images that
have a twin in training), and McNemar's exact test on the test images both runs predicted.
"""

from __future__ import annotations

import numpy as np

from btc.report.model import Cell, Row, Table
from btc.report.runs import Run
from btc.report.stats import bootstrap_accuracy_ci, mcnemar

PROTOCOLS = ("paper", "leak-free")


def _protocol(run: Run) -> str:
    values = {str(c.get("protocol", "paper")) for c in run.configs}
    return values.pop() if len(values) == 1 and values <= set(PROTOCOLS) else ""


def _key(run: Run) -> tuple:
    config = run.config
    return (run.model, run.task, str(config.get("data", "")), config.get("seed"), run.kind)


def difference_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap CI of mean(a) − mean(b), resampling a and b independently."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diffs = a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1) - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1)
    low, high = np.quantile(diffs, [0.025, 0.975])
    return float(low), float(high)


def protocol_pairs(runs: list[Run]) -> list[tuple[Run, Run]]:
    """(paper run, leak-free run) pairs of the same model, task, data and seed."""
    by_key: dict[tuple, dict[str, Run]] = {}
    for run in runs:
        protocol = _protocol(run)
        if protocol:
            by_key.setdefault(_key(run), {}).setdefault(protocol, run)
    return [(found["paper"], found["leak-free"]) for found in by_key.values() if len(found) == 2]


def protocol_table(runs: list[Run]) -> Table | None:
    """The side-by-side table, or None when no pair of runs differs only in its protocol."""
    pairs = protocol_pairs(runs)
    if not pairs:
        return None
    table = Table(key="protocols", title="The paper's protocol and the leak-free protocol, side by side",
                  source="btc's runs", label_columns=["model", "task", "runs"],
                  columns=["Accuracy, paper's protocol", "Accuracy, leak-free", "Paper − leak-free",
                           "McNemar p (shared test images)"])
    for paper, free in pairs:
        a, b = paper.correct.astype(float), free.correct.astype(float)
        low, high = difference_ci(a, b)
        shared = sorted(set(paper.predictions.paths) & set(free.predictions.paths))
        ia = {p: i for i, p in enumerate(paper.predictions.paths)}
        ib = {p: i for i, p in enumerate(free.predictions.paths)}
        test = mcnemar(paper.correct[[ia[p] for p in shared]], free.correct[[ib[p] for p in shared]]) if shared else None
        cells = [
            Cell(value=100 * a.mean(), ci=tuple(100 * v for v in bootstrap_accuracy_ci(a)), compare=False),
            Cell(value=100 * b.mean(), ci=tuple(100 * v for v in bootstrap_accuracy_ci(b)), compare=False),
            Cell(value=100 * (a.mean() - b.mean()), ci=(100 * low, 100 * high), compare=False),
            Cell(value=None if test is None else test.p_value, kind="number", compare=False,
                 status="" if test is not None else "no shared test image"),
        ]
        table.rows.append(Row([paper.model, paper.task, f"{paper.name} / {free.name}"], cells, run=paper.name))
        if test is not None:
            table.notes.append(f"{paper.name} vs {free.name}: {test.n} shared test images, right under the paper's "
                               f"protocol only {test.b}, under leak-free only {test.c} (exact McNemar p {test.p_value:.4g}); "
                               f"test images {len(a)} vs {len(b)}.")
    table.notes.append("The leak-free test set lacks the images that have a twin (same patient, exact or "
                       "pixel-confirmed near duplicate) in training; the difference's 95 % CI resamples both test "
                       "sets independently.")
    return table
