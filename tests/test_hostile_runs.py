"""Run folders under hostile use (issue 16): a user's files survive, a previous run is replaced
only with --force, changed options are refused, and every bad input ends in one line."""

from __future__ import annotations

import fcntl
import json
import os

import pytest

from btc.runfolder import LOCK, CVFolder, RunFolder
from tests.conftest import run_cli

TINY = ["--model", "small_cnn", "--image-size", "32", "--batch-size", "16", "--epochs", "1",
        "--device", "cpu", "-q"]


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def trained(phantom_dir, tmp_path_factory):
    """One finished train run (seed 0), reused read-only by several tests."""
    from btc.cli import main

    out = tmp_path_factory.mktemp("trained") / "run"
    try:
        main([str(a) for a in ["train", "--data", phantom_dir, *TINY, "--out", out]])
    except SystemExit as e:
        assert not e.code
    return out


def test_a_second_train_with_another_seed_is_refused_and_force_replaces(phantom_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--out", out], capsys)
    assert code == 0, err
    first = (out / "metrics.json").read_bytes()
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--seed", "1", "--out", out], capsys)
    assert code == 1 and "--force" in one_line(err) and "--resume" in err
    assert (out / "metrics.json").read_bytes() == first
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--seed", "1", "--resume", "--out", out], capsys)
    assert code == 1 and "another config (seed)" in one_line(err)
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--seed", "1", "--force", "--out", out], capsys)
    assert code == 0, err
    assert RunFolder(out).read_config()["seed"] == 1
    assert (out / "notes.txt").read_text() == "mine"  # --force removes only btc's files


def test_a_users_files_in_out_are_never_overwritten(phantom_dir, tmp_path, capsys):
    out = tmp_path / "analysis"
    out.mkdir()
    (out / "metrics.json").write_text('{"mine": true}')
    (out / "predictions.csv").write_text("my,predictions\n")
    for extra in ([], ["--force"], ["--resume"]):
        code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, *extra, "--out", out], capsys)
        line = one_line(err)
        assert code == 1 and "did not write" in line and "metrics.json" in line and "predictions.csv" in line
    assert (out / "metrics.json").read_text() == '{"mine": true}'
    assert (out / "predictions.csv").read_text() == "my,predictions\n"


def test_out_naming_a_file_is_one_line(phantom_dir, tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("keep")
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--out", target], capsys)
    assert code == 1 and "is a file" in one_line(err) and target.read_text() == "keep"


def test_cv_with_changed_folds_is_refused(phantom_dir, tmp_path, capsys):
    out = tmp_path / "cv"
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "2", "--fold", "1", "--out", out], capsys)
    assert code == 0, err
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "3", "--out", out], capsys)
    assert code == 1 and "2-fold CV and --folds is 3" in one_line(err)
    assert CVFolder(out).read_folds().n_folds == 2


@pytest.mark.parametrize("content, reason", [
    (b"", "is empty"),
    (b"Aborted.\n", "not a file written by torch.save"),
    (b"PK\x03\x04truncated", "truncated or corrupt"),
])
def test_resume_from_a_broken_last_checkpoint_is_one_line(trained, tmp_path, phantom_dir, capsys, content, reason):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "metrics.json").unlink()  # not complete: resume must read checkpoint-last.pt
    (run / "checkpoint-last.pt").write_bytes(content)
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--resume", "--out", run], capsys)
    line = one_line(err)
    assert code == 1 and reason in line and "checkpoint-last.pt" in line


def test_corrupt_fold_metrics_is_one_line(phantom_dir, tmp_path, capsys):
    out = tmp_path / "cv"
    args = ["cv", "--data", phantom_dir, *TINY, "--folds", "2", "--out", out]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    (out / "fold-1" / "metrics.json").write_text('{"accuracy": 0.5')  # cut short
    code, _, err = run_cli(args, capsys)
    line = one_line(err)
    assert code == 1 and "fold-1" in line and "metrics.json" in line and "--resume" in line


def test_a_fold_whose_best_checkpoint_was_deleted_is_trained_again(phantom_dir, tmp_path, capsys):
    out = tmp_path / "cv"
    args = ["cv", "--data", phantom_dir, *TINY, "--folds", "2", "--out", out]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    before = json.loads((out / "fold-1" / "metrics.json").read_text())
    (out / "fold-1" / "checkpoint-best.pt").unlink()
    assert not RunFolder(out / "fold-1").is_complete()
    code, _, err = run_cli(args[:-2] + ["--out", out], capsys)
    assert code == 0, err
    assert (out / "fold-1" / "checkpoint-best.pt").is_file()
    assert json.loads((out / "fold-1" / "metrics.json").read_text()) == before  # same seed, same run


