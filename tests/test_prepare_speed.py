"""The fast paths of `btc prepare` (issue 17.1) give the same results as the plain ones.

- the crop's growth step by flood fill = the connected-components closure it replaced;
- the perceptual hash (median by sort, bits by packbits) = the median definition;
- images are written into the staging folder in place, never through a hard link to the old OUT;
- the near-duplicate check uses the thumbnails the workers kept: no image is read again, and
  the groups equal those of `btc audit` reading the images from disk;
- a forked pool starts after OpenCV's thread pool was used in the parent (no deadlock);
- the manifest's column screen raises the row-by-row check's error;
- an 8-bit JPEG is decoded straight to gray (its Y channel): the same pixels as the gray of the
  decoded BGR image for a 1-channel file and for gray-looking colour files, within the BGR
  image's rounding otherwise; any other file as `to_gray_uint8(read_image(...))`;
- the commands start without pandas (imported by a thread while the workers run);
- `benchmarks/prepare_kaggle.py` runs end to end and writes its JSON contract; its timed copy of
  the worker's steps reproduces the worker's row.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from btc.data import crop, similarity
from btc.data.audit import audit_dataset, find_duplicates
from btc.data.images import ImageReadError, phash64, read_gray_uint8, read_image, to_gray_uint8
from btc.data.manifest import ManifestError, load_dataset, validate_manifest
from btc.data.prepare.writing import write_staged
from btc.data.sources.kaggle import prepare_kaggle

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SAMPLE = DATA / "kaggle-original-sample"


def sample_files(step: int = 1) -> list[Path]:
    if not SAMPLE.is_dir():
        pytest.skip(f"{SAMPLE} not present (real Kaggle sample, see ../shared/data/README.md)")
    return sorted(p for p in SAMPLE.rglob("*") if p.is_file())[::step]


def grown_by_labels(fg: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The growth step as first written: label every component, then add the bounding box of each
    sizeable one inside the box, until nothing changes (at most 20 rounds)."""
    x0, y0, x1, y1 = box
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    sizeable = stats[:, cv2.CC_STAT_AREA] >= crop.MIN_COMPONENT_PX
    sizeable[0] = False
    for _ in range(20):
        inside = np.bincount(labels[y0:y1, x0:x1].ravel(), minlength=n).astype(bool) & sizeable
        s = stats[inside]
        if not len(s):
            break
        new = (min(x0, int(s[:, 0].min())), min(y0, int(s[:, 1].min())),
               max(x1, int((s[:, 0] + s[:, 2]).max())), max(y1, int((s[:, 1] + s[:, 3]).max())))
        if new == (x0, y0, x1, y1):
            break
        x0, y0, x1, y1 = new
    return x0, y0, x1, y1


def test_crop_growth_by_flood_fill_equals_the_connected_components_closure():
    rng = np.random.default_rng(0)
    images = [to_gray_uint8(read_image(p)) for p in sample_files()]
    for _ in range(40):  # scattered blobs, rings and specks around a head, boxes anywhere
        img = np.zeros((160, 200), np.uint8)
        cv2.ellipse(img, (100, 80), (60, 50), 0, 0, 360, 200, -1)
        for _ in range(rng.integers(1, 12)):
            x, y, r = rng.integers(0, 200), rng.integers(0, 160), rng.integers(1, 15)
            cv2.circle(img, (int(x), int(y)), int(r), 255, int(rng.choice([-1, 1, 2])))
        images.append(img)
    checked = grown = 0
    for gray in images:
        fg = cv2.threshold(cv2.GaussianBlur(gray, crop.BLUR, 0), crop.THRESHOLD, 255, cv2.THRESH_BINARY)[1]
        h, w = fg.shape
        for _ in range(3):
            x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            box = (x0, y0, int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1)))
            expected = grown_by_labels(fg, box)
            assert crop.grow_to_components(fg.copy(), box) == expected, box
            checked += 1
            grown += expected != box
    assert checked >= 600 and grown >= 100  # the growth step is exercised, not only skipped


