"""The data side of the protocols (issue 15): leak-free groups, `--crop none`, Figshare's 4-class
folds, and near duplicates confirmed by pixels.

- On the Kaggle sample and the phantom, a split made with `leak_free_groups` never puts a patient
  or a duplicate group (exact or confirmed near) on both sides — folds and hold-outs alike —
  while an image-level split does (the leak the protocol removes).
- `btc prepare kaggle --crop none` writes a plain resize of each original and says so.
- Figshare + no-tumour images: every row has a fold 1–5 (cvind.mat's, or btc's for the no-tumour
  images), so the 4-class CV runs the five official folds.
- The pixel check rejects a pair that is near by hash but different in pixels, and accepts a
  re-encoded copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from btc.data.audit import DUP_GROUP, audit_frame, find_duplicates
from btc.data.images import (
    hamming,
    phash64,
    pixel_sha256,
    read_gray_uint8,
    read_image,
    resize_square,
    to_gray_uint8,
)
from btc.data.manifest import load_dataset, write_dataset_yaml, write_manifest
from btc.data.similarity import MIN_SIMILARITY, FolderPixels, similarity
from btc.data.sources import new_image_step
from btc.data.sources.input_step import Resize
from btc.data.sources.kaggle import prepare_kaggle
from btc.data.splits import (
    fill_folds,
    group_labels,
    holdout,
    kfold_assignments,
    leak_free_groups,
    twins_across,
)
from tests.conftest import run_cli, shared_data


def one_side(groups: np.ndarray, assignment: np.ndarray) -> bool:
    """Whether every group's rows share one value of `assignment` (fold number or hold-out flag)."""
    return bool((pd.DataFrame({"g": groups, "a": assignment}).groupby("g")["a"].nunique() == 1).all())


def straddling(column: pd.Series, assignment: np.ndarray) -> int:
    """How many non-empty values of `column` (patient ids, dup groups) span two assignments."""
    frame = pd.DataFrame({"v": column.to_numpy(), "a": assignment})
    frame = frame[frame["v"] != ""]
    return int((frame.groupby("v")["a"].nunique() > 1).sum())


@pytest.fixture(scope="module")
def kaggle_sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("protocol") / "kaggle"
    prepare_kaggle(shared_data("kaggle-original-sample"), out, size=64, workers=2)
    return load_dataset(out)


# --------------------------------------------------------------------------- leak-free groups


def test_groups_hold_every_patient_and_duplicate_group_together(kaggle_sample):
    m = kaggle_sample.manifest
    groups = leak_free_groups(kaggle_sample)
    assert groups.shape == (len(m),)
    assert (m[DUP_GROUP] != "").sum() >= 20  # the sample's copies across Training/Testing
    assert straddling(m[DUP_GROUP], groups) == 0
    # and nothing else: images without a duplicate are alone
    alone = (m[DUP_GROUP] == "").to_numpy()
    assert len(np.unique(groups[alone])) == alone.sum()
    assert len(np.unique(groups)) == alone.sum() + m.loc[~alone, DUP_GROUP].nunique()


