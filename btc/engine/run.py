"""`btc train` and `btc cv`: resolve the config, open the dataset, run, print a summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from btc.data.manifest import load_dataset
from btc.engine import distributed
from btc.engine.config import TrainConfig, resolve_config
from btc.engine.cv import cross_validate
from btc.engine.runs import TaskData, add_validation, manifest_roles, train_run

out = Console()


def default_run_dir(config: TrainConfig, kind: str) -> Path:
    stamp = distributed.broadcast(time.strftime("%Y%m%d-%H%M%S"))  # one folder for all processes
    return Path("runs") / f"{config.model}-{config.task}-{kind}-{stamp}"


def _config(model: str, recipe: str | None, task: str, device: str, seed: int,
            overrides: dict[str, Any]) -> TrainConfig:
    return resolve_config(model, recipe, task, {**overrides, "device": device, "seed": seed})


def metrics_table(title: str, rows: list[tuple[str, dict[str, Any]]]) -> Table:
    table = Table(title=title)
    for column in ("run", "accuracy", "kappa", "auc", "macro precision", "macro recall",
                   "macro specificity", "macro F1"):
        table.add_column(column, justify="right" if column != "run" else "left")

    def fmt(value: Any) -> str:
        return "–" if value is None else f"{value:.4f}"

    for name, m in rows:
        macro = m.get("macro", {})
        table.add_row(name, fmt(m.get("accuracy")), fmt(m.get("kappa")), fmt(m.get("auc")),
                      fmt(macro.get("precision")), fmt(macro.get("recall")),
                      fmt(macro.get("specificity")), fmt(macro.get("f1")))
    return table


@distributed.in_session
def train_command(*, data: Path, model: str, recipe: str | None, task: str, device: str, seed: int,
                  out: Path | None, resume: bool, weights: Path | None, quiet: bool,
                  overrides: dict[str, Any]) -> dict[str, Any]:
    config = _config(model, recipe, task, device, seed, overrides)
    task_data = TaskData.from_dataset(load_dataset(data), task)
    run_dir = out or default_run_dir(config, "train")
    roles, protocol = manifest_roles(task_data, config)
    roles = add_validation(task_data, roles, config)
    metrics = train_run(task_data, roles, config, run_dir, protocol=protocol, resume=resume,
                        weights=weights, pretrained_required=overrides.get("pretrained") is True,
                        quiet=quiet)
    _print(metrics_table(f"{model} on {data} ({task}), test split", [(str(run_dir), metrics)]), quiet)
    _print(f"run folder: {run_dir}", quiet)
    return metrics


@distributed.in_session
def cv_command(*, data: Path, model: str, folds: int, fold: int | None, group_by: str,
               recipe: str | None, task: str, device: str, seed: int, out: Path | None,
               weights: Path | None, quiet: bool, overrides: dict[str, Any],
               parallel_folds: int = 1) -> dict[str, Any]:
    config = _config(model, recipe, task, device, seed, overrides)
    task_data = TaskData.from_dataset(load_dataset(data), task)
    cv_dir = out or default_run_dir(config, f"cv{folds}")
    result = cross_validate(task_data, config, cv_dir, k=folds, fold=fold, group_by=group_by,
                            weights=weights, pretrained_required=overrides.get("pretrained") is True,
                            quiet=quiet, parallel_folds=parallel_folds)
    rows = [(f"fold {f['fold']}", f["metrics"]) for f in result["folds"]]
    if result["folds"]:
        rows.append(("mean", result["mean"]))
        rows.append(("std", result["std"]))
    state = "complete" if result["complete"] else f"{len(result['folds'])}/{result['n_folds']} folds done"
    _print(metrics_table(f"{model} {result['protocol']} CV on {data} ({task}) — {state}", rows), quiet)
    _print(f"cv folder: {cv_dir} (cv.json)", quiet)
    return result


def two_stage_command(stage1: Path, stage2: Path, *, out: Path, device: str, batch_size: int,
                      quiet: bool) -> dict[str, Any]:
    from btc.engine.two_stage import two_stage

    result = two_stage(stage1, stage2, out, device=device, batch_size=batch_size)
    s1, s2 = result["stage1"], result["stage2"]
    title = (f"two-stage {s1['model']} ({s1['task']}) → {s2['model']} ({s2['task']}), "
             f"routing '{result['route']}': {result['images']} images, {result['routed_to_stage2']} "
             f"routed to stage 2, {result['excluded']} excluded")
    if "fold_results" in result:
        rows = [(f"fold {k}", f["metrics"]) for k, f in zip(result["folds"], result["fold_results"], strict=True)]
        rows += [("mean", result["mean"]), ("std", result["std"])]
    else:
        rows = [(str(out), result["metrics"])]
    _print(metrics_table(title, rows), quiet)
    _print(f"two-stage folder: {out} (two_stage.json)", quiet)
    return result


def _print(obj: Any, quiet: bool) -> None:
    if not quiet and distributed.current().is_writer:
        out.print(obj)
