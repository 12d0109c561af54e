"""`btc audit`: exact groups, near groups confirmed by pixels, label conflicts, leakage across
splits/classes/folds, patients, JSON."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from btc.data.audit import (
    NEAR_THRESHOLD,
    AuditReport,
    audit_dataset,
    audit_frame,
    dedup_split,
    find_duplicates,
    near_pairs,
)
from btc.data.images import hamming, phash64, pixel_sha256
from btc.data.similarity import SIDE
from tests.conftest import run_cli

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLE = DATA / "kaggle-original-sample"




def row(path: str, label: str, split: str, sha: str, phash: str, **extra) -> dict:
    return {"path": path, "label": label, "split": split, "patient_id": extra.pop("patient_id", ""),
            "source": "phantom", "orig_path": path, "height": 8, "width": 8,
            "sha256": sha * 64 if len(sha) == 1 else sha, "phash": phash, **extra}


def flip(h: str, bits: int) -> str:
    """`h` with its `bits` lowest bits flipped."""
    return f"{int(h, 16) ^ ((1 << bits) - 1):016x}"


H1, H2 = "f0f0f0f0f0f0f0f0", "0123456789abcdef"


class Scans:
    """Pixels for synthetic manifests: rows of one scan id look alike (similarity 1), rows of
    different scans do not (independent random signatures, similarity ≈ 0)."""

    def __init__(self, scans: list[str]) -> None:
        self.scans = scans
        self.asked: list[int] = []

    def signatures(self, rows, progress=None) -> np.ndarray:
        self.asked += list(rows)
        out = []
        for r in rows:
            v = np.random.default_rng(abs(hash(self.scans[r])) % 2**32).standard_normal(SIDE * SIDE)
            out.append((v - v.mean()) / np.linalg.norm(v - v.mean()))
        return np.array(out, dtype=np.float32)


def _six() -> pd.DataFrame:
    return pd.DataFrame([
        row("a", "glioma", "train", "1", H1),
        row("b", "glioma", "test", "1", H1),             # exact copy of a, other split
        row("c", "glioma", "train", "2", flip(H1, 2)),   # near a (2 bits)
        row("d", "meningioma", "test", "3", H2),
        row("e", "pituitary", "test", "4", flip(H2, 4)),  # near d, other class
        row("f", "notumor", "train", "5", flip(H2, 40)),  # unrelated
    ])


def test_exact_near_groups_and_leakage():
    df = _six()
    pixels = Scans(["s1", "s1", "s1", "d", "e", "f"])  # c is a copy of a; d and e only look alike by hash
    r = audit_frame(df, pixels=pixels)
    assert r.images == 6
    assert r.exact["groups"] == 1 and r.exact["files"] == 2 and r.exact["cross_split_groups"] == 1
    assert r.exact["list"][0]["paths"] == ["a", "b"] and r.exact["list"][0]["splits"] == ["train", "test"]
    near = r.near
    assert near["threshold"] == NEAR_THRESHOLD == 4
    # candidates: a~c (b is a's exact copy: one unit) and d~e; only a~c is the same scan
    assert near["candidates"] == 2 and near["confirmed"] == 1 and near["rejected"] == 1
    assert near["rejected_cross_class"] == 1 and near["verified"] and near["min_similarity"] == 0.75
    assert near["groups"] == 1 and near["files"] == 3 and near["cross_class_groups"] == 0
    g = near["list"][0]
    assert g["paths"] == ["a", "b", "c"] and g["max_distance"] == 2 and g["similarity"] == pytest.approx(1.0)
    assert r.conflicts == []  # d and e differ in pixels: never merged, never a conflict
    assert sorted(set(pixels.asked)) == [0, 2, 3, 4]  # one row per exact group, only rows of candidates
    # a stricter threshold drops the 4-bit candidate before any pixel is looked at
    strict = audit_frame(df, threshold=2, pixels=Scans(["s1", "s1", "s1", "d", "e", "f"])).near
    assert strict["candidates"] == 1 and strict["groups"] == 1 and strict["list"][0]["paths"] == ["a", "b", "c"]
    assert r.classes == {"glioma": 3, "meningioma": 1, "notumor": 1, "pituitary": 1}


def test_a_hash_alone_merges_nothing():
    r = audit_frame(_six())  # no pixels to check
    assert not r.near["verified"] and r.near["candidates"] == 2 and r.near["confirmed"] == 0
    assert r.near["groups"] == 0 and r.exact["groups"] == 1
    assert "2 hash candidates at ≤4 bits not checked" in r.headline()


def test_same_scan_with_two_labels_is_a_listed_label_conflict():
    df = _six()
    r = audit_frame(df, pixels=Scans(["s1", "s1", "s1", "twin", "twin", "f"]))
    assert r.near["groups"] == 2 and r.near["cross_class_groups"] == 1
    assert r.conflicts == [{"kind": "near", "paths": ["d", "e"], "splits": ["test", "test"],
                            "labels": ["meningioma", "pituitary"], "cross_split": False, "cross_class": True,
                            "similarity": pytest.approx(1.0)}]
    exact_twins = pd.DataFrame([row("x", "glioma", "train", "7", H1), row("y", "notumor", "test", "7", H1)])
    conflict = audit_frame(exact_twins, pixels=Scans(["x", "y"])).conflicts
    assert [(c["kind"], c["paths"], c["labels"]) for c in conflict] == [("exact", ["x", "y"], ["glioma", "notumor"])]
    assert "similarity" not in conflict[0]
    summary = r.summary()
    assert summary["label_conflicts"] == 1 and "1 possible label conflicts" in r.headline()
    assert r.to_dict()["label_conflicts"] == r.conflicts


def test_dedup_split_keeps_groups_on_one_side():
    df = pd.DataFrame([
        row("a", "glioma", "train", "1", H1), row("b", "glioma", "test", "1", H1),
        row("c", "glioma", "test", "2", flip(H1, 2)), row("d", "glioma", "train", "3", H2),
        row("e", "glioma", "train", "4", flip(H2, 2)), row("f", "glioma", "test", "5", flip(H2, 4)),
        row("g", "glioma", "test", "6", flip(H2, 30)),
    ])
    dups = find_duplicates(df, Scans(["A", "A", "A", "D", "D", "D", "G"]))
    split = dedup_split(df, dups)
    assert list(split) == ["test", "test", "test", "train", "train", "train", "test"]
    for rows in dups.groups:
        assert split.iloc[rows].nunique() == 1
    assert dups.labels() == ["1", "1", "1", "2", "2", "2", ""]
    # f only looks like d and e by hash: it keeps its own split
    apart = find_duplicates(df, Scans(["A", "A", "A", "D", "D", "F", "G"]))
    assert list(dedup_split(df, apart)) == ["test", "test", "test", "train", "train", "test", "test"]
    tie = pd.DataFrame([row("a", "x", "train", "1", H1), row("b", "x", "test", "1", H1)])
    assert list(dedup_split(tie, find_duplicates(tie))) == ["train", "train"]


def test_original_fingerprints_also_link_images():
    # prepared pixels differ (different crops) but the originals are the same image
    df = pd.DataFrame([
        row("a", "x", "train", "1", H1, orig_sha256="9" * 64, orig_phash=H2),
        row("b", "x", "test", "2", flip(H1, 20), orig_sha256="9" * 64, orig_phash=H2),
        row("c", "x", "test", "3", flip(H1, 40), orig_sha256="8" * 64, orig_phash=flip(H2, 2)),
    ])
    r = audit_frame(df, pixels=Scans(["s", "s", "s"]))
    assert r.exact["groups"] == 1 and r.exact["list"][0]["paths"] == ["a", "b"]
    assert r.near["groups"] == 1 and r.near["list"][0]["paths"] == ["a", "b", "c"]
    assert r.near["list"][0]["max_distance_orig"] == 2


def test_patients_folds_and_sizes():
    df = pd.DataFrame([
        row("a", "x", "train", "1", H1, patient_id="MR049453", fold=1, orig_height=512, orig_width=512),
        row("b", "x", "test", "2", flip(H1, 30), patient_id="MR049453", fold=1, orig_height=512, orig_width=512),
        row("c", "x", "train", "3", H2, patient_id="MR049453B", fold=2, orig_height=256, orig_width=256),
        row("d", "x", "train", "4", flip(H2, 2), patient_id="P7", fold=3, orig_height=256, orig_width=300),
        row("e", "x", "train", "5", flip(H2, 30), patient_id="", fold=None, orig_height=256, orig_width=300),
    ])
    r = audit_frame(df, pixels=Scans(["a", "b", "c", "c", "e"]))
    p = r.patients
    assert p["with_id"] == 4 and p["ids"] == 3
    assert p["cross_split"] == 1 and p["cross_split_ids"] == ["MR049453"]
    assert p["cross_fold"] == 0 and p["similar_ids"] == [["MR049453", "MR049453B"]]
    assert r.near["cross_fold_groups"] == 1  # c (fold 2) ~ d (fold 3)
    assert r.sizes["basis"] == "original"
    assert list(r.sizes["histogram"].items()) == [("300x256", 2), ("512x512", 2), ("256x256", 1)]


def test_near_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=300, dtype=np.uint64)
    hashes[10] = hashes[3] ^ np.uint64(0b111)
    hashes[200] = hashes[3]
    pairs = {(int(i), int(j)) for i, j, _ in near_pairs(hashes, 6, chunk=64)}
    brute = {(i, j) for i, j in itertools.combinations(range(300), 2)
             if bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= 6}
    assert pairs == brute and (3, 10) in pairs and (3, 200) in pairs


def _tiny_dataset(root: Path) -> None:
    from btc.data.manifest import write_dataset_yaml, write_manifest

    rows = []
    rng = np.random.default_rng(1)
    base = (rng.random((32, 32)) * 255).astype(np.uint8)
    for name, split, image in [("a", "train", base), ("b", "test", base), ("c", "test", 255 - base)]:
        (root / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / f"{name}.png"), image)
        rows.append(row(f"images/{name}.png", "glioma", split, pixel_sha256(image), phash64(image)))
    write_manifest(pd.DataFrame(rows), root)
    write_dataset_yaml(root, {"name": "tiny", "classes": ["glioma"],
                              "skipped": [{"path": "x.jpg", "reason": "empty file"}]})


def test_cli_json_object(tmp_path, capfd):
    _tiny_dataset(tmp_path / "d")
    code, out, err = run_cli(["audit", str(tmp_path / "d"), "--json"], capfd)
    assert code == 0, err
    r = json.loads(out)
    for key in ("images", "exact", "near", "patients", "skipped"):
        assert key in r
    for section in ("exact", "near"):
        for key in ("groups", "files", "cross_split_groups", "cross_class_groups", "list"):
            assert key in r[section]
    assert r["label_conflicts"] == [] and r["near"]["verified"] is True
    assert r["near"]["threshold"] == NEAR_THRESHOLD
    assert {"with_id", "cross_split"} <= set(r["patients"])
    assert r["images"] == 3 and r["exact"]["groups"] == 1 and r["exact"]["cross_split_groups"] == 1
    assert r["exact"]["list"][0] == {"paths": ["images/a.png", "images/b.png"], "splits": ["train", "test"],
                                     "labels": ["glioma", "glioma"], "cross_split": True, "cross_class": False}
    assert r["skipped"] == [{"path": "x.jpg", "reason": "empty file"}]
    assert err == ""  # --json: JSON on stdout, nothing else anywhere
    code, out, _ = run_cli(["audit", str(tmp_path / "d"), "--json", "--threshold", "0"], capfd)
    assert json.loads(out)["near"]["threshold"] == 0
    code, out, _ = run_cli(["audit", str(tmp_path / "d")], capfd)
    assert code == 0 and "1 exact-duplicate groups" in out and "skipped x.jpg: empty file" in out


def test_audit_dataset_returns_a_report_and_prints_nothing(tmp_path, capfd):
    _tiny_dataset(tmp_path / "d")
    report = audit_dataset(tmp_path / "d")
    assert capfd.readouterr() == ("", "")
    assert isinstance(report, AuditReport)
    assert report.dataset == str(tmp_path / "d") and report.missing == [] and report.threshold == NEAR_THRESHOLD
    assert list(report.to_dict()) == ["dataset", "images", "classes", "splits", "exact", "near", "label_conflicts",
                                      "patients", "sizes", "missing", "skipped"]
    summary = report.summary()  # what dataset.yaml keeps: numbers, no group lists
    assert summary["exact"] == {k: v for k, v in report.exact.items() if k != "list"} and summary["skipped"] == 1
    assert report.headline().startswith("3 images; 1 exact-duplicate groups (2 files, 1 cross-split, 0 cross-class)")
    assert report.headline().endswith("; 1 inputs skipped")


def test_cli_not_a_dataset_is_one_line(tmp_path, capfd):
    code, _, err = run_cli(["audit", str(tmp_path / "nothing")], capfd)
    assert code == 1 and err.startswith("error:") and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["audit", str(tmp_path / "empty"), "--json"], capfd)
    assert code == 1 and "not a prepared dataset" in err


def test_threshold_on_the_real_sample(tmp_path):
    """The documented thresholds: known copies are within the hash's and confirmed by the pixels',
    different images are not candidates."""
    if not SAMPLE.is_dir():
        pytest.skip(f"{SAMPLE} not present (real Kaggle sample)")
    from btc.data.sources.kaggle import prepare_kaggle

    out = tmp_path / "k"
    prepare_kaggle(SAMPLE, out, size=64, workers=1)
    m = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    r = audit_frame(m, root=out)
    assert r.near["verified"] and r.near["candidates"] == 5 and r.near["rejected"] == 0
    grouped = {frozenset(g["paths"]) for g in r.exact["list"] + r.near["list"]}
    # images of different classes stay well outside the threshold, on either fingerprint
    closest = min(min(hamming(a.phash, b.phash), hamming(a.orig_phash, b.orig_phash))
                  for a, b in itertools.combinations(m.itertuples(), 2) if a.label != b.label)
    assert closest >= NEAR_THRESHOLD + 4
    # every near group is small (no chaining of unrelated images) and within one class
    assert all(len(g["paths"]) <= 3 and not g["cross_class"] for g in r.near["list"])
    assert r.near["groups"] == 5 and r.near["cross_split_groups"] == 4
    for a, b in [("test/notumor/Te-no_0140", "train/notumor/Tr-no_0474"),   # copies, other margins
                 ("test/notumor/Te-no_0080", "train/notumor/Tr-no_1264"),
                 ("test/notumor/Te-no_0380", "train/notumor/Tr-no_0948"),
                 ("test/pituitary/Te-pi_0060", "train/pituitary/Tr-pi_0720")]:  # adjacent slices
        assert any({f"images/{a}.png", f"images/{b}.png"} <= g for g in grouped), (a, b)


def test_cli_lists_label_conflicts_with_their_files(tmp_path, capfd):
    """The same scan under two labels (a copy, and a re-encoded near copy) is listed, file by file."""
    from btc.data.manifest import write_dataset_yaml, write_manifest

    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    yy, xx = np.mgrid[0:96, 0:96]
    scan = ((np.sin(xx / 5.0) * np.cos(yy / 7.0) + 1) * 100 + (xx > 40) * 40).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", scan, [cv2.IMWRITE_JPEG_QUALITY, 70])
    images = {"glioma/a.png": scan, "meningioma/a.png": scan, "pituitary/b.png": cv2.imdecode(jpeg, 0)}
    rows = []
    for rel, image in images.items():
        (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / rel), image)
        rows.append(row(f"images/{rel}", rel.split("/")[0], "train", pixel_sha256(image), phash64(image)))
    write_manifest(pd.DataFrame(rows), root)
    write_dataset_yaml(root, {"name": "d", "classes": ["glioma", "meningioma", "pituitary"]})
    code, out, err = run_cli(["audit", root, "--json"], capfd)
    assert code == 0 and err == ""
    conflicts = json.loads(out)["label_conflicts"]
    assert [(c["kind"], c["paths"], c["labels"]) for c in conflicts] == [
        ("near", ["images/glioma/a.png", "images/meningioma/a.png", "images/pituitary/b.png"],
         ["glioma", "meningioma", "pituitary"])]
    code, out, _ = run_cli(["audit", root, "-q"], capfd)
    assert code == 0 and "possible label conflicts: 1 groups" in out
    assert "images/glioma/a.png (train/glioma)" in out and "images/pituitary/b.png" in out
