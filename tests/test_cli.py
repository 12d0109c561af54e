"""The command-line contract: every subcommand exists with help and an example; errors are one line."""

import os
import re
import subprocess
import sys

import pytest

from btc.engine.config import parse_set_options
from btc.errors import BtcError
from tests.conftest import run_cli

COMMANDS = ["prepare", "audit", "models", "train", "cv", "benchmark", "report", "predict", "export", "demo"]


def test_help_lists_every_command(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for command in COMMANDS:
        assert command in out
    code, out, _ = run_cli(["prepare", "--help"], capsys)
    assert all(k in out for k in ("kaggle", "figshare", "folder", "phantom"))


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "prepare"] + ["prepare phantom", "prepare kaggle"])
def test_each_command_has_help_with_example(command, capsys):
    code, out, _ = run_cli([*command.split(), "--help"], capsys)
    assert code == 0 and "Example" in out


def test_python_dash_m_and_version():
    result = subprocess.run([sys.executable, "-m", "btc", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("btc ")


def test_set_options_are_typed():
    assert parse_set_options(["lr=0.01", "vflip=0.5", "split-column=split_dedup", "compile=true"]) == {
        "lr": 0.01, "vflip": 0.5, "split_column": "split_dedup", "compile": True}
    with pytest.raises(BtcError, match="FIELD=VALUE"):
        parse_set_options(["nonsense"])
    with pytest.raises(BtcError, match="expects a number"):
        parse_set_options(["epochs=many"])


# --------------------------------------------------------------------------- issue 18: the first hour without friction


def _commands(group=None, path=()):
    """(path, click command) of every btc command, subcommands included."""
    from typer.core import TyperGroup
    from typer.main import get_command

    from btc.cli import app

    group = group or get_command(app)
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


ALL_COMMANDS = list(_commands())


@pytest.mark.parametrize("path, command", ALL_COMMANDS, ids=[" ".join(p) for p, _ in ALL_COMMANDS])
def test_help_shows_every_option_text_intact_no_bool_type_and_upper_metavars(path, command, capsys, monkeypatch):
    """Rich markdown ate `<model>-<task>` in `(default: runs/<model>-<task>-<time>)`; flags showed a
    `<bool>` type; usage lines read `{src} {OUT}` (issue 18.3)."""
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping: each help text on one line
    code, out, _ = run_cli([*path, "--help"], capsys)
    assert code == 0
    flat = re.sub(r"\s+", " ", out.replace("│", " "))
    for param in command.params:
        if param.help:
            assert re.sub(r"\s+", " ", param.help.replace("`", "")) in flat, (param.name, param.help)
    assert "<bool>" not in out
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert "{" not in usage
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    for argument in arguments:
        name = argument.metavar or argument.name
        assert name.isupper() and name in usage, usage


def test_default_run_folders_are_spelled_out(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    assert "(default: runs/MODEL-TASK-TIME)" in run_cli(["train", "--help"], capsys)[1]
    assert "(default: runs/MODEL-TASK-cvK-TIME)" in run_cli(["cv", "--help"], capsys)[1]


def test_undefined_metrics_are_none_without_a_warning():
    """scikit-learn's UndefinedMetricWarning interrupted the CV output (issue 18.5); the values
    stay what they were: None for an undefined kappa or AUC."""
    import warnings

    import numpy as np

    from btc.engine.metrics import compute_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one_class = compute_metrics(np.array([0, 0, 0]), np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]]), ["a", "b"])
        missing = compute_metrics(np.array([2, 2]), np.array([[0.1, 0.1, 0.8], [0.2, 0.3, 0.5]]), ["a", "b", "c"])
    assert one_class["kappa"] is None and one_class["auc"] is None and one_class["accuracy"] == 1.0
    assert missing["auc"] is None and missing["accuracy"] == 1.0


