"""`btc train`: resolve the config, open the dataset, train and evaluate one run, show it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from btc.commands.results import metrics_table, one_line
from btc.commands.ui import note, out, progress_for
from btc.data.manifest import load_dataset
from btc.engine import distributed
from btc.engine.config import TrainConfig, resolve_config
from btc.engine.protocols import add_validation, split_in_use, split_roles
from btc.engine.runs import TaskData, train_run
from btc.report.plots import write_missing_plots
from btc.runfolder import RunFolder


def default_run_dir(config: TrainConfig, kind: str) -> Path:
    stamp = distributed.broadcast(time.strftime("%Y%m%d-%H%M%S"))  # one folder for all processes
    return Path("runs") / f"{config.model}-{config.task}-{kind}-{stamp}"


def resolve(model: str, recipe: str | None, task: str, device: str, seed: int,
            overrides: dict[str, Any]) -> TrainConfig:
    return resolve_config(model, recipe, task, {**overrides, "device": device, "seed": seed})


def show(renderable: Any, *, quiet: bool = False) -> None:
    """Print on rank 0 only (under torchrun every process runs the command)."""
    if not quiet and distributed.current().is_writer:
        out.print(renderable)


def provenance_text(provenance: dict[str, Any]) -> str:
    """The run's provenance in a few lines (weights, data, protocol, device, deviations)."""
    weights = provenance.get("initial_weights") or {}
    source = weights.get("source", "random")
    if source not in ("random", "file"):
        source += f" ({'verified' if weights.get('verified') else 'not verified'} sha256 {str(weights.get('sha256', ''))[:12]})"
    elif source == "file":
        source = f"file {weights.get('file')} (sha256 {str(weights.get('sha256', ''))[:12]})"
    data = provenance.get("dataset") or {}
    lines = [f"initial weights: {source}",
             f"data: manifest sha256 {str(data.get('manifest_sha256', ''))[:12]}, crop {data.get('crop')}, "
             f"size {data.get('size')}",
             f"protocol: {provenance.get('protocol')}; device {provenance.get('device')}; seed {provenance.get('seed')}"]
    found = provenance.get("deviations") or []
    lines.append("paper's protocol: followed" if not found else
                 "deviations from the paper's protocol: " + "; ".join(found))
    return "\n".join(lines)


def deviation_suffix(provenance: dict[str, Any]) -> str:
    found = provenance.get("deviations")
    if found is None:
        return ""
    return " (paper's protocol)" if not found else f" (NOT the paper's protocol: {len(found)} deviation{'s' * (len(found) > 1)})"


def final_line(text: str) -> None:
    if distributed.current().is_writer:
        out.print(text)


@distributed.in_session
def run(*, data: Path, model: str, recipe: str | None, task: str, device: str, seed: int,
        out_dir: Path | None, resume: bool, force: bool = False, weights: Path | None, quiet: bool,
        overrides: dict[str, Any], offline: bool = False) -> dict[str, Any]:
    config = resolve(model, recipe, task, device, seed, overrides)
    task_data = TaskData.from_dataset(load_dataset(data), task)
    run_folder = RunFolder(out_dir or default_run_dir(config, "train"))
    roles, protocol = split_roles(task_data, config)
    if "test_fraction" in overrides and split_in_use(task_data, config) == "official" and not quiet:
        note(f"note: --test-fraction {config.test_fraction:g} has no effect: the test set is the dataset's "
             "official split (--set split=holdout draws a hold-out instead)")
    roles = add_validation(task_data, roles, config)
    progress = progress_for(quiet or not distributed.current().is_writer)
    with progress:
        metrics = train_run(task_data, roles, config, run_folder, protocol=protocol, resume=resume,
                            force=force, weights=weights, offline=offline,
                            progress=progress)
    if distributed.current().is_writer:
        write_missing_plots(run_folder)
    show(metrics_table(f"{model} on {data} ({task}), test split", [(str(run_folder.path), metrics)]), quiet=quiet)
    show(provenance_text(run_folder.read_config().get("provenance") or {}), quiet=quiet)
    final_line(f"run folder: {run_folder.path} — test {one_line(metrics)}"
               f"{deviation_suffix(run_folder.read_config().get('provenance') or {})}")
    return metrics