def test_groups_computed_for_a_dataset_prepared_before_the_column(kaggle_sample, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(kaggle_sample.root, old)
    m = pd.read_csv(old / "manifest.csv", dtype=str, keep_default_na=False).drop(columns=[DUP_GROUP])
    m.to_csv(old / "manifest.csv", index=False)
    before = load_dataset(old)
    assert DUP_GROUP not in before.manifest.columns
    assert np.array_equal(leak_free_groups(before), leak_free_groups(kaggle_sample))
    assert DUP_GROUP not in pd.read_csv(old / "manifest.csv", nrows=1).columns  # nothing written


@pytest.mark.parametrize("k", [3, 5])
def test_kaggle_sample_folds_and_holdouts_keep_groups_on_one_side(kaggle_sample, k):
    m = kaggle_sample.manifest
    y = m["label"].to_numpy()
    groups = leak_free_groups(kaggle_sample)
    folds = kfold_assignments(m, y, k, groups=groups, seed=0)
    assert set(folds) == set(range(k)) and one_side(groups, folds)
    assert straddling(m[DUP_GROUP], folds) == 0
    test = holdout(m, y, 0.2, groups=groups, seed=0)
    assert 0.1 < test.mean() < 0.3 and one_side(groups, test) and straddling(m[DUP_GROUP], test) == 0
    # a validation carve-out of the training part, as the engine makes it
    train = np.flatnonzero(~test)
    val = holdout(m.iloc[train], y[train], 0.1, groups=groups[train], seed=1)
    assert straddling(m[DUP_GROUP].iloc[train], val) == 0
    # image level (the papers' protocol) splits duplicate groups: the leak the groups remove
    image_level = kfold_assignments(m, y, k, groups=None, seed=0)
    assert straddling(m[DUP_GROUP], image_level) > 0


def test_phantom_folds_and_holdouts_keep_patients_and_duplicates_on_one_side(phantom_dir):
    ds = load_dataset(phantom_dir)
    m = ds.manifest
    y = m["label"].to_numpy()
    groups = leak_free_groups(ds)  # the phantom has patient ids and no dup_group column: computed
    assert len(np.unique(groups)) <= m["patient_id"].nunique()
    duplicates = pd.Series(find_duplicates(m, FolderPixels(ds.root, m["path"].tolist())).labels())
    folds = kfold_assignments(m, y, 4, groups=groups, seed=3)
    test = holdout(m, y, 0.25, groups=groups, seed=3)
    for split in (folds, test):
        assert one_side(groups, split)
        assert straddling(m["patient_id"], split) == 0 and straddling(duplicates, split) == 0


def test_twins_across_an_official_split(kaggle_sample):
    m = kaggle_sample.manifest
    groups = leak_free_groups(kaggle_sample)
    train, test = (m["split"] == "train").to_numpy(), (m["split"] == "test").to_numpy()
    twins = twins_across(groups, train, test)
    assert not (twins & ~test).any()
    # exactly the test images of the duplicate groups that span Training/Testing
    spanning = m[m[DUP_GROUP] != ""].groupby(DUP_GROUP)["split"].nunique()
    expected = test & m[DUP_GROUP].isin(spanning[spanning > 1].index).to_numpy()
    assert np.array_equal(twins, expected) and twins.sum() >= 9
    assert "images/test/notumor/Te-no_0080.png" in set(m["path"][twins])  # Tr-no_1264 re-cropped


def test_explicit_groups_and_btc_01_defaults():
    df = pd.DataFrame({"path": [f"{i}.png" for i in range(40)], "patient_id": [f"P{i // 2}" for i in range(40)],
                       "label": np.arange(40) % 2})
    y = df["label"].to_numpy()
    default = kfold_assignments(df, y, 4, seed=0)  # btc 0.1: patients known → patient-grouped
    assert one_side(df["patient_id"].to_numpy(), default)
    image_level = kfold_assignments(df, y, 4, groups=None, seed=0)
    assert not one_side(df["patient_id"].to_numpy(), image_level)
    by_pair = np.arange(40) // 4  # any labels: here pairs of patients
    assert one_side(by_pair, kfold_assignments(df, y, 4, groups=by_pair, seed=0))
    assert one_side(by_pair, holdout(df, y, 0.25, groups=by_pair, seed=0))
    assert holdout(df, y, 0.25, groups=None, seed=0).sum() == 10
    labels = group_labels(df.assign(dup_group=["", "d1"] + [""] * 36 + ["d1", ""]))  # P0 and P19 are one group
    assert labels[0] == labels[1] == labels[38] == labels[39] and len(np.unique(labels)) == 19


# --------------------------------------------------------------------------- --crop none


def test_crop_none_is_a_plain_resize_and_is_recorded(tmp_path, capfd):
    sample = shared_data("kaggle-original-sample")
    out = tmp_path / "none"
    code, stdout, err = run_cli(["prepare", "kaggle", sample, out, "--size", "64", "--crop", "none", "-j", "2",
                                 "-q"], capfd)
    assert code == 0, err
    ds = load_dataset(out)
    assert ds.info["params"]["crop"] == "none" and "--crop none" in ds.info["command"]
    assert len(ds.manifest) == 188
    for rec in ds.manifest.itertuples():
        original = cv2.imread(str(sample / rec.orig_path), cv2.IMREAD_UNCHANGED)
        if rec.orig_path.lower().endswith((".jpg", ".jpeg")):  # a JPEG's gray is its luma channel
            gray = cv2.imread(str(sample / rec.orig_path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
        else:
            gray = original if original.ndim == 2 else cv2.cvtColor(
                original, cv2.COLOR_BGRA2GRAY if original.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
        plain = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA)  # every original is larger than 64
        assert np.array_equal(cv2.imread(str(out / rec.path), cv2.IMREAD_UNCHANGED), plain), rec.orig_path
        assert rec.crop == f"0,0,{gray.shape[1]},{gray.shape[0]}" and rec.crop_ref == "" and rec.crop_note == ""
    step = new_image_step(ds.info)  # a new image (btc predict) gets the same plain resize
    assert step == Resize(64)
    first = ds.manifest.iloc[0]
    image, _ = step.apply(read_gray_uint8(sample / first["orig_path"]))  # as btc predict reads it
    assert np.array_equal(image, cv2.imread(str(out / first["path"]), cv2.IMREAD_UNCHANGED))
    from btc.engine.provenance import dataset_fingerprint

    assert dataset_fingerprint(out, ds.info)["crop"] == "none"


def test_crop_is_recorded_and_checked(kaggle_sample, tmp_path, capfd):
    assert kaggle_sample.info["params"]["crop"] == "extreme"
    from btc.engine.provenance import dataset_fingerprint

    assert dataset_fingerprint(kaggle_sample.root, kaggle_sample.info)["crop"] == "extreme"
    sample = shared_data("kaggle-original-sample")
    for args, words in ((["--crop", "center"], "--crop center: use extreme or none"),
                        (["--crop", "none", "--pad", "4"], "--pad 4: pads the extreme-point crop")):
        code, _, err = run_cli(["prepare", "kaggle", sample, tmp_path / "x", *args], capfd)
        assert code == 1 and words in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- Figshare, 4 classes


@pytest.fixture(scope="module")
def figshare_4class(tmp_path_factory):
    figshare = shared_data("figshare-sample")
    notumor = tmp_path_factory.mktemp("nt") / "notumor"
    notumor.mkdir()
    for f in sorted((shared_data("kaggle-original-sample") / "Training" / "notumor").iterdir())[:12]:
        shutil.copy2(f, notumor / f.name)
    out = tmp_path_factory.mktemp("fig4") / "data"
    from btc.data.sources.figshare import prepare_figshare

    prepare_figshare(figshare, out, size=64, workers=2, no_tumor=notumor)
    return load_dataset(out), notumor


def test_figshare_4class_every_row_has_one_of_the_five_folds(figshare_4class):
    ds, _ = figshare_4class
    m = ds.manifest
    assert ds.classes == ["glioma", "meningioma", "notumor", "pituitary"] and len(m) == 57
    assert m["fold"].notna().all() and set(m["fold"]) == {1, 2, 3, 4, 5}
    nt = m["label"] == "notumor"
    assert set(m["fold_source"][nt]) == {"btc"} and set(m["fold_source"][~nt]) == {"cvind"}
    assert ds.info["folds"]["fold_source"] == {"cvind": 45, "btc": 12}
    # the official folds are what a CV uses: five of them, whatever --folds says
    folds = kfold_assignments(m, m["label"].to_numpy(), 10)
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    # the no-tumour images are spread over the five folds, their duplicate groups kept whole
    groups = leak_free_groups(ds)
    assert one_side(groups, m["fold"].to_numpy()) and straddling(m["patient_id"], m["fold"].to_numpy()) == 0
    counts = m["fold"][nt].value_counts()
    assert set(counts.index) == {1, 2, 3, 4, 5}
    biggest = pd.Series(groups[nt.to_numpy()]).value_counts().max()
    assert counts.max() - counts.min() <= biggest


def test_figshare_4class_folds_are_deterministic(figshare_4class, tmp_path):
    ds, notumor = figshare_4class
    from btc.data.sources.figshare import prepare_figshare

    again = tmp_path / "again"
    prepare_figshare(shared_data("figshare-sample"), again, size=64, workers=1, no_tumor=notumor)
    m = load_dataset(again).manifest
    assert m["fold"].tolist() == ds.manifest["fold"].tolist()


def test_fill_folds_balances_each_label_and_keeps_groups_whole():
    folds = np.array([1, 2, 3, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan])
    labels = np.array(["a", "a", "a", "n", "n", "n", "n", "n", "n", "n", "n"])
    groups = np.array([0, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8])  # row 3 duplicates row 2 (fold 3); 4-5 one group
    out = fill_folds(folds, labels, groups, 3, seed=0)
    assert out[:3].tolist() == [1, 2, 3] and out[3] == 3 and out[4] == out[5]
    per_fold = pd.Series(out[3:]).value_counts()
    assert per_fold.max() - per_fold.min() <= 1  # 8 no-tumour rows over 3 folds: 3, 3, 2
    assert np.array_equal(out, fill_folds(folds, labels, groups, 3, seed=0))  # deterministic


# --------------------------------------------------------------------------- the pixel check


def _dataset_of(root: Path, images: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = []
    for name, image in images.items():
        (root / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / f"{name}.png"), image)
        rows.append({"path": f"images/{name}.png", "label": "glioma", "split": "train", "patient_id": "",
                     "source": "folder", "orig_path": name, "height": image.shape[0], "width": image.shape[1],
                     "sha256": pixel_sha256(image), "phash": phash64(image)})
    write_manifest(pd.DataFrame(rows), root)
    write_dataset_yaml(root, {"name": root.name, "source": "folder", "classes": ["glioma"]})
    return load_dataset(root).manifest


def test_the_pixel_check_rejects_a_hash_twin_and_accepts_a_re_encode(tmp_path):
    sample = shared_data("kaggle-original-sample")
    scan = resize_square(to_gray_uint8(read_image(sample / "Training/glioma/Tr-gl_0066.jpg")), 256)
    other = resize_square(to_gray_uint8(read_image(sample / "Training/meningioma/Tr-me_0066.jpg")), 256)
    # the hash sees only the lowest frequencies: the blurred anatomy of one scan under the fine
    # detail of another is near by hash, and a different image
    low = cv2.GaussianBlur(scan.astype(np.float32), (0, 0), 4)
    detail = other.astype(np.float32) - cv2.GaussianBlur(other.astype(np.float32), (0, 0), 4)
    lookalike = np.clip(low + 1.5 * detail, 0, 255).astype(np.uint8)
    # a copy: darkened a little (gamma 0.8), JPEG quality 60, resized to 200 px
    ok, jpeg = cv2.imencode(".jpg", np.clip((scan / 255.0) ** 0.8 * 255, 0, 255).astype(np.uint8),
                            [cv2.IMWRITE_JPEG_QUALITY, 60])
    copy = resize_square(cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE), 200)
    assert hamming(phash64(scan), phash64(lookalike)) <= 4 and hamming(phash64(scan), phash64(copy)) <= 4
    assert similarity(scan, lookalike) < MIN_SIMILARITY <= similarity(scan, copy)

    m = _dataset_of(tmp_path / "d", {"scan": scan, "lookalike": lookalike})
    report = audit_frame(m, root=tmp_path / "d")
    assert report.near["candidates"] == 1 and report.near["rejected"] == 1 and report.near["groups"] == 0
    m = _dataset_of(tmp_path / "e", {"scan": scan, "copy": copy})
    report = audit_frame(m, root=tmp_path / "e")
    assert report.near["confirmed"] == 1 and report.near["list"][0]["paths"] == ["images/copy.png", "images/scan.png"]