@pytest.fixture(scope="module")
def cv_output(phantom_dir, tmp_path_factory):
    """`btc cv` on the phantom data, its stdout and stderr captured as a pipe would get them."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    folder = tmp_path_factory.mktemp("cv") / "cv"
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = _main(["cv", "--data", str(phantom_dir), "--model", "small_cnn", "--folds", "3", "--epochs", "1",
                      "--image-size", "32", "--out", str(folder), "--set", "val_fraction=0"])
    return code, out.getvalue(), err.getvalue(), folder


def _main(args: list[str]) -> int:
    from btc.cli import main

    try:
        main(args)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 0
    return 0


def test_cv_output_has_no_warning_and_whole_table_headings(cv_output):
    """No library warning in the middle of the output; piped, the metrics table keeps its headings
    whole instead of squeezing them into 80 columns (issue 18.5)."""
    code, out, err, _ = cv_output
    assert code == 0, err
    assert "Warning" not in out + err and "warn" not in err.lower()
    header = next(line for line in out.splitlines() if "accuracy" in line and "kappa" in line)
    for heading in ("accuracy", "kappa", "AUC", "macro precision", "macro recall", "macro specificity", "macro F1"):
        assert heading in header
    assert "…" not in out
    rows = [line for line in out.splitlines() if line.startswith("│ fold")]
    assert [line.split("│")[1].strip() for line in rows] == ["fold 1", "fold 2", "fold 3"]  # folds 1…K


def test_piped_consoles_are_wide_and_soft_wrapped():
    from btc.commands import ui

    for console in (ui.out, ui.err):
        assert console.soft_wrap and (console.is_terminal or console.width == ui.PIPE_WIDTH
                                      or "COLUMNS" in os.environ)


def test_quiet_still_prints_the_one_line_result(phantom_dir, cv_output, tmp_path, capsys):
    """-q hides progress but not the final result (issue 18.5): train, cv, two-stage."""
    _, _, _, folder = cv_output
    code, out, err = run_cli(["cv", "--data", phantom_dir, "--model", "small_cnn", "--folds", "3", "--epochs", "1",
                              "--image-size", "32", "--out", folder, "--set", "val_fraction=0", "-q"], capsys)
    assert code == 0, err
    assert out.splitlines()[-1].startswith(f"cv folder: {folder} — complete: accuracy ")
    assert "│" not in out  # no table
    runs = {}
    for task in ("presence", "tumor_type"):
        runs[task] = tmp_path / task
        code, out, err = run_cli(["train", "--data", phantom_dir, "--model", "small_cnn", "--task", task, "--epochs",
                                  "1", "--image-size", "32", "--out", runs[task], "-q"], capsys)
        assert code == 0, err
        assert out.startswith(f"run folder: {runs[task]} — test accuracy ") and out.count("\n") == 1
    code, out, err = run_cli(["two-stage", runs["presence"], runs["tumor_type"], "--out", tmp_path / "chain",
                              "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    assert out.startswith(f"two-stage folder: {tmp_path / 'chain'} — accuracy ") and out.count("\n") == 1


def test_folds_are_numbered_1_to_k(cv_output, phantom_dir, capsys):
    """Folders, folds.csv, cv.json and --fold count folds 1…K (issue 18.4)."""
    import json

    import pandas as pd

    _, _, _, folder = cv_output
    assert sorted(p.name for p in folder.glob("fold-*")) == ["fold-1", "fold-2", "fold-3"]
    assert sorted(pd.read_csv(folder / "folds.csv")["fold"].unique()) == [1, 2, 3]
    assert [f["fold"] for f in json.loads((folder / "cv.json").read_text())["folds"]] == [1, 2, 3]
    code, _, err = run_cli(["cv", "--data", phantom_dir, "--model", "small_cnn", "--folds", "3", "--fold", "4",
                            "--out", folder], capsys)
    assert code == 1 and "folds 1..3" in err
    code, _, err = run_cli(["cv", "--data", phantom_dir, "--model", "small_cnn", "--fold", "0", "--out", folder], capsys)
    assert code != 0 and "--fold" in err


def test_official_cvind_folds_are_fold_1_to_5(tmp_path, capsys):
    """cvind.mat numbers its folds 1–5; btc's folders are fold-1 … fold-5 with the same images."""
    import pandas as pd

    from tests.conftest import shared_data

    src = shared_data("figshare-sample")
    data = tmp_path / "figshare"
    assert run_cli(["prepare", "figshare", src, data, "--size", "64", "-q"], capsys)[0] == 0
    out = tmp_path / "cv"
    code, _, err = run_cli(["cv", "--data", data, "--model", "small_cnn", "--protocol", "leak-free", "--folds", "5",
                            "--epochs", "1", "--image-size", "32", "--set", "val_fraction=0", "--out", out, "-q"],
                           capsys)
    assert code == 0, err
    manifest = pd.read_csv(data / "manifest.csv").set_index("path")
    assert sorted(p.name for p in out.glob("fold-*")) == [f"fold-{k}" for k in sorted(manifest["fold"].unique())]
    for k in range(1, 6):
        tested = pd.read_csv(out / f"fold-{k}" / "predictions.csv")["path"]
        assert (manifest.loc[tested, "fold"] == k).all()


