"""The paper's protocol and the leak-free protocol (issue 15): btc.engine.protocols on real samples."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from btc.data.manifest import load_dataset
from btc.engine.config import resolve_config
from btc.engine.protocols import add_validation, make_folds, split_roles
from btc.engine.runs import TaskData
from btc.errors import BtcError
from btc.runfolder import RunFolder
from tests.conftest import run_cli, shared_data


@pytest.fixture(scope="module")
def kaggle_sample(tmp_path_factory):
    """The original Kaggle sample (188 files, 8 exact-duplicate groups across Training/Testing)."""
    from btc.data.sources.kaggle import prepare_kaggle

    out = tmp_path_factory.mktemp("kaggle") / "data"
    prepare_kaggle(shared_data("kaggle-original-sample"), out, size=64, crop="none")
    return TaskData.from_dataset(load_dataset(out), "multiclass")


def config(model="dsconv_cbam", **overrides):
    return resolve_config(model, task="multiclass", overrides={"device": "cpu", "seed": 0, **overrides})


def crossing(groups: np.ndarray, sides: np.ndarray) -> int:
    """Groups with rows on more than one side."""
    seen: dict = {}
    for g, s in zip(groups, sides, strict=True):
        seen.setdefault(g, set()).add(s)
    return sum(len(v) > 1 for v in seen.values())


def test_paper_protocol_is_the_kaggle_split_as_published(kaggle_sample):
    roles, text = split_roles(kaggle_sample, config())
    assert (roles == kaggle_sample.rows["split"].to_numpy()).all() and text.startswith("paper:")
    groups = kaggle_sample.leak_free_groups()[kaggle_sample.positions]
    assert crossing(groups, roles) > 0  # the published split leaks: btc's audit sees it


def test_leak_free_removes_test_twins_and_keeps_training(kaggle_sample):
    paper, _ = split_roles(kaggle_sample, config())
    roles, text = split_roles(kaggle_sample, config(protocol="leak-free"))
    groups = kaggle_sample.leak_free_groups()[kaggle_sample.positions]
    removed = int(((paper == "test") & (roles == "excluded")).sum())
    assert not ((paper == "test") & (roles == "")).any()  # every removed image is listed as excluded
    assert removed > 0 and f"{removed} test images with a twin in training removed" in text
    assert ((roles == "train") == (paper == "train")).all()  # the training set as it is
    train_groups = set(groups[roles == "train"])
    assert not any(g in train_groups for g in groups[roles == "test"])


@pytest.mark.parametrize("model", ["resnesat", "resnet34_improved"])  # paper 001 (10 folds), 003 (5)
def test_leak_free_folds_and_holdouts_keep_groups_on_one_side(kaggle_sample, model):
    cfg = config(model, protocol="leak-free", folds=3, val_fraction=0.2)
    groups = kaggle_sample.leak_free_groups()[kaggle_sample.positions]
    folds, text = make_folds(kaggle_sample, cfg)
    assert set(folds) == {1, 2, 3} and crossing(groups, folds) == 0 and "grouped" in text
    roles, _ = split_roles(kaggle_sample, cfg)
    assert crossing(groups, add_validation(kaggle_sample, roles, cfg)) == 0


def test_paper_folds_are_image_level(kaggle_sample):
    cfg = config("resnet34_improved", folds=3)
    folds, text = make_folds(kaggle_sample, cfg)
    assert "image-level" in text and set(folds) == {1, 2, 3}
    roles, text = split_roles(kaggle_sample, cfg)  # paper 003: a random fifth, not the Kaggle split
    assert "hold-out" in text and abs((roles == "test").mean() - 0.2) < 0.05


def test_recipes_carry_their_papers_fold_counts():
    assert config("resnesat").folds == 10 and config("resnet34_improved").folds == 5


def test_a_changed_folds_is_printed_and_recorded(phantom_dir, tmp_path, capsys):
    out = tmp_path / "cv"
    code, stdout, err = run_cli(["cv", "--data", phantom_dir, "--model", "small_cnn", "--image-size", "32",
                                 "--epochs", "1", "--device", "cpu", "--folds", "2", "--fold", "1",
                                 "--out", out], capsys)
    assert code == 0, err
    # small_cnn trains with paper 002's recipe, which tests on the official split: no folds at all
    assert "paper 002 does not cross-validate" in err
    found = RunFolder(out / "fold-1").read_config()["provenance"]["deviations"]
    assert "2-fold cross-validation (paper: the dataset's official Training/Testing split)" in found
    out = tmp_path / "cv001"  # paper 001 cross-validated with ten folds
    code, stdout, err = run_cli(["cv", "--data", phantom_dir, "--model", "small_cnn", "--recipe", "paper001",
                                 "--image-size", "32", "--epochs", "1", "--device", "cpu", "--folds", "2",
                                 "--fold", "1", "--out", out], capsys)
    assert code == 0, err
    assert "--folds 2; the paper's protocol has 10 folds" in err
    assert "folds 2 (paper: 10)" in RunFolder(out / "fold-1").read_config()["provenance"]["deviations"]


@pytest.fixture(scope="module")
def figshare_four_class(tmp_path_factory):
    from btc.data.sources.figshare import prepare_figshare

    root = tmp_path_factory.mktemp("figshare")
    no_tumor = root / "notumor"
    no_tumor.mkdir()
    for path in sorted((shared_data("kaggle-original-sample") / "Training" / "notumor").glob("*.jpg"))[:10]:
        shutil.copy(path, no_tumor / path.name)
    prepare_figshare(shared_data("figshare-sample"), root / "data", size=64, no_tumor=no_tumor)
    return TaskData.from_dataset(load_dataset(root / "data"), "multiclass")


def test_figshare_four_class_leak_free_cv_has_the_five_official_folds(figshare_four_class):
    data = figshare_four_class
    assert len(data.classes) == 4
    folds, text = make_folds(data, config("resnet34_improved", protocol="leak-free"))
    assert "official" in text and set(folds) <= {1, 2, 3, 4, 5}
    tumour = data.rows["fold_source"].to_numpy() == "cvind"
    assert (folds[tumour] == data.rows["fold"].astype(int).to_numpy()[tumour]).all()
    patients = data.rows["patient_id"].to_numpy()
    assert crossing(patients[patients != ""], folds[patients != ""]) == 0
    with pytest.raises(BtcError, match="official patient-wise folds are"):
        make_folds(data, config("resnet34_improved", protocol="leak-free", folds=3))


def test_figshare_paper_protocol_uses_random_image_level_folds(figshare_four_class):
    folds, text = make_folds(figshare_four_class, config("resnet34_improved", folds=3))
    assert "image-level" in text and set(folds) == {1, 2, 3}


def test_the_protocol_is_recorded(phantom_dir, tmp_path, capsys):
    out = tmp_path / "r"
    code, _, err = run_cli(["train", "--data", phantom_dir, "--model", "small_cnn", "--image-size", "32",
                            "--epochs", "1", "--device", "cpu", "--protocol", "leak-free", "-q", "--out", out], capsys)
    assert code == 0, err
    saved = RunFolder(out).read_config()
    assert saved["protocol"] == "leak-free" and saved["split_protocol"].startswith("leak-free:")
    assert any(d.startswith("leak-free splits") for d in saved["provenance"]["deviations"])


def test_unknown_protocol_is_one_line(phantom_dir, tmp_path, capsys):
    code, _, err = run_cli(["train", "--data", phantom_dir, "--model", "small_cnn", "--protocol", "strict",
                            "--out", tmp_path / "r"], capsys)
    assert code == 1 and "'protocol' must be one of paper, leak-free" in err


def test_readme_and_docstrings_do_not_call_cvind_paper_003s_protocol():
    root = Path(__file__).resolve().parents[1]
    texts = [root / "README.md", *sorted((root / "btc").rglob("*.py"))]
    assert not [p for p in texts if "paper 003's protocol" in p.read_text(encoding="utf-8")]
