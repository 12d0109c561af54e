"""`btc prepare figshare`: MATLAB v7.3 cjdata → PNGs, masks, patient ids, official folds."""

from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from btc.data.images import read_gray_uint8
from btc.data.manifest import load_dataset
from btc.data.sources import new_image_step
from btc.data.sources.figshare import LABELS, prepare_figshare, read_cjdata
from btc.data.sources.input_step import Resize
from btc.errors import BtcError
from tests.conftest import run_cli

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLE = DATA / "figshare-sample"




def write_mat(path: Path, image: np.ndarray, label: float, pid: str, mask: np.ndarray | None = None) -> Path:
    """A MATLAB v7.3 file in the Figshare layout (h5py stores MATLAB arrays transposed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        g = f.create_group("cjdata")
        g.attrs["MATLAB_class"] = np.bytes_("struct")
        g.create_dataset("image", data=image.T)
        g.create_dataset("label", data=np.array([[label]], dtype=np.float64))
        pid_ds = g.create_dataset("PID", data=np.array([[ord(c)] for c in pid], dtype=np.uint16))
        pid_ds.attrs["MATLAB_class"] = np.bytes_("char")
        g.create_dataset("tumorBorder", data=np.zeros((1, 4)))
        if mask is not None:
            g.create_dataset("tumorMask", data=mask.T.astype(np.uint8))
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: btc tests HDF5 schema 1.00 .".ljust(128))
    return path


def write_cvind(path: Path, folds: list[int]) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("cvind", data=np.array([folds], dtype=np.float64))
    return path


def slice_image(seed: int, h: int = 48, w: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 900, size=(h, w)).astype(np.int16)
    img[h // 4: 3 * h // 4, w // 4: 3 * w // 4] += 1500  # not symmetric: transposition would show
    img[0, :] = 0
    return img


def box_mask(h: int = 48, w: int = 40) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[10:20, 5:30] = 1
    return m


@pytest.fixture()
def synthetic(tmp_path):
    src = tmp_path / "mats"
    write_mat(src / "1.mat", slice_image(1), 1, "MR0001", box_mask())
    write_mat(src / "2.mat", slice_image(2), 2, "MR0001", box_mask())
    write_mat(src / "3.mat", slice_image(3), 3, "MR0002B", box_mask())
    write_cvind(src / "cvind.mat", [4, 4, 2, 1])
    return src


# --------------------------------------------------------------------------- real sample


def test_real_sample_pixels_labels_patients_folds(tmp_path):
    if not SAMPLE.is_dir():
        pytest.skip(f"{SAMPLE} not present (real Figshare sample, see ../shared/data/README.md)")
    out = tmp_path / "fig"
    summary = prepare_figshare(SAMPLE, out, size=64, workers=2, bit16=True)
    mats = sorted(p for p in SAMPLE.glob("*.mat") if p.name != "cvind.mat")
    ds = load_dataset(out)
    m = ds.manifest.set_index("orig_path")
    assert len(m) == len(mats) == summary.images == 45 and summary.skipped == []
    assert ds.classes == ["glioma", "meningioma", "pituitary"] and "presence" not in ds.info["tasks"]
    with h5py.File(SAMPLE / "cvind.mat", "r") as f:
        cvind = f["cvind"][()].ravel()
    for mat in mats:
        row = m.loc[mat.name]
        with h5py.File(mat, "r") as f:
            image = f["cjdata/image"][()].T
            label = int(f["cjdata/label"][()].item())
            pid = "".join(chr(c) for c in f["cjdata/PID"][()].ravel())
            mask = f["cjdata/tumorMask"][()].T
        png16 = cv2.imread(str(out / row["image16_path"]), cv2.IMREAD_UNCHANGED)
        assert png16.dtype == np.uint16 and png16.shape == image.shape
        assert np.array_equal(png16.view(np.int16), image)  # lossless
        assert np.array_equal(png16.astype(np.int64), image.astype(np.int64))  # same values
        assert row["label"] == LABELS[label] and row["patient_id"] == pid
        assert row["fold"] == int(cvind[int(mat.stem) - 1])
        assert row["split"] == "" and row["source"] == "figshare"
        png8 = cv2.imread(str(out / row["path"]), cv2.IMREAD_UNCHANGED)
        assert png8.shape == (64, 64) and png8.dtype == np.uint8
        mask_png = cv2.imread(str(out / row["mask_path"]), cv2.IMREAD_UNCHANGED)
        expect = cv2.resize((mask > 0).astype(np.uint8) * 255, (64, 64), interpolation=cv2.INTER_NEAREST)
        assert np.array_equal(mask_png, expect)
    audit = ds.info["audit"]
    assert audit["patients"]["ids"] == 12 and audit["patients"]["cross_fold"] == 0
    assert audit["exact"]["groups"] == 0
    assert audit["near"]["cross_fold_groups"] == 0  # near-identical slices stay inside one patient's fold


# --------------------------------------------------------------------------- generated files


def test_synthetic_orientation_label_pid_fold_mask(synthetic, tmp_path):
    out = tmp_path / "out"
    prepare_figshare(synthetic, out, size=32, workers=1, bit16=True)
    ds = load_dataset(out)
    m = ds.manifest.set_index("orig_path")
    assert list(m.loc[["1.mat", "2.mat", "3.mat"], "label"]) == ["meningioma", "glioma", "pituitary"]
    assert list(m.loc[["1.mat", "2.mat", "3.mat"], "patient_id"]) == ["MR0001", "MR0001", "MR0002B"]
    assert list(m.loc[["1.mat", "2.mat", "3.mat"], "fold"]) == [4, 4, 2]
    assert m.loc["1.mat", "path"] == "images/meningioma/1.png"
    assert m.loc["1.mat", "mask_path"] == "masks/meningioma/1.png"
    png16 = cv2.imread(str(out / m.loc["3.mat", "image16_path"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(png16.view(np.int16), slice_image(3))  # MATLAB orientation, exact
    assert (int(m.loc["1.mat", "orig_height"]), int(m.loc["1.mat", "orig_width"])) == (48, 40)
    data = read_cjdata(synthetic / "1.mat")
    assert data["image"].shape == (48, 40) and data["mask"].shape == (48, 40)
    mask_png = cv2.imread(str(out / m.loc["1.mat", "mask_path"]), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask_png)) == {0, 255}
    assert ds.info["folds"]["values"] == [1, 2, 4]
    assert ds.info["audit"]["patients"]["similar_ids"] == 0


def test_negative_int16_pixels_roundtrip(tmp_path):
    src = tmp_path / "mats"
    img = slice_image(5)
    img[3, 3] = -1234
    write_mat(src / "9.mat", img, 2, "P9")
    out = tmp_path / "out"
    prepare_figshare(src, out, size=16, workers=1, bit16=True)
    row = load_dataset(out).manifest.iloc[0]
    png16 = cv2.imread(str(out / row["image16_path"]), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(png16.view(np.int16), img)
    assert row["mask_path"] == ""  # no tumorMask in this file


def test_bad_mat_files_one_line_each(synthetic, tmp_path, capfd):
    (synthetic / "10.mat").write_bytes(b"")
    (synthetic / "11.mat").write_text("just some text\n")
    (synthetic / "12.mat").write_bytes(b"MATLAB 5.0 MAT-file, Platform: PCWIN64".ljust(200, b"\0"))
    with h5py.File(synthetic / "13.mat", "w") as f:
        f.create_dataset("something", data=np.zeros(3))
    write_mat(synthetic / "14.mat", slice_image(14), 7, "MR14")
    write_cvind(synthetic / "cvind.mat", [4, 4, 2, 1] + [1] * 10)  # a fold for every file number
    (synthetic / "notes.txt").write_text("hi")
    out = tmp_path / "out"
    code, _, err = run_cli(["prepare", "figshare", str(synthetic), str(out), "--size", "16", "-j", "2"], capfd)
    assert code == 0, err
    assert "Traceback" not in err
    lines = err.splitlines()
    for expected in [
        "skipped 10.mat: empty file",
        "skipped 11.mat: not a MATLAB v7.3 (HDF5) .mat file",
        "skipped 13.mat: no 'cjdata' struct (found: something)",
        "skipped 14.mat: cjdata.label [7.0] is not 1 (meningioma), 2 (glioma) or 3 (pituitary)",
        "skipped notes.txt: not a .mat file",
    ]:
        assert expected in lines, err
    assert any(ln.startswith("skipped 12.mat: MATLAB v5 .mat file, not v7.3/HDF5") for ln in lines)
    ds = load_dataset(out)
    assert len(ds.manifest) == 3 and len(ds.info["skipped"]) == 6


def test_nothing_usable_exits_nonzero(tmp_path, capfd):
    src = tmp_path / "mats"
    src.mkdir()
    (src / "1.mat").write_text("nope")
    code, _, err = run_cli(["prepare", "figshare", str(src), str(tmp_path / "out")], capfd)
    assert code == 1 and "Traceback" not in err
    assert "skipped 1.mat: not a MATLAB v7.3 (HDF5) .mat file" in err and "no usable images" in err
    assert not (tmp_path / "out").exists()
    code, _, err = run_cli(["prepare", "figshare", str(tmp_path / "absent"), str(tmp_path / "out")], capfd)
    assert code == 1 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_no_tumor_merge_and_rerun(synthetic, tmp_path, capfd):
    nt = tmp_path / "normal"
    nt.mkdir()
    for i in range(3):
        img = np.zeros((40 + i, 44), np.uint8)
        cv2.circle(img, (20, 15), 8 + i, 200, -1)
        cv2.imwrite(str(nt / f"n{i}.jpg"), img)
    (nt / "broken.jpg").write_bytes(b"")
    out = tmp_path / "out"
    code, _, err = run_cli(["prepare", "figshare", str(synthetic), str(out), "--size", "24", "-j", "1",
                            "--no-tumor", str(nt)], capfd)
    assert code == 0, err
    assert "skipped normal/broken.jpg: empty file" in err.splitlines()
    ds = load_dataset(out)
    assert ds.classes == ["glioma", "meningioma", "notumor", "pituitary"]
    assert ds.info["tasks"]["presence"]["no_tumor"] == ["notumor"]
    names, index = ds.task_labels("presence")
    assert names == ["tumor", "no_tumor"] and index["notumor"] == 1
    nt_rows = ds.manifest[ds.manifest["label"] == "notumor"]
    assert len(nt_rows) == 3 and set(nt_rows["source"]) == {"folder"}
    assert (nt_rows["height"] == 24).all()
    # cvind.mat folds the slices; btc folds the no-tumour images, one per fold while folds are left
    assert set(nt_rows["fold_source"]) == {"btc"} and len(set(nt_rows["fold"])) == 3
    assert set(ds.manifest["fold_source"][ds.manifest["label"] != "notumor"]) == {"cvind"}
    assert ds.info["folds"]["fold_source"] == {"cvind": 3, "btc": 3}
    assert sorted(nt_rows["orig_path"]) == ["normal/n0.jpg", "normal/n1.jpg", "normal/n2.jpg"]
    code, stdout, err = run_cli(["prepare", "figshare", str(synthetic), str(out), "--size", "24", "-j", "1",
                                 "--no-tumor", str(nt)], capfd)
    assert code == 0 and "6 reused" in stdout


def test_new_image_step_reproduces_what_prepare_wrote(synthetic, tmp_path):
    """A raw slice (int16) or a no-tumour image brought to the dataset equals the prepared image."""
    nt = tmp_path / "normal"
    nt.mkdir()
    cv2.imwrite(str(nt / "n0.jpg"), cv2.circle(np.zeros((40, 44, 3), np.uint8), (20, 15), 9, (90, 200, 30), -1))
    out = tmp_path / "out"
    prepare_figshare(synthetic, out, size=24, workers=1, no_tumor=nt)
    ds = load_dataset(out)
    step = new_image_step(ds.info)
    assert step == Resize(24) and step.describe() == "resize to 24²"
    m = ds.manifest.set_index("orig_path")
    for mat in ("1.mat", "2.mat", "3.mat"):
        raw = read_cjdata(synthetic / mat)["image"]
        image, box = step.apply(raw)
        assert raw.dtype == np.int16 and box == (0, 0, 40, 48)
        assert np.array_equal(image, cv2.imread(str(out / m.loc[mat, "path"]), cv2.IMREAD_UNCHANGED))
    image, box = step.apply(read_gray_uint8(nt / "n0.jpg"))  # as btc predict reads it
    assert box == (0, 0, 44, 40)
    assert np.array_equal(image, cv2.imread(str(out / m.loc["normal/n0.jpg", "path"]), cv2.IMREAD_UNCHANGED))


def test_no_tumor_folder_without_files_is_refused_before_anything_is_written(synthetic, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    with pytest.raises(BtcError, match="--no-tumor .*no image files in the folder"):
        prepare_figshare(synthetic, out, size=24, workers=1, no_tumor=empty)
    assert not out.exists() and not list(tmp_path.glob("out*"))


def test_leak_free_cv_defaults_to_the_official_folds(tmp_path, capsys):
    if not SAMPLE.is_dir():
        pytest.skip(f"{SAMPLE} not present (real Figshare sample, see ../shared/data/README.md)")
    from btc.runfolder import CVFolder
    from tests.conftest import run_cli

    data = tmp_path / "fig"
    prepare_figshare(SAMPLE, data, size=32, workers=1)
    official = load_dataset(data).manifest["fold"].nunique()
    out = tmp_path / "cv"
    code, stdout, err = run_cli(["cv", "--data", data, "--model", "small_cnn", "--protocol", "leak-free",
                                 "--image-size", "32", "--epochs", "1", "--fold", "1", "--device", "cpu", "--set", "val_fraction=0",
                                 "--out", out], capsys)
    assert code == 0, err
    assert f"{official} folds, the dataset's official patient-wise folds" in stdout + err
    assert CVFolder(out).read_folds().n_folds == official


@pytest.mark.parametrize("content", ["tumour class folders", "no image"])
def test_no_tumor_folder_of_tumour_classes_or_without_images_is_refused(synthetic, tmp_path, content):
    nt = tmp_path / "Training"
    if content == "no image":
        nt.mkdir()
        (nt / "readme.txt").write_text("not an image")
    else:
        for name in ("glioma", "notumor"):
            (nt / name).mkdir(parents=True)
            cv2.imwrite(str(nt / name / "a.png"), np.zeros((20, 20), np.uint8))
    out = tmp_path / "out"
    with pytest.raises(BtcError, match="--no-tumor .*(glioma|no image files)"):
        prepare_figshare(synthetic, out, size=24, workers=1, no_tumor=nt)
    assert not out.exists()
