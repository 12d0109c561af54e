"""The phantom generator: class balance, patient ids, determinism, lesions that differ by class."""

import numpy as np

from btc.data.images import read_image
from btc.data.manifest import load_dataset
from btc.data.phantom import CLASSES, prepare_phantom
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
    prepare_phantom(tmp_path, per_class=8, size=96, seed=1, quiet=True)
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
