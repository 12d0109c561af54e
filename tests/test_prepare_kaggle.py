"""`btc prepare kaggle`: the extreme-point crop, bad inputs, idempotency, atomicity, dedup split."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from btc.data.images import read_image, to_gray_uint8
from btc.data.manifest import load_dataset
from btc.data.prepare import inputs
from btc.data.prepare.inputs import Skipped
from btc.data.prepare.staging import Stage
from btc.data.sources import kaggle, new_image_step
from btc.data.sources.kaggle import crop_box, prepare_kaggle
from tests.conftest import run_cli

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLE = DATA / "kaggle-original-sample"


def need_sample() -> Path:
    if not SAMPLE.is_dir():
        pytest.skip(f"{SAMPLE} not present (real Kaggle sample, see ../shared/data/README.md)")
    return SAMPLE




def head_image(h: int = 120, w: int = 100, margin: int = 20, value: int = 160) -> np.ndarray:
    """A bright ellipse ("head") with black margins."""
    img = np.zeros((h, w), np.uint8)
    cv2.ellipse(img, (w // 2, h // 2), (w // 2 - margin, h // 2 - margin), 0, 0, 360, value, -1)
    cv2.circle(img, (w // 2, h // 2), 5, 250, -1)
    return img


def write(path: Path, data: bytes | np.ndarray, ext: str = ".png") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, np.ndarray):
        ok, buf = cv2.imencode(ext, data)
        assert ok
        data = buf.tobytes()
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def sample_prepared(tmp_path_factory):
    src = need_sample()
    out = tmp_path_factory.mktemp("kaggle") / "out"
    summary = prepare_kaggle(src, out, size=64, workers=2)
    return src, out, summary


# --------------------------------------------------------------------------- the crop itself


def test_crop_box_is_inclusive_and_padded():
    img = np.zeros((100, 80), np.uint8)
    img[10:61, 20:51] = 200  # rows 10..60, cols 20..50 inclusive
    result = crop_box(img)
    assert result.note == ""
    # inclusive: the last row/column of the object is kept (the blur may add a 1-px halo)
    x0, y0, x1, y1 = result.box
    assert 19 <= x0 <= 20 and 9 <= y0 <= 10 and 51 <= x1 <= 52 and 61 <= y1 <= 62
    rx0, ry0, rx1, ry1 = result.ref
    assert rx1 >= 51 and ry1 >= 61 and rx0 <= 20 and ry0 <= 10
    assert crop_box(img, pad=5).box == (x0 - 5, y0 - 5, x1 + 5, y1 + 5)
    assert crop_box(img, pad=500).box == (0, 0, 80, 100)  # clamped to the image


def test_crop_keeps_a_head_split_into_pieces():
    # Two separate halves of a head: the reference snippet keeps only the larger one.
    img = np.zeros((200, 200), np.uint8)
    img[40:160, 30:110] = 180
    img[40:160, 116:170] = 180
    result = crop_box(img)
    assert result.ref[2] <= 112  # the reference box stops at the larger piece
    x0, y0, x1, y1 = result.box
    assert 29 <= x0 <= 30 and 39 <= y0 <= 40 and 170 <= x1 <= 171 and 160 <= y1 <= 161


def test_crop_grows_over_a_thin_ring_the_reference_erodes_away():
    img = head_image(200, 200, margin=40)
    cv2.ellipse(img, (100, 100), (80, 80), 0, 0, 360, 200, 1)  # 1-px scalp ring, eroded away
    result = crop_box(img)
    assert result.box[0] <= 20 and result.box[2] >= 180


def test_blank_and_dark_images_are_kept_uncropped_and_flagged():
    for img in (np.zeros((50, 60), np.uint8), np.full((50, 60), 30, np.uint8)):
        result = crop_box(img)
        assert result.box == (0, 0, 60, 50)
        assert "no contour" in result.note
    speck = np.zeros((300, 300), np.uint8)
    speck[100:106, 100:106] = 255
    result = crop_box(speck)
    assert result.box == (0, 0, 300, 300) and "kept uncropped" in result.note


@pytest.mark.parametrize("kind", ["gray", "bgr", "bgra", "uint16", "odd"])
def test_every_encoding_gives_a_gray_uint8_crop(kind, tmp_path):
    base = head_image(121, 97) if kind == "odd" else head_image()
    img = {
        "gray": base, "odd": base,
        "bgr": cv2.cvtColor(base, cv2.COLOR_GRAY2BGR),
        "bgra": cv2.cvtColor(base, cv2.COLOR_GRAY2BGRA),
        "uint16": base.astype(np.uint16) * 257,
    }[kind]
    path = write(tmp_path / f"{kind}.png", img)
    cropped, result = kaggle.crop_image(read_image(path))
    assert cropped.dtype == np.uint8 and cropped.ndim == 2
    assert result.note == ""
    assert cropped.shape[0] < base.shape[0] and cropped.shape[1] < base.shape[1]


# --------------------------------------------------------------------------- the real sample


def test_sample_every_image_accounted_for(sample_prepared):
    src, out, summary = sample_prepared
    files = [p for p in src.rglob("*") if p.is_file()]
    ds = load_dataset(out)
    assert len(ds.manifest) + len(summary.skipped) == len(files) == 188
    assert set(ds.manifest["orig_path"]) == {p.relative_to(src).as_posix() for p in files}
    assert ds.classes == ["glioma", "meningioma", "notumor", "pituitary"]
    assert ds.info["tasks"]["presence"] == {"tumor": ["glioma", "meningioma", "pituitary"], "no_tumor": ["notumor"]}
    assert ds.info["tasks"]["tumor_type"] == {c: [c] for c in ("glioma", "meningioma", "pituitary")}
    assert ds.info["counts"]["train"]["notumor"] == 31 and ds.info["counts"]["test"]["meningioma"] == 25
    m = ds.manifest
    assert (m["source"] == "kaggle").all() and set(m["split"]) == {"train", "test"}
    row = m[m["orig_path"] == "Training/glioma/Tr-gl_0066.jpg"].iloc[0]
    assert row["path"] == "images/train/glioma/Tr-gl_0066.png" and row["label"] == "glioma"
    assert (m["height"] == 64).all() and (m["width"] == 64).all()
    for rel in m["path"]:
        assert (out / rel).is_file()
    assert not list(out.rglob("*.tmp")) and not out.with_name(out.name + ".partial").exists()


def _dark_margin(gray: np.ndarray, t: int = 30) -> float:
    """Widest all-dark band at an edge (rows/cols with no pixel above t), as a fraction of the side."""
    fg = gray > t
    rows, cols = np.flatnonzero(fg.any(1)), np.flatnonzero(fg.any(0))
    h, w = gray.shape
    return max(rows[0], h - 1 - rows[-1], cols[0], w - 1 - cols[-1]) / max(h, w)


def test_sample_crop_removes_black_margins(sample_prepared):
    src, out, _ = sample_prepared
    m = load_dataset(out).manifest
    before = [_dark_margin(to_gray_uint8(read_image(src / p))) for p in m["orig_path"]]
    after = [_dark_margin(cv2.imread(str(out / p), cv2.IMREAD_UNCHANGED)) for p in m["path"]]
    assert sum(b > 0.05 for b in before) >= 100  # the originals do have wide black margins …
    assert max(after) <= 2 / 64  # … and after the crop no edge keeps more than a pixel or two
    assert (m["crop_note"] == "").all()  # no real image is left uncropped


def test_sample_crop_never_cuts_into_the_head(sample_prepared):
    src, out, _ = sample_prepared
    m = load_dataset(out).manifest
    for rec in m.itertuples():
        gray = to_gray_uint8(read_image(src / rec.orig_path))
        h, w = gray.shape
        x0, y0, x1, y1 = map(int, rec.crop.split(","))
        fg = (cv2.GaussianBlur(gray, (5, 5), 0) > 45).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        largest = stats[1:, cv2.CC_STAT_AREA].max()
        for k in range(1, n):
            cx, cy, cw, ch, area = stats[k]
            inside = cx >= x0 and cy >= y0 and cx + cw <= x1 and cy + ch <= y1
            outside = not labels[y0:y1, x0:x1].__eq__(k).any()
            # no component is cut by the crop border …
            assert inside or outside or area < 20, (rec.orig_path, k, stats[k])
            # … and what stays outside is small (markers, text) or an edge artefact (frame, line)
            touches_edge = cx == 0 or cy == 0 or cx + cw == w or cy + ch == h
            if outside and area >= 20:
                assert area < 0.02 * largest or touches_edge, (rec.orig_path, stats[k])


def test_sample_audit_finds_cross_split_duplicates(sample_prepared):
    _, out, summary = sample_prepared
    from btc.data.audit import audit_dataset

    report = audit_dataset(out)
    groups = report.exact["list"] + report.near["list"]

    def together(a: str, b: str) -> dict:
        for g in groups:
            if a in g["paths"] and b in g["paths"]:
                return g
        raise AssertionError(f"{a} and {b} not grouped")

    for a, b in [("test/meningioma/Te-meTr_0001", "train/meningioma/Tr-me_0196"),
                 ("test/meningioma/Te-me_0028", "train/meningioma/Tr-me_0208"),
                 ("test/notumor/Te-no_0012", "train/notumor/Tr-no_0984"),
                 ("test/notumor/Te-no_0380", "train/notumor/Tr-no_0948"),
                 ("test/notumor/Te-no_0080", "train/notumor/Tr-no_1264")]:
        assert together(f"images/{a}.png", f"images/{b}.png")["cross_split"]
    assert report.exact["cross_split_groups"] >= 8
    assert summary.audit["exact"]["groups"] == report.exact["groups"]
    assert report.exact["cross_class_groups"] == 0 and report.near["cross_class_groups"] == 0


def test_rerun_reuses_everything_and_dedup_split(sample_prepared, capfd):
    src, out, _ = sample_prepared
    image = out / "images/train/glioma/Tr-gl_0066.png"
    inode = image.stat().st_ino
    code, stdout, err = run_cli(["prepare", "kaggle", str(src), str(out), "--size", "64", "-j", "2", "--dedup"], capfd)
    assert code == 0, err
    assert "188 reused" in stdout and "audit: " in stdout
    assert image.stat().st_ino == inode  # hard-linked, not rewritten
    ds = load_dataset(out)
    m = ds.manifest
    assert set(m["split_dedup"]) == {"train", "test"}
    assert ds.info["params"]["dedup"] is True and "split_dedup" in ds.info["splits"]
    assert (m["dup_group"] != "").sum() > 0  # the duplicate groups prepare stored
    for _, rows in m[m["dup_group"] != ""].groupby("dup_group"):
        assert rows["split_dedup"].nunique() == 1
    moved = (m["split_dedup"] != m["split"]).sum()
    assert moved == ds.info["splits"]["split_dedup_moved"] > 0
    assert ds.info["audit"]["exact"]["cross_split_dedup_groups"] == 0


# --------------------------------------------------------------------------- bad inputs, CLI


@pytest.fixture()
def messy_tree(tmp_path):
    src = tmp_path / "src"
    tr, te = src / "Training", src / "Testing"
    write(tr / "glioma" / "good.jpg", head_image(), ".jpg")
    write(tr / "glioma" / "rgb.jpg", cv2.cvtColor(head_image(90, 130), cv2.COLOR_GRAY2BGR), ".jpg")
    write(tr / "meningioma" / "rgba.jpg", cv2.cvtColor(head_image(), cv2.COLOR_GRAY2BGRA))  # PNG named .jpg
    write(tr / "meningioma" / "deep.png", head_image().astype(np.uint16) * 257)
    write(tr / "pituitary" / "odd.png", head_image(37, 91, margin=6))
    write(te / "notumor" / "gray.jpg", head_image(), ".jpg")
    write(tr / "glioma" / "zero.jpg", b"")
    write(tr / "glioma" / "text.jpg", b"this is not a JPEG\n" * 10)
    good = (tr / "glioma" / "good.jpg").read_bytes()
    write(te / "notumor" / "truncated.jpg", good[: len(good) // 2])
    write(te / "notumor" / "black.png", np.zeros((64, 64), np.uint8))
    write(src / "README.txt", b"about this dataset")
    write(tr / "unknownclass" / "x.png", head_image())
    return src


def test_bad_inputs_one_line_each(messy_tree, tmp_path, capfd):
    out = tmp_path / "out"
    code, _, err = run_cli(["prepare", "kaggle", str(messy_tree), str(out), "--size", "32", "-j", "1"], capfd)
    assert code == 0, err
    assert "Traceback" not in err
    lines = err.splitlines()
    expect = {
        "skipped Training/glioma/zero.jpg: empty file",
        "skipped Training/glioma/text.jpg: not an image (a text file)",
        "skipped Testing/notumor/truncated.jpg: truncated JPEG (no end-of-image marker)",
        "skipped README.txt: not inside Training/ or Testing/",
    }
    for line in expect:
        assert line in lines, err
    assert any(ln.startswith("skipped Training/unknownclass/: unknown class folder") for ln in lines)
    assert any(ln.startswith("flagged Testing/notumor/black.png: no contour above threshold") for ln in lines)
    ds = load_dataset(out)
    m = ds.manifest
    assert len(m) == 7  # good, rgb, rgba, deep, odd, gray, black
    assert set(m["label"]) == {"glioma", "meningioma", "pituitary", "notumor"}
    assert len(ds.info["skipped"]) == 5 and len(ds.info["flagged"]) == 1
    odd = m[m["orig_path"] == "Training/pituitary/odd.png"].iloc[0]
    assert (int(odd["orig_height"]), int(odd["orig_width"])) == (37, 91)
    for rel in m["path"]:
        img = cv2.imread(str(out / rel), cv2.IMREAD_UNCHANGED)
        assert img.shape == (32, 32) and img.dtype == np.uint8


def test_nothing_usable_exits_nonzero_without_writing(tmp_path, capfd):
    src = tmp_path / "src"
    write(src / "Training" / "glioma" / "zero.jpg", b"")
    write(src / "Testing" / "glioma" / "text.jpg", b"hello")
    out = tmp_path / "out"
    code, _, err = run_cli(["prepare", "kaggle", str(src), str(out), "-j", "1"], capfd)
    assert code == 1
    assert "Traceback" not in err
    assert "no usable images" in err and "skipped Training/glioma/zero.jpg: empty file" in err
    assert not out.exists() and not out.with_name("out.partial").exists()


@pytest.mark.parametrize("make", ["missing", "flat", "file"])
def test_wrong_src_is_one_line(make, tmp_path, capfd):
    src = tmp_path / "src"
    if make == "flat":
        write(src / "a.jpg", head_image(), ".jpg")
    elif make == "file":
        write(src, b"x")
    code, _, err = run_cli(["prepare", "kaggle", str(src), str(tmp_path / "out")], capfd)
    assert code == 1 and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1 and err.startswith("error:")


def test_out_that_is_not_a_dataset_is_refused(messy_tree, tmp_path, capfd):
    out = tmp_path / "important"
    write(out / "thesis.tex", b"\\documentclass")
    code, _, err = run_cli(["prepare", "kaggle", str(messy_tree), str(out), "-j", "1"], capfd)
    assert code == 1 and "holds files btc did not write (thesis.tex)" in err
    assert (out / "thesis.tex").read_bytes() == b"\\documentclass"


def test_unreadable_folder_is_one_line(messy_tree, tmp_path, capfd, monkeypatch):
    blocked = messy_tree / "Training" / "pituitary"
    if os.geteuid() != 0:
        blocked.chmod(0)
    else:  # root reads everything: make os.walk report the folder as unreadable instead
        real_walk = os.walk

        def walk(top, onerror=None, **kw):
            if Path(top) == blocked:
                onerror(PermissionError(13, "Permission denied", str(blocked)))
                return iter(())
            return real_walk(top, onerror=onerror, **kw)

        monkeypatch.setattr(inputs.os, "walk", walk)
    try:
        code, _, err = run_cli(["prepare", "kaggle", str(messy_tree), str(tmp_path / "out"), "-j", "1"], capfd)
    finally:
        blocked.chmod(0o755)
    assert code == 0 and "Traceback" not in err
    assert "skipped Training/pituitary/: cannot read folder (Permission denied)" in err.splitlines()


def test_interrupted_run_resumes_without_redoing(messy_tree, tmp_path, monkeypatch, capfd):
    out = tmp_path / "out"
    calls = {"n": 0}
    real = kaggle._prepare_one

    def flaky(task):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(kaggle, "_prepare_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_kaggle(messy_tree, out, size=32, workers=1)
    assert not out.exists()  # OUT is never half-written …
    staging = out.with_name("out.partial")
    assert staging.is_dir() and not (staging / "manifest.csv").exists()
    assert not list(staging.rglob(".*.tmp"))  # … and no truncated file is left
    finished = len((staging / ".btc-rows.jsonl").read_text().splitlines())
    assert finished >= 1
    monkeypatch.setattr(kaggle, "_prepare_one", real)
    summary = prepare_kaggle(messy_tree, out, size=32, workers=1)
    assert summary.reused == finished and summary.images == 7
    assert not staging.exists()
    # a different size is a different dataset: nothing reused, OUT replaced atomically
    summary = prepare_kaggle(messy_tree, out, size=16, workers=1)
    assert summary.reused == 0
    assert (load_dataset(out).manifest["height"] == 16).all()


def test_failed_rerun_keeps_previous_dataset(messy_tree, tmp_path, monkeypatch):
    out = tmp_path / "out"
    prepare_kaggle(messy_tree, out, size=32, workers=1)
    before = (out / "manifest.csv").read_bytes()

    def boom(task):
        raise KeyboardInterrupt

    monkeypatch.setattr(kaggle, "_prepare_one", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare_kaggle(messy_tree, out, size=48, workers=1)
    assert (out / "manifest.csv").read_bytes() == before
    assert len(load_dataset(out).manifest) == 7
    # same parameters, one new image: the staging folder is seeded from OUT by hard links, and
    # an interruption still leaves every file of OUT as it was (the row cache included)
    rows_before = (out / ".btc-rows.jsonl").read_bytes()
    write(messy_tree / "Training" / "glioma" / "new.png", head_image(80, 90))
    with pytest.raises(KeyboardInterrupt):
        prepare_kaggle(messy_tree, out, size=32, workers=1)
    assert (out / "manifest.csv").read_bytes() == before
    assert (out / ".btc-rows.jsonl").read_bytes() == rows_before
    monkeypatch.undo()
    summary = prepare_kaggle(messy_tree, out, size=32, workers=1)
    assert summary.images == 8 and summary.reused == 7


def test_stage_row_cache_survives_a_cut_line(tmp_path):
    out = tmp_path / "out"
    stage = Stage(out, source="phantom", params={"v": 1})
    (stage.dir / "images").mkdir()
    for name in ("a", "b"):
        (stage.dir / "images" / f"{name}.png").write_bytes(b"x")
        stage.record(name, "fp", {"path": f"images/{name}.png"})
    stage.close()
    with open(stage.dir / ".btc-rows.jsonl", "a") as f:
        f.write('{"key": "c", "fp": "fp", "ro')  # interrupted mid-line
    stage = Stage(out, source="phantom", params={"v": 1})
    assert stage.cached("a", "fp") == {"path": "images/a.png"}
    assert stage.cached("b", "other") is None and stage.cached("c", "fp") is None
    (stage.dir / "images" / "d.png").write_bytes(b"x")
    stage.record("d", "fp", {"path": "images/d.png"})
    stage.close()
    stage = Stage(out, source="phantom", params={"v": 1})
    assert stage.cached("d", "fp") is not None
    (stage.dir / "images" / "a.png").unlink()
    assert stage.cached("a", "fp") is None  # its file is gone: redo it
    stage.close()
    assert Stage(out, source="phantom", params={"v": 2}).cached("d", "fp") is None


def test_output_is_deterministic_and_jpg_format(messy_tree, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    prepare_kaggle(messy_tree, a, size=32, workers=1)
    prepare_kaggle(messy_tree, b, size=32, workers=2)
    assert (a / "manifest.csv").read_bytes() == (b / "manifest.csv").read_bytes()
    ya = (a / "dataset.yaml").read_text().replace(str(a), "OUT").replace("name: a", "name: X")
    yb = (b / "dataset.yaml").read_text().replace(str(b), "OUT").replace("name: b", "name: X")
    assert ya == yb
    j = tmp_path / "j"
    prepare_kaggle(messy_tree, j, size=32, workers=1, image_format="jpg")
    m = pd.read_csv(j / "manifest.csv")
    assert m["path"].str.endswith(".jpg").all()


def test_library_prints_nothing_and_summary_lists_skips(messy_tree, tmp_path, capfd):
    summary = prepare_kaggle(messy_tree, tmp_path / "q", size=16, workers=1)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert Skipped("Training/glioma/zero.jpg", "empty file") in summary.skipped
    assert summary.flagged == [("Testing/notumor/black.png", "no contour above threshold 45; kept uncropped")]
    assert summary.images == 7 and summary.classes == ["glioma", "meningioma", "notumor", "pituitary"]
    assert summary.out == (tmp_path / "q").absolute() and summary.seconds > 0
    as_json = summary.to_dict()
    assert as_json["images"] == 7 and as_json["out"] == str((tmp_path / "q").absolute())
    assert {"path": "Training/glioma/zero.jpg", "reason": "empty file"} in as_json["skipped"]
    assert summary.audit["images"] == 7 and summary.audit_headline.startswith("7 images; ")


def test_quiet_cli_prints_only_the_result_line(messy_tree, tmp_path, capfd):
    code, out, err = run_cli(["prepare", "kaggle", str(messy_tree), str(tmp_path / "q"), "--size", "16",
                              "-j", "1", "--quiet"], capfd)
    assert code == 0 and err == ""
    assert len(out.splitlines()) == 1
    assert out.startswith("wrote 7 images to ") and out.rstrip().endswith("; 5 skipped, 1 flagged")


def test_read_image_says_why_a_file_is_unusable(tmp_path, capfd):
    from btc.data.images import ImageReadError

    good_jpg = cv2.imencode(".jpg", head_image())[1].tobytes()
    good_png = cv2.imencode(".png", head_image())[1].tobytes()
    cases = {
        "cut.png": (good_png[: len(good_png) // 2], "truncated PNG (no IEND chunk)"),
        "cut.jpg": (good_jpg[:-40], "truncated JPEG (no end-of-image marker)"),
        "junk.jpg": (good_jpg[:20] + bytes(range(256)) * 4 + b"\xff\xd9", "corrupt JPEG (cannot be decoded)"),
        "binary.jpg": (bytes(range(256)), "not a decodable image (unknown format)"),
        "text.jpg": (b"<html>not found</html>\n", "not an image (a text file)"),
        "empty.jpg": (b"", "empty file"),
    }
    for name, (data, reason) in cases.items():
        path = write(tmp_path / name, data)
        with pytest.raises(ImageReadError) as e:
            read_image(path)
        assert str(e.value) == f"{path}: {reason}"
    assert "libpng" not in capfd.readouterr().err  # a cut PNG is caught before libpng complains
    padded = write(tmp_path / "padded.jpg", good_jpg + b"\0\0\n")
    assert read_image(padded).shape == (120, 100)


def test_new_image_step_reproduces_what_prepare_wrote(tmp_path):
    """A new raw image brought to the dataset (as `btc predict` does) equals the prepared image."""
    sample = need_sample()
    src = tmp_path / "src"
    picked = sorted(sample.glob("T*/*/*"))[::47]  # a few images of both splits and several classes
    for f in picked:
        (src / f.relative_to(sample)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, src / f.relative_to(sample))
    out = tmp_path / "out"
    prepare_kaggle(src, out, size=64, pad=3, workers=1)
    ds = load_dataset(out)
    assert len(ds.manifest) == len(picked) >= 4
    step = new_image_step(ds.info)
    assert step == kaggle.ExtremePointCrop(pad=3, size=64)
    assert step.describe() == "extreme-point crop (pad 3), resize to 64²"
    for rec in ds.manifest.itertuples():
        image, box = step.apply(read_image(src / rec.orig_path))
        assert np.array_equal(image, cv2.imread(str(out / rec.path), cv2.IMREAD_UNCHANGED)), rec.orig_path
        assert ",".join(map(str, box)) == rec.crop
