"""How a run's metrics look on the screen: one table for train, cv and two-stage."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from btc.runfolder import SUMMARY_METRICS, metric_value


def metrics_table(title: str, rows: list[tuple[str, dict[str, Any]]]) -> Table:
    """One row per run / fold (fractions, as in metrics.json), the summary metrics as columns."""
    table = Table(title=title, title_justify="left")
    table.add_column("run")
    for _, name in SUMMARY_METRICS:
        table.add_column(name, justify="right")
    for name, metrics in rows:
        values = [metric_value(metrics, key) for key, _ in SUMMARY_METRICS]
        table.add_row(name, *("–" if v is None else f"{v:.4f}" for v in values))
    return table


def one_line(metrics: dict[str, Any], std: dict[str, Any] | None = None) -> str:
    """`accuracy 0.8125 ± 0.0312, kappa …, AUC …`: the final result under --quiet too."""
    parts = []
    for key, name in SUMMARY_METRICS[:3]:
        value = metric_value(metrics, key)
        if value is None:
            continue
        spread = metric_value(std or {}, key)
        parts.append(f"{name} {value:.4f}" + (f" ± {spread:.4f}" if spread is not None else ""))
    return ", ".join(parts)