def test_resume_draws_plots_a_kill_left_missing(trained, tmp_path, phantom_dir, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    for png in run.glob("*.png"):
        png.unlink()
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--resume", "--out", run], capsys)
    assert code == 0, err
    assert {p.name for p in run.glob("*.png")} == {"confusion_matrix.png", "learning_curves.png", "roc.png"}


def test_a_locked_run_folder_is_refused(phantom_dir, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another writer
        code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--out", out], capsys)
        assert code == 1 and "another btc process is writing" in one_line(err)
    finally:
        os.close(fd)
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--out", out], capsys)
    assert code == 0, err  # the lock went with its holder


@pytest.mark.parametrize("args, words", [
    (["--lr", "nan"], "'lr' expects a finite float"),
    (["--device", "tpu9"], "--device 'tpu9'"),
    (["--set", "epochs=abc"], "expects a number"),
])
def test_bad_options_are_one_line(phantom_dir, tmp_path, capsys, args, words):
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, *args, "--out", tmp_path / "r"], capsys)
    assert code == 1 and words in one_line(err)


@pytest.mark.parametrize("text, words", [
    ("epochs: [1, 2\n", "not valid YAML"),
    ('lr: "abc"\n', "'lr' expects a finite float"),
    ("- a list\n", "a recipe is a YAML mapping"),
])
def test_bad_recipe_files_are_one_line(phantom_dir, tmp_path, capsys, text, words):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--recipe", recipe, "--out", tmp_path / "r"], capsys)
    assert code == 1 and words in one_line(err)


def test_predict_csv_naming_a_folder_is_one_line(trained, tmp_path, capsys):
    code, _, err = run_cli(["predict", trained / "checkpoint-best.pt", trained, "--csv", tmp_path], capsys)
    assert code == 1 and "is a folder" in one_line(err)


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    ready = tmp_path / "ready"
    code = ("import time, pathlib, btc.cli as c\n"
            "def slow(*a, **k):\n"
            f"    pathlib.Path({str(ready)!r}).touch()\n"
            "    time.sleep(60)\n"
            "import btc.commands.models as m; m.run = slow\n"
            "c.main(['models'])\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:  # the command is running
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in one_line(err)


def test_files_named_by_an_option_are_never_a_users(trained, tmp_path, capsys):
    mine = tmp_path / "mine.txt"
    mine.write_text("keep")
    for args in (["export", trained / "checkpoint-best.pt", "--onnx", mine],
                 ["predict", trained / "checkpoint-best.pt", trained, "--csv", mine],
                 ["report", trained, "--out", mine]):
        code, _, err = run_cli(args, capsys)
        assert code == 1 and "btc did not write it" in one_line(err), args
    assert mine.read_text() == "keep"
    report = tmp_path / "report.md"
    for _ in range(2):  # a report btc wrote may be written again
        code, _, err = run_cli(["report", trained, "--out", report], capsys)
        assert code == 0, err


def test_force_never_touches_a_run_another_process_is_writing(phantom_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--out", out], capsys)
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != LOCK}
    fd = os.open(out / LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a live writer
        code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--force", "--out", out], capsys)
        assert code == 1 and "another btc process is writing" in one_line(err)
        cv = tmp_path / "cv"
        code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "2", "--fold", "1", "--out", cv], capsys)
        assert code == 0, err
        fold_fd = os.open(cv / "fold-1" / LOCK, os.O_RDWR)
        try:
            fcntl.flock(fold_fd, fcntl.LOCK_EX)
            code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "2", "--force", "--out", cv], capsys)
            assert code == 1 and "fold-1" in one_line(err)
            assert (cv / "fold-1" / "metrics.json").is_file()
        finally:
            os.close(fold_fd)
    finally:
        os.close(fd)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != LOCK} == before


def test_a_fold_out_of_range_writes_nothing(phantom_dir, tmp_path, capsys):
    out = tmp_path / "cv"
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "3", "--fold", "4", "--out", out], capsys)
    assert code == 1 and "--fold 4 is out of range" in one_line(err)
    assert not out.exists()


def test_old_cv_folder_with_a_users_fold_folder_is_refused_not_relabelled(tmp_path):
    import pandas as pd

    from btc.errors import BtcError

    cv = tmp_path / "old"
    for k in range(3):
        (cv / f"fold-{k}").mkdir(parents=True)
        (cv / f"fold-{k}" / "metrics.json").write_text(json.dumps({"accuracy": k / 10}))
    (cv / "fold-3").mkdir()
    (cv / "fold-3" / "notes.txt").write_text("mine")
    pd.DataFrame({"path": ["a", "b", "c"], "fold": [0, 1, 2], "protocol": "x"}).to_csv(cv / "folds.csv", index=False)
    with pytest.raises(BtcError, match="move .*fold-3 away"):
        CVFolder(cv).read_folds()
    assert sorted(p.name for p in cv.iterdir()) == ["fold-0", "fold-1", "fold-2", "fold-3", "folds.csv"]
    assert pd.read_csv(cv / "folds.csv")["fold"].tolist() == [0, 1, 2]  # nothing relabelled


@pytest.mark.parametrize("args, words", [
    (["cv", "--data", "x", "--model", "y", "--fold", "0"], "Invalid value for '--fold'"),
    (["train", "--data", "x", "--model", "y", "--epochs", "abc"], "Invalid value for '--epochs'"),
    (["train", "--bogus"], "No such option: --bogus"),
])
def test_usage_errors_are_one_line(capsys, args, words):
    code, _, err = run_cli(args, capsys)
    assert code == 2 and words in one_line(err) and "--help" in err
