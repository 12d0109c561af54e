"""`btc report` on hand-edited run folders: one line, never a traceback, never a rename.

The cases a hostile review found (session 5): a `folds.csv` edited to hold a fold 0 made the
report "migrate" the CV as btc 0.1's and rename its fold folders; `cv.json`, `metrics.json`,
`predictions.csv`, `config.yaml` and `history.csv` of the wrong structure or type gave
tracebacks or printed numbers out of range (a training accuracy of 500 %); a symlink loop gave
a traceback and a file was called "no such run folder".
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from btc.runfolder import CVFolder, RunFolder
from tests.conftest import run_cli
from tests.test_report import FOUR, write_cv, write_run


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile-report")
    return {"run": write_run(RunFolder(base / "run"), model="dsconv_cbam", classes=FOUR, seed=1).path,
            "cv": write_cv(CVFolder(base / "cv"), model="mlp", classes=FOUR, n_folds=3, seed=10).path}


def one_line_refusal(capsys, *args) -> str:
    code, out, err = run_cli(["report", *map(str, args)], capsys)
    assert code == 1 and out == "", (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_an_edited_folds_csv_is_never_renumbered(pristine, tmp_path, capsys):
    cv = shutil.copytree(pristine["cv"], tmp_path / "cv")
    frame = pd.read_csv(cv / "folds.csv")
    frame.loc[0, "fold"] = 0
    frame.to_csv(cv / "folds.csv", index=False)
    code, _, err = run_cli(["report", str(cv)], capsys)
    assert code == 0, err
    assert sorted(p.name for p in cv.glob("fold-*")) == ["fold-1", "fold-2", "fold-3"]  # not renamed
    assert pd.read_csv(cv / "folds.csv")["fold"].tolist() == frame["fold"].tolist()


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    result = change(data)
    path.write_text(json.dumps(data if result is None else result))


CV_JSON_EDITS = {
    "folds is a mapping": lambda d: d.update(folds={"a": 1}),
    "folds is a number": lambda d: d.update(folds=5),
    "a fold without its number": lambda d: d["folds"][0].pop("fold"),
    "a fold's metrics a text": lambda d: d["folds"][0].update(metrics="abc"),
    "a fold's metrics null": lambda d: d["folds"][0].update(metrics=None),
    "a fold entry null": lambda d: d["folds"].__setitem__(0, None),
    "a fold numbered 'one'": lambda d: d["folds"][0].update(fold="one"),
    "a fold numbered 10**400": lambda d: d["folds"][0].update(fold=10**400),
    "mean a list": lambda d: d.update(mean=[1, 2]),
    "n_folds a text": lambda d: d.update(n_folds="three"),
    "n_folds negative": lambda d: d.update(n_folds=-3),
    "fewer n_folds than folds": lambda d: d.update(n_folds=2),
    "a fold twice": lambda d: d.update(folds=d["folds"] + [d["folds"][0]], n_folds=4),
    "per_class entry a text": lambda d: d["folds"][0]["metrics"]["per_class"].update(glioma="x"),
}


@pytest.mark.parametrize("edit", list(CV_JSON_EDITS))
def test_a_cv_json_of_another_structure_is_one_line(pristine, tmp_path, capsys, edit):
    cv = shutil.copytree(pristine["cv"], tmp_path / "cv")
    _edit_json(cv / "cv.json", CV_JSON_EDITS[edit])
    assert "cv.json" in one_line_refusal(capsys, cv)


def test_a_deeply_nested_cv_json_is_one_line(pristine, tmp_path, capsys):
    cv = shutil.copytree(pristine["cv"], tmp_path / "cv")
    (cv / "cv.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "unreadable" in one_line_refusal(capsys, cv)


METRICS_EDITS = {
    "loss": 10**400,
    "confusion_matrix": [[10**400]],
    "classes": 5,
    "per_class": {"glioma": "x"},
}


@pytest.mark.parametrize("field", list(METRICS_EDITS))
def test_metrics_of_another_type_are_one_line(pristine, tmp_path, capsys, field):
    run = shutil.copytree(pristine["run"], tmp_path / "run")
    _edit_json(run / "metrics.json", lambda d: d.update({field: METRICS_EDITS[field]}))
    err = one_line_refusal(capsys, run)
    assert "metrics.json" in err and field in err


@pytest.mark.parametrize("cell", ["abc", "", "7.5", "-3"])
def test_a_probability_that_is_no_probability_is_one_line(pristine, tmp_path, capsys, cell):
    run = shutil.copytree(pristine["run"], tmp_path / "run")
    frame = pd.read_csv(run / "predictions.csv", keep_default_na=False, dtype=str)
    frame.loc[3, "prob_glioma"] = cell
    frame.to_csv(run / "predictions.csv", index=False)
    err = one_line_refusal(capsys, run)
    assert "predictions.csv: row 5" in err and "probability" in err


CONFIG_EDITS = {
    "provenance.deviations": ("provenance", "deviations", 5),
    "provenance.dataset": ("provenance", "dataset", "x"),
    "provenance.initial_weights": ("provenance", "initial_weights", "x"),
    "provenance": (None, "provenance", "abc"),
    "lr": (None, "lr", "fast"),
    "classes": (None, "classes", 5),
}


@pytest.mark.parametrize("field", list(CONFIG_EDITS))
def test_a_config_of_another_type_is_one_line(pristine, tmp_path, capsys, field):
    run = shutil.copytree(pristine["run"], tmp_path / "run")
    config = yaml.safe_load((run / "config.yaml").read_text())
    parent, key, value = CONFIG_EDITS[field]
    (config[parent] if parent else config)[key] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    err = one_line_refusal(capsys, run, "--paper", "004")
    assert "config.yaml" in err and f"{field} is" in err


@pytest.mark.parametrize("column, value", [("train_accuracy", 5), ("train_loss", -7), ("epoch", "inf"),
                                           ("train_accuracy", "abc")])
def test_history_values_out_of_range_are_one_line(pristine, tmp_path, capsys, column, value):
    run = shutil.copytree(pristine["run"], tmp_path / "run")
    frame = pd.read_csv(run / "history.csv", keep_default_na=False, dtype=str)
    frame.loc[len(frame) - 1, column] = str(value)
    frame.to_csv(run / "history.csv", index=False)
    err = one_line_refusal(capsys, run)
    assert "history.csv" in err and column in err


def test_a_history_without_validation_values_is_reported(pristine, tmp_path, capsys):
    run = shutil.copytree(pristine["run"], tmp_path / "run")  # its val_* cells are empty
    assert pd.read_csv(run / "history.csv")["val_loss"].isna().all()
    code, _, err = run_cli(["report", str(run)], capsys)
    assert code == 0, err


def test_a_symlink_loop_and_a_file_are_one_line(tmp_path, capsys):
    os.symlink(tmp_path / "loop2", tmp_path / "loop1")
    os.symlink(tmp_path / "loop1", tmp_path / "loop2")
    assert "not a usable path" in one_line_refusal(capsys, tmp_path / "loop1")
    (tmp_path / "afile").write_text("x")
    assert "a file, not a run folder" in one_line_refusal(capsys, tmp_path / "afile")