def test_json_is_stdout_and_files_are_out(tmp_path, capsys):
    """--json: one JSON document on stdout in every command that has it; --out FILE writes (18.9)."""
    import json

    for args in (["models", "--json", "--models", "small_cnn"], ["weights", "list", "--json"],
                 ["benchmark", "--json", "--device", "cpu", "--models", "small_cnn", "--image-size", "32",
                  "--iters", "1", "--warmup", "0", "--batch-size", "2", "-q"]):
        code, out, err = run_cli(args, capsys)
        assert code == 0, err
        json.loads(out)
    target = tmp_path / "bench.json"
    code, out, err = run_cli(["benchmark", "--device", "cpu", "--models", "small_cnn", "--image-size", "32", "--iters",
                              "1", "--warmup", "0", "--batch-size", "2", "-q", "--out", target], capsys)
    assert code == 0 and json.loads(target.read_text())
    code, out, _ = run_cli(["models", "--models", "small_cnn"], capsys)
    assert "GMACs" in out and "GFLOPs" in out


def test_tumor_folder_names_give_the_tasks_and_stretching_is_said(tmp_path, capsys):
    """A `glioma_tumor/ meningioma_tumor/ no_tumor/ pituitary_tumor/` tree gets presence and
    tumor_type (issue 18.2); --size says how many non-square images it stretched."""
    import cv2
    import yaml

    from btc.data.sources.phantom import generate

    names = {"glioma": "glioma_tumor", "meningioma": "meningioma_tumor", "notumor": "no_tumor",
             "pituitary": "pituitary_tumor"}
    for i, (_, label, _, _, image) in enumerate(generate(per_class=6, size=64, per_patient=1, seed=2)):
        folder = tmp_path / "tree" / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), image[:, 8:] if i % 2 else image)  # every other one 64 × 56
    code, out, err = run_cli(["prepare", "folder", tmp_path / "tree", tmp_path / "data", "--size", "48"], capsys)
    assert code == 0, err
    info = yaml.safe_load((tmp_path / "data" / "dataset.yaml").read_text())
    assert info["tasks"]["presence"] == {"tumor": ["glioma_tumor", "meningioma_tumor", "pituitary_tumor"],
                                         "no_tumor": ["no_tumor"]}
    assert set(info["tasks"]["tumor_type"]) == {"glioma_tumor", "meningioma_tumor", "pituitary_tumor"}
    assert "12 of 24 images were not square and were stretched to 48x48 (aspect ratio not kept)" in err
    assert "12 of 24 not square: stretched, aspect ratio not kept" in info["preprocessing"]["image"]
    code, out, err = run_cli(["train", "--data", tmp_path / "data", "--model", "small_cnn", "--task", "presence",
                              "--epochs", "1", "--image-size", "32", "--set", "val_fraction=0",
                              "--out", tmp_path / "run", "-q"], capsys)
    assert code == 0, err


def test_tensorboard_mirrors_history(phantom_dir, tmp_path, capsys, monkeypatch):
    """--tensorboard writes each history.csv row as scalars; a fresh start replaces the events."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from btc.engine import tensorboard as tb
    from btc.runfolder import RunFolder

    monkeypatch.delenv(tb.ENV, raising=False)
    run = tmp_path / "run"
    args = ["train", "--data", phantom_dir, "--model", "small_cnn", "--epochs", "2", "--image-size", "32",
            "--out", run, "--tensorboard", "-q"]
    for extra in ([], ["--force"]):
        code, _, err = run_cli(args + extra, capsys)
        assert code == 0, err
        tb.close()
        events = EventAccumulator(str(tb.log_dir(run)))
        events.Reload()
        history = RunFolder(run).read_history()
        for column, tag in (("train_loss", "loss/train"), ("val_accuracy", "accuracy/validation"), ("lr", "lr")):
            logged = events.Scalars(tag)
            assert [e.step for e in logged] == history["epoch"].tolist()
            assert [e.value for e in logged] == pytest.approx(history[column].tolist(), rel=1e-6)
        assert len(list(tb.log_dir(run).glob(f"{tb.EVENTS_PREFIX}*"))) == 1  # --force replaced the first run's


def test_tensorboard_without_the_package_is_one_line(monkeypatch, capsys, phantom_dir, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    code, out, err = run_cli(["train", "--data", phantom_dir, "--model", "small_cnn", "--out", tmp_path / "r",
                              "--tensorboard"], capsys)
    assert code == 1 and err.strip() == ("error: --tensorboard needs the tensorboard package: pip install -e "
                                         "'.[tensorboard]' (history.csv is written either way)")
    assert not (tmp_path / "r").exists()
