"""What a run claims about its protocol is what it did (issue 15, found by a hostile review).

- A CV under a paper that never cross-validated (002, 004) is a deviation, not "the paper's
  protocol"; a single run's fold count and a CV's test fraction change nothing and are none.
- A recipe asking for the official split on a dataset without one (Figshare) falls back to a
  hold-out, recorded as a deviation; images prepared smaller than the input are one too.
- A train run and a CV never share a folder; a CV is not resumed on another dataset.
- The leak-free groups keep exact copies together even in a manifest whose `dup_group` was
  edited, and a garbled `dup_group` is refused; the test images the leak-free protocol leaves
  out are listed in the run's split.csv.
- Leak-free CV on Figshare defaults to its official folds; folds a dataset cannot give fail
  before any folder is made.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from btc.data.manifest import ManifestError, load_dataset, validate_manifest
from btc.data.splits import group_labels
from btc.engine.config import resolve_config
from btc.engine.provenance import dataset_fingerprint, deviations
from btc.runfolder import CVFolder, RunFolder
from tests.conftest import run_cli

TINY = ["--model", "small_cnn", "--image-size", "32", "--batch-size", "16", "--epochs", "1", "--device", "cpu"]
RANDOM = {"source": "random"}
AT_224 = {"crop": "none", "size": 224}


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_cv_under_a_paper_that_did_not_cross_validate_is_a_deviation():
    dsconv = resolve_config("dsconv_cbam", task="multiclass", overrides={"device": "cpu"})
    assert deviations(dsconv, RANDOM, AT_224, "cv") == [
        "10-fold cross-validation (paper: the dataset's official Training/Testing split)"]
    assert deviations(dsconv, RANDOM, AT_224, "official") == []
    # paper 001 cross-validated with ten folds: its CV is the protocol, another count is not
    resnesat = resolve_config("resnesat", task="multiclass", overrides={"device": "cpu", "image_size": 256})
    weights = {"source": "timm", "verified": True}
    assert deviations(resnesat, weights, {"crop": "none", "size": 256}, "cv") == []
    three = resolve_config("resnesat", task="multiclass", overrides={"device": "cpu", "folds": 3})
    assert deviations(three, weights, {"crop": "none", "size": 256}, "cv") == ["folds 3 (paper: 10)"]


def test_settings_a_run_does_not_use_are_no_deviation_and_a_fallback_split_is_one():
    folds = resolve_config("dsconv_cbam", task="multiclass", overrides={"folds": 3, "test_fraction": 0.3})
    assert deviations(folds, RANDOM, AT_224, "official") == []  # one split: no folds, no test fraction
    assert deviations(folds, RANDOM, AT_224, "holdout") == [
        "a seeded hold-out test set, test fraction 0.3 (paper: the dataset's official Training/Testing split)"]
    cv = deviations(folds, RANDOM, AT_224, "cv")
    assert cv == ["3-fold cross-validation (paper: the dataset's official Training/Testing split)"]


def test_the_official_split_falling_back_to_a_holdout_is_recorded(tmp_path, capsys):
    # the Kaggle sample without its split column: the recipe's official split cannot be had
    from tests.conftest import shared_data

    sample = shared_data("kaggle-original-sample")
    data = tmp_path / "k"
    code, _, err = run_cli(["prepare", "kaggle", sample, data, "--size", "40", "--crop", "none", "-q"], capsys)
    assert code == 0, err
    manifest = pd.read_csv(data / "manifest.csv", dtype=str, keep_default_na=False)
    manifest.assign(split="").to_csv(data / "manifest.csv", index=False)
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", data, *TINY, "--recipe", "paper002", "--out", out, "-q"], capsys)
    assert code == 0, err
    found = RunFolder(out).read_config()["provenance"]["deviations"]
    assert "a seeded hold-out test set, test fraction 0.2 (paper: the dataset's official Training/Testing split)" in found


def test_a_train_run_and_a_cv_never_share_a_folder(phantom_dir, tmp_path, capsys):
    cv = tmp_path / "cv"
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "2", "--fold", "1", "--out", cv, "-q"],
                           capsys)
    assert code == 0, err
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--out", cv, "-q"], capsys)
    assert code == 1 and "holds a btc cv, not a run" in one_line(err)
    assert not (cv / "config.yaml").exists()
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--out", run, "-q"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "2", "--out", run, "-q"], capsys)
    assert code == 1 and "holds a btc run, not a cv" in one_line(err)
    assert not (run / "folds.csv").exists()


def test_a_cv_is_not_resumed_on_another_dataset_with_the_same_file_names(phantom_dir, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(phantom_dir, other)
    manifest = pd.read_csv(other / "manifest.csv", dtype=str, keep_default_na=False)
    manifest.loc[0, "label"] = manifest.loc[1, "label"] if manifest.loc[0, "label"] != manifest.loc[1, "label"] \
        else manifest.loc[len(manifest) - 1, "label"]
    manifest.to_csv(other / "manifest.csv", index=False)  # same files, another manifest
    cv = tmp_path / "cv"
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "2", "--fold", "1", "--out", cv, "-q"],
                           capsys)
    assert code == 0, err
    before = (cv / "fold-1" / "metrics.json").read_bytes()
    code, _, err = run_cli(["cv", "--data", other, *TINY, "--folds", "2", "--out", cv, "-q"], capsys)
    assert code == 1 and "on another dataset" in one_line(err)
    assert (cv / "fold-1" / "metrics.json").read_bytes() == before and not (cv / "fold-2" / "config.yaml").exists()


def test_exact_copies_stay_together_whatever_dup_group_says(phantom_dir):
    df = load_dataset(phantom_dir).manifest.head(4).copy()
    df["patient_id"] = ""
    df["dup_group"] = ""
    df.loc[3, "sha256"] = df.loc[0, "sha256"]  # row 3 has row 0's pixels
    labels = group_labels(df)
    assert labels[0] == labels[3] and len(set(labels)) == 3
    for garbage in ("abc", "-1", "1e400", "0"):
        bad = df.assign(dup_group=["1", garbage, "", ""])
        with pytest.raises(ManifestError, match="row 2, column 'dup_group'"):
            validate_manifest(bad)


def test_leak_free_lists_the_test_images_it_left_out(tmp_path, capsys):
    from tests.conftest import shared_data

    sample = shared_data("kaggle-original-sample")
    data = tmp_path / "k"
    code, _, err = run_cli(["prepare", "kaggle", sample, data, "--size", "40", "--crop", "none", "-q"], capsys)
    assert code == 0, err
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", data, *TINY, "--protocol", "leak-free", "--out", out, "-q"], capsys)
    assert code == 0, err
    split = RunFolder(out).read_split()
    excluded = split.loc[split["role"] == "excluded", "path"]
    assert len(excluded) > 0 and len(split) == len(load_dataset(data).manifest)
    removed = RunFolder(out).read_config()["split_protocol"]
    assert f"{len(excluded)} test images with a twin in training removed" in removed


def test_folds_a_dataset_cannot_give_fail_before_a_folder_is_made(phantom_dir, tmp_path, capsys):
    out = tmp_path / "cv"
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "500", "--out", out, "-q"], capsys)
    assert code == 1 and "folds" in one_line(err)
    assert not out.exists()
    assert not CVFolder(out).exists()


def test_dataset_fingerprint_records_the_prepared_size(phantom_dir):
    assert dataset_fingerprint(phantom_dir, load_dataset(phantom_dir).info)["size"] == 64


def test_options_that_change_nothing_are_said_and_conflicting_ones_refused(phantom_dir, tmp_path, capsys):
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "3", "--set", "folds=5",
                            "--out", tmp_path / "cv", "-q"], capsys)
    assert code == 1 and "--folds 3 and --set folds=5 disagree" in one_line(err)
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--test-fraction", "0.3", "--out", out], capsys)
    assert code == 0, err
    assert "--test-fraction 0.3 has no effect" in err
    assert not any("test fraction" in d for d in RunFolder(out).read_config()["provenance"]["deviations"])


def test_a_fold_joins_a_cv_only_with_its_settings_and_force_never_takes_other_folds(phantom_dir, tmp_path, capsys):
    cv = tmp_path / "cv"
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "2", "--fold", "1", "--out", cv, "-q"],
                           capsys)
    assert code == 0, err
    before = (cv / "fold-1" / "metrics.json").read_bytes()
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--seed", "5", "--folds", "2", "--fold", "2",
                            "--out", cv, "-q"], capsys)
    assert code == 1 and "another config (seed)" in one_line(err)
    assert not (cv / "fold-2" / "config.yaml").exists()
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--folds", "2", "--fold", "2", "--force",
                            "--out", cv, "-q"], capsys)
    assert code == 1 and "do not combine it with --fold" in one_line(err)
    assert (cv / "fold-1" / "metrics.json").read_bytes() == before
    # a train run of its own never goes into a fold folder of a CV
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--out", cv / "fold-2", "-q"], capsys)
    assert code == 1 and "inside the btc CV" in one_line(err)
    assert not (cv / "fold-2").exists()


def test_a_refused_out_gets_no_lock_file(phantom_dir, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.json").write_text('{"mine": true}')
    code, _, err = run_cli(["train", "--data", phantom_dir, *TINY, "--out", mine, "-q"], capsys)
    assert code == 1 and "did not write" in one_line(err)
    assert sorted(p.name for p in mine.iterdir()) == ["metrics.json"]


@pytest.mark.parametrize("item", ["folds=2.7", "epochs=1.9", "folds=true", "lr=yes"])
def test_set_refuses_a_value_of_another_type(phantom_dir, tmp_path, capsys, item):
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--set", item, "--out", tmp_path / "cv", "-q"],
                           capsys)
    assert code == 1 and f"got '{item.split('=')[1]}'" in one_line(err)
    assert not (tmp_path / "cv").exists()