def test_phash_is_the_median_definition():
    for path in sample_files(step=4):
        gray = to_gray_uint8(read_image(path))
        for image in (gray, cv2.resize(gray, (256, 256), interpolation=cv2.INTER_AREA)):
            low = cv2.dct(cv2.resize(image.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA))[:8, :8]
            bits = (low > np.median(low)).flatten()
            assert phash64(image) == f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def test_staged_write_never_writes_through_a_hard_link(tmp_path, monkeypatch):
    old = tmp_path / "out" / "images" / "a.png"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"previous dataset")
    staged = tmp_path / "out.partial" / "images" / "a.png"
    staged.parent.mkdir(parents=True)
    os.link(old, staged)  # the staging folder seeded from OUT
    write_staged(staged, b"new image")
    assert staged.read_bytes() == b"new image" and old.read_bytes() == b"previous dataset"
    write_staged(tmp_path / "fresh" / "deep" / "b.png", b"x")  # the folder is created
    assert (tmp_path / "fresh" / "deep" / "b.png").read_bytes() == b"x"
    assert oct((tmp_path / "fresh" / "deep" / "b.png").stat().st_mode & 0o777) == oct(0o666 & ~_umask())

    class Interrupted(BaseException):
        pass

    def cut(fd, mode):
        raise Interrupted
    monkeypatch.setattr(os, "fdopen", cut)
    with pytest.raises(Interrupted):
        write_staged(tmp_path / "fresh" / "c.png", b"never complete")
    assert not (tmp_path / "fresh" / "c.png").exists()  # no half file left behind


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_near_duplicates_are_checked_on_the_workers_thumbnails(tmp_path, monkeypatch):
    files = sample_files()
    reads: list[str] = []
    real = similarity.read_image

    def counted(path, *args, **kwargs):
        reads.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(similarity, "read_image", counted)
    out = tmp_path / "out"
    summary = prepare_kaggle(SAMPLE, out, size=64, workers=2)
    assert summary.images == len(files) and reads == []  # no image read again at the end
    assert summary.audit["near"]["candidates"] > 0 and summary.audit["near"]["confirmed"] > 0
    from_disk = audit_dataset(out)  # reads every candidate's image from the folder
    assert len(reads) > 0
    assert from_disk.summary()["near"] == summary.audit["near"]
    assert from_disk.summary()["exact"] == summary.audit["exact"]
    manifest = load_dataset(out).manifest
    again = find_duplicates(manifest, similarity.FolderPixels(out, manifest["path"].tolist()))
    assert manifest["dup_group"].tolist() == again.labels() and manifest["dup_group"].ne("").sum() > 0


FORK_AFTER_OPENCV = """
import sys
sys.path.insert(0, {repo!r})
import cv2, numpy as np
from btc.data.prepare.work import parallel_map, _start_method
from btc.data.images import phash64
cv2.resize(np.random.rand(3000, 3000).astype(np.float32), (1500, 1500))  # starts OpenCV's thread pool
threads = cv2.getNumThreads()
for _ in range(3):
    hashes = list(parallel_map(phash64, [np.full((64, 64), i, np.uint8) for i in range(24)], workers=2, description="x"))
    assert len(hashes) == 24
print(_start_method(), threads == cv2.getNumThreads())
"""


