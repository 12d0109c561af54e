"""The training engine on CPU at tiny sizes: learning, honest folds, exact resume, clear errors."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from btc.engine import train as train_module
from btc.engine.config import load_recipe, recipe_names, resolve_config
from tests.conftest import run_cli

TINY = ["--model", "small_cnn", "--image-size", "64", "--batch-size", "16", "--no-pretrained",
        "--device", "cpu", "--quiet"]


def test_recipes_resolve_for_every_paper():
    assert {"paper001", "paper002", "paper003", "paper004", "paper004-nadam"} <= set(recipe_names())
    c = resolve_config("resnesat", task="source")
    assert (c.lr, c.schedule, c.batch_size, c.epochs, c.image_size) == (1e-4, "cosine", 16, 100, 256)
    assert resolve_config("resnesat", task="presence").lr == 1e-3
    c = resolve_config("resnet34_improved", overrides={"image_size": 112})
    assert (c.image_size, c.resize_size, c.crop, c.vflip) == (112, 128, "random", 0.5)
    c = resolve_config("resnet18_transfer", recipe="paper004-nadam")
    assert c.optimizer == "nadam" and load_recipe("paper002")["betas"] == [0.9, 0.99]


@pytest.mark.slow
def test_train_learns_phantom_and_writes_run_folder(phantom_dir, tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(["train", "--data", phantom_dir, *TINY, "--epochs", "8", "--out", run], capsys)
    assert code == 0, err
    for name in ("config.yaml", "split.csv", "history.csv", "metrics.json", "predictions.csv",
                 "checkpoint-best.pt", "checkpoint-last.pt"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.5, metrics["accuracy"]  # chance is 0.25
    split = pd.read_csv(run / "split.csv")
    manifest = pd.read_csv(phantom_dir / "manifest.csv", keep_default_na=False)
    # the manifest's train/test split is used; validation comes out of the training part
    assert set(split[split.role == "test"].path) == set(manifest[manifest.split == "test"].path)
    assert set(split.role) == {"train", "val", "test"}
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == list(range(1, 9))
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["epochs"] == 8 and config["image_size"] == 64 and config["recipe"] == "paper002" and config["model"] == "small_cnn"
    assert config["protocol"] == "paper" and config["split_protocol"].startswith("paper: the manifest's official split")


@pytest.mark.slow
def test_resume_after_kill_equals_uninterrupted(phantom_dir, tmp_path, capsys, monkeypatch):
    args = ["train", "--data", phantom_dir, *TINY, "--epochs", "2", "--seed", "3"]
    code, _, err = run_cli([*args, "--out", tmp_path / "full"], capsys)
    assert code == 0, err

    original = train_module.Trainer.train_epoch

    def killed_in_epoch_2(self, split, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, split, epoch)

    monkeypatch.setattr(train_module.Trainer, "train_epoch", killed_in_epoch_2)
    code, _, err = run_cli([*args, "--out", tmp_path / "killed"], capsys)
    assert code == 130 and "resume" in err
    assert not (tmp_path / "killed" / "metrics.json").exists()
    assert len(pd.read_csv(tmp_path / "killed" / "history.csv")) == 1
    monkeypatch.setattr(train_module.Trainer, "train_epoch", original)
    code, _, err = run_cli([*args, "--out", tmp_path / "killed"], capsys)
    assert code == 1 and "--resume" in err  # never silently overwrites a run
    code, _, err = run_cli([*args, "--out", tmp_path / "killed", "--resume"], capsys)
    assert code == 0, err
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    resumed = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert resumed == full
    a = pd.read_csv(tmp_path / "full" / "predictions.csv")
    b = pd.read_csv(tmp_path / "killed" / "predictions.csv")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_leak_free_cv_groups_patients_and_fold_runs_match_full_cv(phantom_dir, tmp_path, capsys):
    args = ["cv", "--data", phantom_dir, *TINY, "--epochs", "1", "--folds", "3", "--protocol", "leak-free"]
    code, _, err = run_cli([*args, "--out", tmp_path / "full"], capsys)
    assert code == 0, err
    manifest = pd.read_csv(phantom_dir / "manifest.csv", keep_default_na=False).set_index("path")
    for k in range(1, 4):
        split = pd.read_csv(tmp_path / "full" / f"fold-{k}" / "split.csv")
        patients = split.assign(pid=manifest.loc[split.path, "patient_id"].to_numpy())
        test_p = set(patients[patients.role == "test"].pid)
        other_p = set(patients[patients.role != "test"].pid)
        assert test_p and not test_p & other_p
    full = json.loads((tmp_path / "full" / "cv.json").read_text())
    assert full["complete"] and len(full["folds"]) == 3
    accs = [f["metrics"]["accuracy"] for f in full["folds"]]
    assert full["mean"]["accuracy"] == pytest.approx(np.mean(accs))
    assert full["std"]["accuracy"] == pytest.approx(np.std(accs, ddof=1))
    # the same CV run fold by fold, as on three machines, gives the same cv.json
    for k in (3, 1):
        code, _, err = run_cli([*args, "--out", tmp_path / "split", "--fold", str(k)], capsys)
        assert code == 0, err
    partial = json.loads((tmp_path / "split" / "cv.json").read_text())
    assert not partial["complete"] and [f["fold"] for f in partial["folds"]] == [1, 3]
    code, _, err = run_cli([*args, "--out", tmp_path / "split"], capsys)  # resumes fold 2 only
    assert code == 0, err
    assert json.loads((tmp_path / "split" / "cv.json").read_text()) == full


def test_presence_task_is_binary(phantom_dir, tmp_path, capsys):
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--epochs", "1", "--task", "presence",
                            "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["classes"] == ["tumor", "no_tumor"] and len(metrics["confusion_matrix"]) == 2


def test_user_errors_are_one_line(phantom_dir, tmp_path, capsys):
    cases = [
        (["train", "--data", tmp_path / "nowhere", *TINY], "no such dataset folder"),
        (["train", "--data", phantom_dir, *TINY, "--task", "source"], "unknown task 'source'"),
        (["train", "--data", phantom_dir, *TINY, "--recipe", "paper999"], "unknown recipe"),
        (["train", "--data", phantom_dir, *TINY, "--epochs", "1", "--lr", "1e30", "--optimizer", "sgd",
          "--out", tmp_path / "nan"], "diverged"),
        (["cv", "--data", phantom_dir, *TINY, "--folds", "40"], "--folds 40: stratified folds need"),
    ]
    for args, message in cases:
        code, out, err = run_cli(args, capsys)
        assert code == 1, (args, err)
        assert message in err and "Traceback" not in err + out
