"""`btc cv`: K-fold cross-validation of one model; resumes unfinished folds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from btc.commands.results import metrics_table, one_line
from btc.commands.train import (
    default_run_dir,
    deviation_suffix,
    final_line,
    provenance_text,
    resolve,
    show,
)
from btc.commands.ui import note, progress_for
from btc.data.manifest import load_dataset
from btc.engine import distributed
from btc.engine.cv import CVResult, cross_validate
from btc.engine.protocols import LEAK_FREE, official_fold_count
from btc.engine.provenance import PAPER_CROSS_VALIDATES, recipe_config
from btc.engine.runs import TaskData
from btc.errors import BtcError
from btc.report.plots import write_missing_plots
from btc.runfolder import CVFolder


@distributed.in_session
def run(*, data: Path, model: str, folds: int | None, fold: int | None,
        recipe: str | None, task: str, device: str, seed: int, out_dir: Path | None,
        weights: Path | None, quiet: bool, overrides: dict[str, Any],
        parallel_folds: int = 1, force: bool = False, offline: bool = False) -> CVResult:
    if folds is not None and overrides.get("folds", folds) != folds:
        raise BtcError(f"--folds {folds} and --set folds={overrides['folds']} disagree: give one")
    if folds is None and "folds" in overrides:
        folds = int(overrides["folds"])
    if folds is None and out_dir is not None and CVFolder(out_dir).folds_path.is_file():
        folds = CVFolder(out_dir).read_folds().n_folds  # continue the CV in the folder
    task_data = TaskData.from_dataset(load_dataset(data), task)
    config = resolve(model, recipe, task, device, seed, {**overrides, **({"folds": folds} if folds else {})})
    official = official_fold_count(task_data) if config.protocol == LEAK_FREE else None
    if folds is None and official is not None and official != config.folds:
        folds = official  # leak-free uses the dataset's patient-wise folds (Figshare's cvind)
        config = resolve(model, recipe, task, device, seed, {**overrides, "folds": folds})
        if not quiet:
            note(f"note: {folds} folds, the dataset's official patient-wise folds")
    paper = recipe_config(config)
    if not quiet and paper.paper and paper.paper not in PAPER_CROSS_VALIDATES:
        note(f"note: paper {paper.paper} does not cross-validate (it tests on the dataset's official split); "
             "this CV is recorded as a deviation")
    elif not quiet and folds is not None and folds != paper.folds:
        note(f"note: --folds {folds}; the paper's protocol has {paper.folds} folds (recorded as a deviation)")
    cv_dir = out_dir or default_run_dir(config, f"cv{config.folds}")
    progress = progress_for(quiet or not distributed.current().is_writer)
    with progress:
        result = cross_validate(task_data, config, cv_dir, fold=fold,
                                weights=weights, offline=offline,
                                progress=progress, parallel_folds=parallel_folds, force=force)
    summary = result.summary
    if distributed.current().is_writer:
        for f in summary.folds:
            write_missing_plots(result.folder.fold(f.fold))
        if summary.folds:
            write_missing_plots(result.folder)
    rows = [(f"fold {f.fold}", f.metrics) for f in summary.folds]
    if summary.folds:
        rows += [("mean", summary.mean), ("std", summary.std)]
    state = "complete" if summary.complete else f"{len(summary.folds)}/{summary.n_folds} folds done"
    show(metrics_table(f"{model} {summary.protocol} CV on {data} ({task}) — {state}", rows), quiet=quiet)
    spread = summary.std if len(summary.folds) > 1 else None  # no spread of a single fold
    result_text = one_line(summary.mean, spread) if summary.folds else "no fold finished yet"
    provenance = result.folder.fold(summary.folds[0].fold).read_config().get("provenance") or {} if summary.folds else {}
    if provenance:
        provenance = {**provenance, "protocol": summary.protocol}  # the CV's, not its first fold's
    if provenance:
        show(provenance_text(provenance), quiet=quiet)
    final_line(f"cv folder: {result.folder.path} — {state}: {result_text}{deviation_suffix(provenance)}")
    return result