def test_forked_workers_start_after_opencv_used_its_threads(tmp_path):
    script = tmp_path / "fork_after_opencv.py"
    script.write_text(FORK_AFTER_OPENCV.format(repo=str(REPO)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = "fork" if sys.platform.startswith("linux") else "forkserver"
    assert done.stdout.split() == [expected, "True"]  # forked, and the parent's pool is restored


def _row(k: int, **kw) -> dict:
    row = {"path": f"images/a{k}.png", "label": "glioma", "split": "train", "patient_id": "", "source": "kaggle",
           "orig_path": f"x{k}", "height": 64, "width": 64, "sha256": "a" * 64, "phash": "0" * 16}
    row.update(kw)
    return row


@pytest.mark.parametrize("bad, message", [
    ({"height": "3.0"}, "manifest row 900, column 'height': must be a positive integer (got '3.0')"),
    ({"width": "0"}, "manifest row 900, column 'width': must be a positive integer (got '0')"),
    ({"path": "a/../b.png"}, "manifest row 900, column 'path': must be a relative POSIX path"),
    ({"path": "images/a3.png"}, "manifest row 900, column 'path': duplicate path"),
    ({"sha256": "A" * 64}, "manifest row 900, column 'sha256': must be 64 lowercase hex digits"),
    ({"fold": "inf"}, "manifest row 900, column 'fold': must be an integer or empty (got 'inf')"),
])
def test_manifest_screen_names_the_first_bad_row(bad, message):
    rows = [_row(k, fold=1) for k in range(2000)]
    rows[899] = _row(899, **{"fold": 1, **bad})
    rows[1500] = _row(1500, fold=1, label="")  # a later problem is not the one reported
    with pytest.raises(ManifestError) as e:
        validate_manifest(pd.DataFrame(rows))
    assert str(e.value).startswith(message)
    clean = validate_manifest(pd.DataFrame([_row(k, fold=k % 3 or None) for k in range(2000)]))
    assert clean["height"].dtype == int and str(clean["fold"].dtype) == "Int64"


def test_benchmark_script_writes_its_json_contract(tmp_path):
    sample_files()
    spec = importlib.util.spec_from_file_location("prepare_kaggle_bench", REPO / "benchmarks" / "prepare_kaggle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "bench.json"
    result = module.main(["--src", f"{SAMPLE}@2", "--limit", "12", "--rounds", "1", "--size", "64", "--stages",
                          "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert {"benchmark", "device", "versions", "command", "date"} <= set(result)
    (record,) = result["datasets"]
    assert record["images"] == 24 and record["repeat"] == 2 and len(record["rounds"]) == 1
    (row,) = record["rounds"]
    assert row["reference"]["images"] == 24 and row["reference"]["failed"] == 0
    for side in ("reference", "btc"):
        assert row[side]["seconds"] > row[side]["work_seconds"] > 0 and row[side]["png_bytes"] > 0
    assert record["median_speed_ratio"] == row["speed_ratio"] > 0
    # the per-step costs: the same steps on both sides, btc's bookkeeping on its side only
    steps = record["steps_in_one_process"]
    assert steps["images"] == 24
    shared = {"read and decode", "crop", "resize"}
    assert set(steps["ms_per_image"]["reference"]) == shared | {"PNG encode and write"}
    assert shared | {"PNG encode", "PNG write", "SHA-256 of the written and original pixels"} < set(steps["ms_per_image"]["btc"])
    assert all(ms > 0 for side in steps["ms_per_image"].values() for ms in side.values())
    assert steps["total_ms_per_image"]["btc"] == pytest.approx(sum(steps["ms_per_image"]["btc"].values()), abs=1e-3)


def test_benchmark_steps_are_checked_against_the_worker(tmp_path, monkeypatch):
    """The timed copy of btc's worker refuses to time steps that no longer give the worker's row."""
    sample_files()
    spec = importlib.util.spec_from_file_location("prepare_kaggle_bench2", REPO / "benchmarks" / "prepare_kaggle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    steps = module._btc_steps
    monkeypatch.setattr(module, "_btc_steps", lambda task, clock: {**steps(task, clock), "phash": "0" * 16})
    with pytest.raises(RuntimeError, match="no longer reproduce"):
        module.stage_costs(SAMPLE, 64, tmp_path, images=4, passes=1)


def _encoded(image: np.ndarray, ext: str, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


def test_gray_reading_equals_the_gray_of_the_decoded_image(tmp_path):
    rng = np.random.default_rng(0)
    gray = cv2.GaussianBlur(rng.integers(0, 256, (48, 40), dtype=np.uint8), (5, 5), 0)
    tinted = cv2.merge([gray // 2, gray, np.clip(gray.astype(int) + 60, 0, 255).astype(np.uint8)])
    files = {
        "gray.jpg": _encoded(gray, ".jpg"),
        "gray3.jpg": _encoded(cv2.merge([gray] * 3), ".jpg"),       # a gray scan stored as colour
        "tinted.jpg": _encoded(tinted, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90),
        "gray16.png": _encoded((gray.astype(np.uint16) * 257), ".png"),
        "bgra.png": _encoded(cv2.merge([gray, gray, gray, gray]), ".png"),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    for name in files:
        path = tmp_path / name
        plain = to_gray_uint8(read_image(path))
        fast = read_gray_uint8(path)
        assert fast.dtype == np.uint8 and fast.shape == plain.shape == gray.shape, name
        if name == "tinted.jpg":
            # the JPEG's own luma: equal to the BGR image's gray up to that image's rounding
            y = cv2.imdecode(np.frombuffer(files[name], np.uint8), cv2.IMREAD_GRAYSCALE)
            assert np.array_equal(fast, y)
            assert np.abs(fast.astype(int) - plain).max() <= 2
        else:
            assert np.array_equal(fast, plain), name
    (tmp_path / "cut.jpg").write_bytes(files["gray.jpg"][:-200])
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        read_gray_uint8(tmp_path / "cut.jpg")


def test_gray_reading_matches_on_the_real_kaggle_files():
    """Gray-looking files (1-channel, or colour with neutral chroma) give the very same pixels."""
    for path in sample_files(step=4):
        raw = path.read_bytes()
        decoded = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
        fast, plain = read_gray_uint8(path), to_gray_uint8(read_image(path))
        if decoded.ndim == 2 or (np.array_equal(decoded[..., 0], decoded[..., 1])
                                 and np.array_equal(decoded[..., 1], decoded[..., 2])):
            assert np.array_equal(fast, plain), path.name


def test_commands_start_without_pandas_and_prepare_imports_it_meanwhile():
    code = ("import sys, btc.cli, btc.commands.prepare, btc.data.sources.kaggle; "
            "print('pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "False"
    code = ("import sys, math; from btc.data.prepare.work import parallel_map; "
            "out = sorted(parallel_map(math.sqrt, [float(i) for i in range(64)], workers=2, description='x', "
            "meanwhile=('json.tool',))); print('json.tool' in sys.modules, out[-1])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.split() == ["True", "7.937253933193772"]
