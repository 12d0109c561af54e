"""Paper 001's two-stage chain (presence → tumour type) on shared test images: `btc two-stage`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from btc.data.manifest import load_dataset
from btc.engine.config import resolve_config
from btc.engine.protocols import split_roles
from btc.engine.runs import TaskData
from btc.engine.two_stage import Chain, make_chain
from btc.errors import BtcError
from tests.conftest import run_cli

TINY = ["--model", "small_cnn", "--image-size", "64", "--batch-size", "16", "--no-pretrained",
        "--device", "cpu", "--folds", "3", "--set", "val_fraction=0", "-q"]


def test_combine_decides_stage_by_stage():
    chain = Chain(["tumor", "no_tumor"], ["glioma", "meningioma"], "tumor",
                  {"glioma": "glioma", "meningioma": "meningioma", "notumor": "no_tumor"},
                  frozenset({"glioma", "meningioma"}))
    p1 = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    p2 = np.array([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]])
    probs, predicted = chain.combine(p1, p2)
    assert chain.classes == ["no_tumor", "glioma", "meningioma"]
    np.testing.assert_allclose(probs, [[0.1, 0.27, 0.63], [0.8, 0.18, 0.02], [0.4, 0.3, 0.3]])
    np.testing.assert_allclose(probs.sum(1), 1.0)
    # image 3: stage 1 says tumour (0.6), so stage 2 decides (glioma on a tie), although the
    # arg-max of the chained probabilities would be no_tumor (0.4 > 0.3)
    assert predicted.tolist() == [2, 0, 1]


def test_make_chain_finds_the_routing_class(phantom_dir):
    dataset = load_dataset(phantom_dir)
    chain = make_chain(dataset, "presence", "tumor_type")
    assert chain.route == "tumor"
    assert chain.classes == ["no_tumor", "glioma", "meningioma", "pituitary"]
    assert chain.truth == {"notumor": "no_tumor", "glioma": "glioma", "meningioma": "meningioma",
                           "pituitary": "pituitary"}
    with pytest.raises(BtcError, match="must all belong to one class of 'presence'"):
        make_chain(dataset, "presence", "multiclass")  # notumor is not a tumour class


def test_hold_out_is_shared_between_tasks(phantom_dir, tmp_path):
    """Without a manifest split, presence and tumor_type draw the same hold-out for shared images."""
    data = tmp_path / "unsplit"
    shutil.copytree(phantom_dir, data)
    manifest = pd.read_csv(data / "manifest.csv", keep_default_na=False)
    manifest["split"] = ""
    manifest.to_csv(data / "manifest.csv", index=False)
    dataset = load_dataset(data)
    tests = {}
    for task in ("presence", "tumor_type"):
        task_data = TaskData.from_dataset(dataset, task)
        roles, protocol = split_roles(task_data, resolve_config("small_cnn", task=task, overrides={"seed": 5}))
        assert "hold-out" in protocol
        tests[task] = set(task_data.rows["path"][roles == "test"])
    tumour = set(manifest.loc[manifest["label"] != "notumor", "path"])
    assert tests["tumor_type"] == tests["presence"] & tumour
    assert 0.1 < len(tests["presence"]) / len(manifest) < 0.35


@pytest.mark.slow
def test_two_stage_cv_chains_both_models_on_the_same_test_images(phantom_dir, tmp_path, capsys):
    presence, tumour_type, chained = tmp_path / "presence", tmp_path / "type", tmp_path / "chain"
    for task, out in (("presence", presence), ("tumor_type", tumour_type)):
        code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--epochs", "2", "--task", task,
                                "--out", out], capsys)
        assert code == 0, err
    folds_p = pd.read_csv(presence / "folds.csv").set_index("path")["fold"]
    folds_t = pd.read_csv(tumour_type / "folds.csv").set_index("path")["fold"]
    assert (folds_p[folds_t.index] == folds_t).all()  # every tumour image is in the same test fold

    code, out, err = run_cli(["two-stage", presence, tumour_type, "--out", chained, "--device", "cpu"], capsys)
    assert code == 0, err
    assert "routing 'tumor'" in out
    summary = json.loads((chained / "two_stage.json").read_text())
    assert summary["classes"] == ["no_tumor", "glioma", "meningioma", "pituitary"]
    assert summary["images"] == len(folds_p) and summary["excluded"] == 0
    routed = 0
    for k in range(1, 4):
        frame = pd.read_csv(chained / f"fold-{k}" / "predictions.csv", keep_default_na=False).set_index("path")
        stage1 = pd.read_csv(presence / f"fold-{k}" / "predictions.csv", keep_default_na=False).set_index("path")
        stage2 = pd.read_csv(tumour_type / f"fold-{k}" / "predictions.csv", keep_default_na=False).set_index("path")
        assert sorted(frame.index) == sorted(stage1.index)  # stage 1's test images, all of them
        to_stage2 = stage1["predicted"] == "tumor"
        routed += int(to_stage2.sum())
        assert (frame.loc[~to_stage2, "predicted"] == "no_tumor").all()
        # routed tumour images get stage 2's own prediction from its CV run (same checkpoint)
        both = stage1.index[to_stage2].intersection(stage2.index)
        assert (frame.loc[both, "predicted"] == stage2.loc[both, "predicted"]).all()
        for c in ("glioma", "meningioma", "pituitary"):
            np.testing.assert_allclose(frame.loc[both, f"prob_{c}"],
                                       stage1.loc[both, "prob_tumor"] * stage2.loc[both, f"prob_{c}"], atol=1e-5)
        expected_truth = np.where(frame.index.str.contains("/notumor/"), "no_tumor",
                                  [p.split("/")[1] for p in frame.index])
        assert (frame["label"] == expected_truth).all()
        metrics = json.loads((chained / f"fold-{k}" / "metrics.json").read_text())
        assert metrics["accuracy"] == pytest.approx((frame["label"] == frame["predicted"]).mean())
    assert summary["routed_to_stage2"] == routed
    cv = json.loads((chained / "cv.json").read_text())
    assert cv["complete"] and cv["mean"]["accuracy"] == pytest.approx(
        np.mean([f["metrics"]["accuracy"] for f in cv["folds"]]))

    code, out, err = run_cli(["report", chained], capsys)  # a two-stage folder reads like a CV
    assert code == 0, err
    assert "presence → tumor_type" in out or "small_cnn → small_cnn" in out

    other_seed = tmp_path / "type-seed9"
    code, _, err = run_cli(["cv", "--data", phantom_dir, *TINY, "--epochs", "1", "--task", "tumor_type",
                            "--seed", "9", "--fold", "1", "--out", other_seed], capsys)
    assert code == 0, err
    code, _, err = run_cli(["two-stage", presence, other_seed, "--out", tmp_path / "bad"], capsys)
    assert code == 1 and "not tested on the same images" in err and "Traceback" not in err


def test_two_stage_refuses_mismatched_folders(phantom_dir, tmp_path, capsys):
    code, _, err = run_cli(["two-stage", phantom_dir, tmp_path, "--out", tmp_path / "x"], capsys)
    assert code == 1 and "not a btc train run nor a btc cv folder" in err
