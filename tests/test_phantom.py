"""The phantom generator: class balance, patient ids, determinism, lesions that differ by class."""

import numpy as np

from btc.data.images import read_image
from btc.data.manifest import load_dataset
from btc.data.sources import new_image_step
from btc.data.sources.input_step import Identity
from btc.data.sources.phantom import CLASSES, generate, prepare_phantom
from tests.conftest import run_cli


def test_balance_patients_and_splits(phantom_dir):
    ds = load_dataset(phantom_dir)
    m = ds.manifest
    assert ds.classes == list(CLASSES)
    assert m["label"].value_counts().to_dict() == {c: 24 for c in CLASSES}
    per_patient = m.groupby("patient_id").size()
    assert (per_patient == 4).all() and len(per_patient) == 24
    # each patient has one class and one split: no patient on both sides
    assert (m.groupby("patient_id")["label"].nunique() == 1).all()
    assert (m.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(m["split"]) == {"train", "test"}
    for path in m["path"][:8]:
        image = read_image(phantom_dir / path)
        assert image.shape == (64, 64) and image.dtype == np.uint8


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path, capsys):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        code, _, err = run_cli(["prepare", "phantom", tmp_path / name, "--per-class", 8, "--size", 64,
                                "--seed", seed, "--quiet"], capsys)
        assert code == 0, err
    a, b, c = ((tmp_path / n / "manifest.csv").read_bytes() for n in "abc")
    assert a == b
    assert a != c


def test_black_margins_and_lesions(tmp_path):
    prepare_phantom(tmp_path, per_class=8, size=96, seed=1)
    m = load_dataset(tmp_path).manifest
    images = {label: np.stack([read_image(tmp_path / p).astype(float) for p in m[m.label == label].path])
              for label in CLASSES}
    for stack in images.values():
        # a black border all around the head, so cropping has work to do
        assert stack[:, 0, :].max() == 0 and stack[:, -1, :].max() == 0
        assert stack[:, :, 0].max() == 0 and stack[:, :, -1].max() == 0
    # tumour classes have bright spots that tumour-free heads lack (99.9th percentile inside the head)
    def bright(stack):
        return np.mean([np.percentile(im[im > 20], 99.5) for im in stack])
    assert bright(images["meningioma"]) > bright(images["notumor"])
    assert bright(images["pituitary"]) > bright(images["notumor"])


def test_new_image_step_is_identity(phantom_dir):
    """Phantom slices are written as generated: the new-image step changes nothing."""
    ds = load_dataset(phantom_dir)
    step = new_image_step(ds.info)
    assert step == Identity() and step.describe() == "none"
    by_path = ds.manifest.set_index("path")
    for rel, _label, _pid, _split, raw in list(generate(per_class=24, size=64, per_patient=4, seed=0))[::17]:
        image, box = step.apply(raw)
        assert box == (0, 0, 64, 64) and rel in by_path.index
        assert np.array_equal(image, read_image(phantom_dir / rel))


def test_unknown_source_is_identity_and_says_so():
    step = new_image_step({"source": "hospital-x", "params": {"size": 64}})
    raw = np.arange(12, dtype=np.uint16).reshape(3, 4) * 4000
    image, box = step.apply(raw)
    assert image.dtype == np.uint8 and image.shape == (3, 4) and box == (0, 0, 4, 3)
    assert "unknown source 'hospital-x'" in step.describe()
    assert "names no source" in new_image_step({}).describe()


def test_prepare_summary_and_quiet_cli(tmp_path, capsys):
    summary = prepare_phantom(tmp_path / "p", per_class=4, size=32)
    assert capsys.readouterr() == ("", "")
    assert summary.images == 16 and summary.classes == list(CLASSES) and summary.source == "phantom"
    assert summary.counts == load_dataset(tmp_path / "p").info["counts"]
    code, out, err = run_cli(["prepare", "phantom", tmp_path / "q", "--per-class", 4, "--size", 32, "--quiet"], capsys)
    assert code == 0 and err == ""
    assert out.splitlines() == [f"wrote 16 images of 4 classes to {tmp_path / 'q'}"]
