"""`btc prepare folder`: class-per-folder trees, labels.yaml (folder map, tasks, splits, patients)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from btc.data.images import read_image
from btc.data.manifest import load_dataset
from btc.data.sources import new_image_step
from btc.data.sources.folder import load_labels, prepare_folder
from btc.data.sources.input_step import Resize
from btc.errors import BtcError
from tests.conftest import run_cli


def img(path: Path, seed: int, shape: tuple[int, ...] = (40, 50)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, size=shape, dtype=np.uint8))
    return path


@pytest.fixture()
def hospital(tmp_path):
    """Paper 001-like tree: seven tumour types + normal, patient id in the file name."""
    src = tmp_path / "hospital"
    kinds = ["Glioma", "Meningioma", "Pituitary", "Schwannoma", "Craniopharyngioma", "Lymphoma", "Metastasis"]
    seed = 0
    for split in ("Train", "Test"):
        for kind in kinds + ["Normal"]:
            for i in range(2):
                seed += 1
                img(src / split / kind / f"P{seed:03d}_{i}.png", seed, (40 + i, 44, 3))
    (src / "Train" / "Scratch").mkdir()
    img(src / "Train" / "Scratch" / "junk.png", 999)
    labels = tmp_path / "labels.yaml"
    labels.write_text(
        "folders:\n"
        "  Normal: notumor\n  Glioma: glioma\n  Meningioma: meningioma\n  Pituitary: pituitary\n"
        "  Schwannoma: schwannoma\n  Craniopharyngioma: craniopharyngioma\n  Lymphoma: lymphoma\n"
        "  Metastasis: metastasis\n"
        "classes: [notumor, glioma, meningioma, pituitary, schwannoma, craniopharyngioma, lymphoma, metastasis, unused]\n"
        "tasks:\n"
        "  presence: {no_tumor: [notumor], tumor: [glioma, meningioma, pituitary, schwannoma,"
        " craniopharyngioma, lymphoma, metastasis]}\n"
        "  source: {primary: [glioma, meningioma, pituitary, schwannoma, craniopharyngioma, lymphoma],"
        " secondary: [metastasis]}\n"
        "splits: {train: train, test: test}\n"
        "patient_id: '^[^/]+/[^/]+/(?P<id>P\\d+)_'\n"
    )
    return src, labels


def test_hospital_tree_with_tasks(hospital, tmp_path, capfd):
    src, labels = hospital
    out = tmp_path / "out"
    code, _, err = run_cli(["prepare", "folder", str(src), str(out), "--labels", str(labels), "--size", "32",
                            "-j", "1"], capfd)
    assert code == 0, err
    assert "skipped Train/Scratch/: folder not in labels.yaml (1 files)" in err.splitlines()
    ds = load_dataset(out)
    assert ds.classes == ["notumor", "glioma", "meningioma", "pituitary", "schwannoma",
                          "craniopharyngioma", "lymphoma", "metastasis"]  # 'unused' has no image
    names, index = ds.task_labels("source")
    assert names == ["primary", "secondary"] and index["metastasis"] == 1 and "notumor" not in index
    names, index = ds.task_labels("presence")
    assert names == ["no_tumor", "tumor"] and index["notumor"] == 0
    m = ds.manifest
    assert len(m) == 32 and set(m["split"]) == {"train", "test"} and set(m["source"]) == {"folder"}
    row = m[m["orig_path"] == "Train/Glioma/P001_0.png"].iloc[0]
    assert row["label"] == "glioma" and row["patient_id"] == "P001" and row["folder"] == "Glioma"
    assert row["path"] == "images/Train/Glioma/P001_0.png"
    assert (m["height"] == 32).all()
    out_img = cv2.imread(str(out / row["path"]), cv2.IMREAD_UNCHANGED)
    assert out_img.ndim == 2 and out_img.dtype == np.uint8


def test_no_labels_uses_folder_names_and_keeps_size(tmp_path):
    src = tmp_path / "src"
    img(src / "cats" / "a.png", 1, (36, 50))
    img(src / "dogs" / "b.jpg", 2, (45, 55))
    img(src / "dogs" / "b.png", 3, (45, 55))  # same stem: names made unique
    img(src / "loose.png", 4)
    summary = prepare_folder(src, tmp_path / "out", workers=1)
    ds = load_dataset(tmp_path / "out")
    assert ds.classes == ["cats", "dogs"] and ds.info["tasks"] == {}
    assert sorted(ds.manifest["path"]) == ["images/cats/a.png", "images/dogs/b_jpg.png", "images/dogs/b_png.png"]
    assert (ds.manifest["split"] == "").all()
    assert ds.manifest.set_index("orig_path").loc["cats/a.png", "height"] == 36
    assert summary.skipped == [("loose.png", "not inside a class folder")]


def test_plain_mapping_and_presence_default(tmp_path):
    src = tmp_path / "src"
    img(src / "tumour" / "a.png", 1)
    img(src / "healthy" / "b.png", 2)
    labels = tmp_path / "l.yaml"
    labels.write_text("tumour: glioma\nhealthy: notumor\n")
    prepare_folder(src, tmp_path / "out", labels=labels, workers=1)
    ds = load_dataset(tmp_path / "out")
    assert ds.classes == ["glioma", "notumor"]
    assert ds.info["tasks"] == {"presence": {"tumor": ["glioma"], "no_tumor": ["notumor"]}}


@pytest.mark.parametrize("text, message", [
    ("tasks:\n  t: {a: [nope]}\nfolders: {x: a}\n", "task 't' class 'a' names unknown label(s) ['nope']"),
    ("folders: {x: a}\nclasses: [b]\n", "missing from 'classes'"),
    ("- just\n- a list\n", "must be a mapping"),
    ("folders: {x: a}\nsplits: {x: validation}\n", "must be train or test"),
    ("folders: {x: a}\nwhat: 1\n", "unknown key(s)"),
    ("folders: [unclosed\n", "not valid YAML"),
    ("folders: {yes: glioma, no: notumor}\n", "quote folder names"),
])
def test_bad_labels_yaml_is_one_line(text, message, tmp_path, capfd):
    src = tmp_path / "src"
    img(src / "x" / "a.png", 1)
    labels = tmp_path / "labels.yaml"
    labels.write_text(text)
    with pytest.raises(BtcError, match=None) as e:
        load_labels(labels)
    assert message in str(e.value)
    code, _, err = run_cli(["prepare", "folder", str(src), str(tmp_path / "out"), "--labels", str(labels)], capfd)
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_images_and_nothing_usable(tmp_path, capfd):
    src = tmp_path / "src"
    img(src / "a" / "ok.png", 1)
    (src / "a" / "empty.png").write_bytes(b"")
    (src / "b").mkdir()
    (src / "b" / "text.png").write_text("hello")
    code, _, err = run_cli(["prepare", "folder", str(src), str(tmp_path / "out"), "-j", "1"], capfd)
    assert code == 0 and "skipped a/empty.png: empty file" in err.splitlines()
    assert "skipped b/text.png: not an image (a text file)" in err.splitlines()
    (src / "a" / "ok.png").unlink()
    code, _, err = run_cli(["prepare", "folder", str(src), str(tmp_path / "out2"), "-j", "1"], capfd)
    assert code == 1 and "no usable images" in err and "Traceback" not in err


@pytest.mark.parametrize("size", [None, 32])
def test_new_image_step_reproduces_what_prepare_wrote(size, tmp_path):
    """A new raw image brought to the dataset (as `btc predict` does) equals the prepared image."""
    src = tmp_path / "src"
    img(src / "gray" / "a.png", 1, (36, 48))
    img(src / "colour" / "b.png", 2, (45, 35, 3))
    deep = src / "deep" / "c.png"
    deep.parent.mkdir(parents=True)
    cv2.imwrite(str(deep), np.random.default_rng(3).integers(0, 65535, size=(50, 40), dtype=np.uint16))
    out = tmp_path / "out"
    prepare_folder(src, out, size=size, workers=1)
    ds = load_dataset(out)
    step = new_image_step(ds.info)
    assert step == Resize(size)
    assert step.describe() == ("resize to 32²" if size else "none (original size)")
    for rec in ds.manifest.itertuples():
        raw = read_image(src / rec.orig_path)
        image, box = step.apply(raw)
        assert box == (0, 0, raw.shape[1], raw.shape[0])
        assert np.array_equal(image, cv2.imread(str(out / rec.path), cv2.IMREAD_UNCHANGED)), rec.orig_path
