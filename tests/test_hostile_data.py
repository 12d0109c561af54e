"""Hostile and careless inputs on the data side (issue 16), each with real files on disk.

Every case asserts the exit code, that the user sees ONE line naming the file or option and what
to do, and that every file the user made survives byte for byte:

- ownership: `btc prepare … OUT` replaces only a dataset btc prepared (marker `.btc-dataset`, or a
  btc 0.1 dataset adopted) and never deletes a user's file, in OUT or beside it;
- validation at the door: pixel limit read from the image header (prepare and predict), symlinks
  out of a dataset, cvind.mat, NaN labels, masks of the wrong shape, tiny images, malformed
  dataset.yaml, splits too small for the folds or the hold-out asked for.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from btc.data.manifest import load_dataset
from btc.data.prepare.ownership import MARKER
from tests.conftest import run_cli
from tests.test_prepare_figshare import box_mask, slice_image, write_cvind, write_mat

# --------------------------------------------------------------------------- helpers


def one_line_error(code: int, err: str, *, expect_code: int = 1) -> str:
    """The single `error: …` line of a refused command (no traceback, nothing else)."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == expect_code, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def snapshot(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every regular file under `root` (relative path → bytes), symlinks as their target."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        if path.is_symlink():
            files[rel] = b"-> " + os.readlink(path).encode()
        elif path.is_file():
            files[rel] = path.read_bytes()
    return files


def png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def noise(seed: int, shape: tuple[int, int] = (48, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, size=shape, dtype=np.uint8)


def class_tree(root: Path, classes=("glioma", "notumor"), per_class: int = 2, shape=(48, 48)) -> Path:
    for i, label in enumerate(classes):
        for j in range(per_class):
            png(root / label / f"{label}_{j}.png", noise(10 * i + j, shape))
    return root


def kaggle_tree(root: Path) -> Path:
    class_tree(root / "Training", per_class=2)
    class_tree(root / "Testing", per_class=1)
    return root


def figshare_tree(root: Path) -> Path:
    for i, label in enumerate((1, 2, 3), start=1):
        write_mat(root / f"{i}.mat", slice_image(i), label, f"MR{i:04d}", box_mask())
    write_cvind(root / "cvind.mat", [1, 2, 3])
    return root


SOURCES = {
    "kaggle": lambda tmp: ["prepare", "kaggle", kaggle_tree(tmp / "src"), "--size", 32, "-j", 1],
    "folder": lambda tmp: ["prepare", "folder", class_tree(tmp / "src"), "--size", 32, "-j", 1],
    "figshare": lambda tmp: ["prepare", "figshare", figshare_tree(tmp / "src"), "--size", 32, "-j", 1],
    "phantom": lambda tmp: ["prepare", "phantom", "--per-class", 4, "--size", 32],
}


def prepare_args(source: str, tmp: Path, out: Path) -> list:
    """`btc prepare <source> [SRC] OUT …` with a small real source tree made under `tmp`."""
    args = SOURCES[source](tmp)
    return args[:3] + [out] + args[3:] if source != "phantom" else args[:2] + [out] + args[2:]


def user_files(out: Path) -> None:
    """What a user keeps in a folder: notes, an analysis folder, a train run."""
    (out / "analysis").mkdir(parents=True, exist_ok=True)
    (out / "notes.txt").write_text("my notes\n")
    (out / "analysis" / "plot.png").write_bytes(b"\x89PNG not really")
    (out / "runs" / "resnet").mkdir(parents=True, exist_ok=True)
    (out / "runs" / "resnet" / "metrics.json").write_text('{"accuracy": 0.97}\n')


# --------------------------------------------------------------------------- 1. ownership


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_out_with_a_placeholder_manifest_is_refused_and_kept(source, tmp_path, capsys):
    """A manifest.csv / dataset.yaml placeholder does not make a folder btc's to delete."""
    out = tmp_path / "out"
    user_files(out)
    (out / "manifest.csv").write_text("path,label\n")
    (out / "dataset.yaml").write_text("# to do\n")
    args = prepare_args(source, tmp_path, out)
    before = snapshot(tmp_path)
    code, stdout, err = run_cli(args, capsys)
    line = one_line_error(code, err)
    assert str(out) in line and "holds files btc did not write" in line
    assert "dataset.yaml, manifest.csv, notes.txt" in line and "runs/" in line
    assert "prepare into a new or empty folder" in line
    assert snapshot(tmp_path) == before  # every user file, and nothing new beside them
    assert stdout == ""


def test_btc_dataset_holding_user_files_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(prepare_args("folder", tmp_path, out), capsys)
    assert code == 0, err
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == "dataset" and len(marker["id"]) == 32 and marker["source"] == "folder"
    assert marker["command"].startswith("btc prepare folder")
    user_files(out)
    (out / "images" / "glioma" / "my-annotation.txt").write_text("edge of the tumour\n")
    args = prepare_args("folder", tmp_path, out) + ["--size", 40]
    before = snapshot(tmp_path)
    code, _, err = run_cli(args, capsys)
    line = one_line_error(code, err)
    assert "a dataset btc prepared, but it also holds files btc did not write" in line
    assert "(analysis/, images/glioma/my-annotation.txt, notes.txt, runs/)" in line
    assert "move them out of it, or prepare into another folder" in line
    assert snapshot(tmp_path) == before


def test_many_user_files_are_named_five_at_most(tmp_path, capsys):
    out = tmp_path / "out"
    for i in range(8):
        (out / f"file{i}.txt").parent.mkdir(parents=True, exist_ok=True)
        (out / f"file{i}.txt").write_text(str(i))
    code, _, err = run_cli(prepare_args("phantom", tmp_path, out), capsys)
    line = one_line_error(code, err)
    assert "(file0.txt, file1.txt, file2.txt, file3.txt, file4.txt and 3 more)" in line
    assert len(list(out.iterdir())) == 8


def test_a_symlink_in_a_btc_dataset_is_not_btc_s(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(prepare_args("folder", tmp_path, out), capsys)[0] == 0
    secret = tmp_path / "secret.txt"
    secret.write_text("private\n")
    image = next((out / "images" / "glioma").iterdir())
    image.unlink()
    image.symlink_to(secret)
    code, _, err = run_cli(prepare_args("folder", tmp_path, out), capsys)
    line = one_line_error(code, err)
    assert f"images/glioma/{image.name}" in line
    assert secret.read_text() == "private\n" and image.is_symlink()


def test_user_folders_beside_out_survive_every_prepare(tmp_path, capsys):
    """Folders named like btc's old scratch names (`.OUT.old-*`, `OUT.partial.seed`) are a user's."""
    out = tmp_path / "out"
    for name in (".out.old-1234", ".out.old-backup", "out.partial.seed", ".out.btc-old-0123456789ab"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.csv").write_text("path,label\nimages/a.png,glioma\n")
        (tmp_path / name / "dataset.yaml").write_text("provenance: {tool: btc}\n")
        (tmp_path / name / ".btc-prepare.json").write_text("{}")
        (tmp_path / name / "thesis.tex").write_text("\\documentclass{article}\n")
    before = snapshot(tmp_path, skip=("out", "src"))
    for size in (32, 40, 40):  # first prepare, a replacement, a reuse
        code, _, err = run_cli(prepare_args("folder", tmp_path, out) + ["--size", size], capsys)
        assert code == 0, err
        assert snapshot(tmp_path, skip=("out", "src")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".out.old-1234", ".out.old-backup", "out.partial.seed", ".out.btc-old-0123456789ab", "out", "src"])


def test_a_folder_named_like_the_staging_folder_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "out"
    (tmp_path / "out.partial").mkdir()
    (tmp_path / "out.partial" / "draft.md").write_text("draft\n")
    code, _, err = run_cli(prepare_args("folder", tmp_path, out), capsys)
    line = one_line_error(code, err)
    assert f"{tmp_path / 'out.partial'}: exists and is not a btc staging folder; move it away" in line
    assert (tmp_path / "out.partial" / "draft.md").read_text() == "draft\n" and not out.exists()


def test_btc_01_dataset_is_adopted_then_replaced(tmp_path, capsys):
    """A dataset btc 0.1 wrote (no marker; dataset.yaml provenance says btc) is btc's to replace."""
    out = tmp_path / "out"
    assert run_cli(prepare_args("folder", tmp_path, out), capsys)[0] == 0
    (out / MARKER).unlink()  # as btc 0.1 left it
    assert "btc_version" in (out / "dataset.yaml").read_text()
    code, _, err = run_cli(prepare_args("folder", tmp_path, out) + ["--size", 40], capsys)
    assert code == 0, err
    assert (load_dataset(out).manifest["height"] == 40).all()
    assert json.loads((out / MARKER).read_text())["kind"] == "dataset"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # the old one is gone
    # a btc 0.1 dataset holding a user's file is refused like any other
    (out / MARKER).unlink()
    (out / "notes.txt").write_text("mine\n")
    code, _, err = run_cli(prepare_args("folder", tmp_path, out), capsys)
    assert "holds files btc did not write (notes.txt)" in one_line_error(code, err)
    assert (out / "notes.txt").read_text() == "mine\n"


def test_old_dataset_left_by_a_killed_swap_is_removed_only_if_recorded(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert run_cli(prepare_args("folder", tmp_path, out), capsys)[0] == 0
    old_id = json.loads((out / MARKER).read_text())["id"]
    real_rmtree = shutil.rmtree

    def killed_before_removal(path, *args, **kwargs):
        if ".btc-old-" in str(path):
            raise KeyboardInterrupt  # the process dies between the swap and the removal
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed_before_removal)
    code, _, err = run_cli(prepare_args("folder", tmp_path, out) + ["--size", 40], capsys)
    assert code == 130, err
    monkeypatch.undo()
    left = [p for p in tmp_path.iterdir() if ".btc-old-" in p.name]
    assert len(left) == 1 and json.loads((left[0] / MARKER).read_text())["id"] == old_id
    marker = json.loads((out / MARKER).read_text())
    assert marker["retired"] == [{"name": left[0].name, "id": old_id}]
    # a user's copy of that folder under another name is not btc's to remove
    lookalike = tmp_path / ".out.btc-old-ffffffffffff"
    shutil.copytree(left[0], lookalike)
    code, _, err = run_cli(prepare_args("folder", tmp_path, out) + ["--size", 40], capsys)
    assert code == 0, err
    assert not left[0].exists() and lookalike.is_dir()


# --------------------------------------------------------------------------- 2. validation at the door


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A valid grayscale PNG of side×side black pixels: 388 KB on disk, 400 MB decoded.

    Written by hand, the deflate stream fed one row at a time, so making it costs no memory.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0, then the row's pixels
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit grayscale
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return bomb_png(tmp_path_factory.mktemp("bomb") / "bomb.png")


BOMB_REASON = ("20000×20000 pixels (400 megapixels) is over btc's limit of 100 megapixels; "
               "if the image is genuine, raise the limit with BTC_MAX_PIXELS=400000000")


def test_pixel_bomb_is_skipped_by_prepare_from_its_header(bomb, tmp_path, capsys):
    src = class_tree(tmp_path / "src")
    shutil.copy(bomb, src / "glioma" / "bomb.png")
    out = tmp_path / "out"
    code, _, err = run_cli(["prepare", "folder", src, out, "-j", 1], capsys)
    assert code == 0, err
    assert [ln for ln in err.splitlines() if "bomb" in ln] == [f"skipped glioma/bomb.png: {BOMB_REASON}"]
    ds = load_dataset(out)
    assert len(ds.manifest) == 4 and {"path": "glioma/bomb.png", "reason": BOMB_REASON} in ds.info["skipped"]
    assert bomb.stat().st_size < 400_000 and (src / "glioma" / "bomb.png").read_bytes() == bomb.read_bytes()


def test_pixel_limit_is_configurable(bomb, tmp_path, capsys, monkeypatch):
    src = class_tree(tmp_path / "src")  # 48×48 images: 2304 pixels each
    monkeypatch.setenv("BTC_MAX_PIXELS", "2000")
    code, _, err = run_cli(["prepare", "folder", src, tmp_path / "out", "-j", 1], capsys)
    assert code == 1 and "no usable images" in err
    assert ("skipped glioma/glioma_0.png: 48×48 pixels (0.002304 megapixels) is over btc's limit of "
            "0.002 megapixels; if the image is genuine, raise the limit with BTC_MAX_PIXELS=2304") in err
    monkeypatch.setenv("BTC_MAX_PIXELS", "lots")
    code, _, err = run_cli(["prepare", "folder", src, tmp_path / "out", "-j", 1], capsys)
    line = one_line_error(code, err)
    assert "BTC_MAX_PIXELS=lots: must be a whole number ≥ 1 (default 100000000); fix or unset BTC_MAX_PIXELS" in line
    assert not (tmp_path / "out").exists()


MEMORY_PROBE = """
import resource, sys
from btc.cli import main
from btc.data.images import ImageReadError, read_image

what, *args = sys.argv[1:]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if what == "read":  # the reader btc predict and training use
    try:
        read_image(args[0])
    except ImageReadError as e:
        print("refused:", e, file=sys.stderr)
else:
    try:
        main(args)
    except SystemExit as e:
        assert not e.code, e.code
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("what", ["prepare", "read"])
def test_pixel_bomb_costs_no_memory(what, bomb, tmp_path):
    """Peak memory grows by less than 200 MB (decoding the bomb would take 400 MB, 765 MB peak)."""
    import subprocess
    import sys

    src = class_tree(tmp_path / "src")
    shutil.copy(bomb, src / "glioma" / "bomb.png")
    args = ([what, str(src / "glioma" / "bomb.png")] if what == "read" else
            ["prepare", "prepare", "folder", str(src), str(tmp_path / "out"), "-j", "1", "-q"])
    env = {k: v for k, v in os.environ.items() if k != "BTC_MAX_PIXELS"}
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, *args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    grew_mb = int(done.stdout.split()[-1])
    assert grew_mb < 200, f"peak RSS grew by {grew_mb} MB"
    if what == "read":
        assert "over btc's limit of 100 megapixels" in done.stderr
    else:
        assert "wrote 4 images" in done.stdout and "1 skipped" in done.stdout


@pytest.fixture(scope="module")
def tiny_run(phantom_dir, tmp_path_factory) -> Path:
    """A small CNN trained one epoch on the phantom set: a real checkpoint for btc predict."""
    from btc.cli import main

    run = tmp_path_factory.mktemp("run") / "run"
    try:
        main(["train", "--data", str(phantom_dir), "--model", "small_cnn", "--epochs", "1", "--image-size", "32",
              "--batch-size", "16", "--no-pretrained", "--device", "cpu", "-q", "--out", str(run)])
    except SystemExit as e:
        assert not e.code, e.code
    return run


def test_pixel_bomb_is_skipped_by_predict(tiny_run, phantom_dir, bomb, tmp_path, capsys):
    from btc.runfolder import BEST

    good = phantom_dir / load_dataset(phantom_dir).manifest["path"].iloc[0]
    code, stdout, err = run_cli(["predict", tiny_run / BEST, good, bomb, "--device", "cpu"], capsys)
    assert code == 0, err
    assert err.splitlines() == [f"skipped {bomb}: {BOMB_REASON}"]
    assert good.name in stdout and "bomb.png" not in stdout


def test_symlink_out_of_the_dataset_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(prepare_args("folder", tmp_path, out), capsys)[0] == 0
    outside = png(tmp_path / "elsewhere" / "private.png", noise(99))
    image = out / "images" / "glioma" / "glioma_0.png"
    image.unlink()
    image.symlink_to(outside)
    for command in (["audit", out], ["train", "--data", out, "--model", "small_cnn", "--epochs", 1,
                                     "--device", "cpu", "--no-pretrained", "--out", tmp_path / "run"]):
        code, _, err = run_cli(command, capsys)
        line = one_line_error(code, err)
        assert f"{out / 'manifest.csv'} row 1, column 'path': images/glioma/glioma_0.png leads to {outside}" in line
        assert "outside the dataset (a symlink); put the file itself in the dataset, or prepare it again" in line
    assert outside.read_bytes() == cv2.imencode(".png", noise(99))[1].tobytes() and image.is_symlink()


@pytest.mark.parametrize(("folds", "problem"), [
    ([1, 2], "cvind has 2 folds but the files go up to 3.mat (too short for these files)"),
    ([1, 99, 2], "cvind[1] (the fold of 2.mat) is 99, not a fold 1–5"),
    ([1, 2, float("nan")], "cvind[2] (the fold of 3.mat) is nan, not a fold 1–5"),
    ([1, -np.inf, 2], "cvind[1] (the fold of 2.mat) is -inf, not a fold 1–5"),
    ([1, 2.5, 3], "cvind[1] (the fold of 2.mat) is 2.5, not a fold 1–5"),
])
def test_cvind_is_checked_against_the_files(folds, problem, tmp_path, capsys):
    src = figshare_tree(tmp_path / "src")
    write_cvind(src / "cvind.mat", folds)
    before = snapshot(tmp_path)
    code, _, err = run_cli(["prepare", "figshare", src, tmp_path / "out", "-j", 1], capsys)
    line = one_line_error(code, err)
    assert line == (f"error: {src / 'cvind.mat'}: {problem}; use the dataset's own cvind.mat, or move it out "
                    f"of {src} to prepare without the official folds")
    assert snapshot(tmp_path) == before  # nothing written, nothing removed


def test_nan_and_inf_labels_are_skipped_per_file(tmp_path, capsys):
    src = figshare_tree(tmp_path / "src")
    write_mat(src / "4.mat", slice_image(4), float("nan"), "MR0004")
    write_mat(src / "5.mat", slice_image(5), float("inf"), "MR0005")
    write_cvind(src / "cvind.mat", [1, 2, 3, 4, 5])
    code, _, err = run_cli(["prepare", "figshare", src, tmp_path / "out", "--size", 32, "-j", 1], capsys)
    assert code == 0, err
    lines = err.splitlines()
    assert "skipped 4.mat: cjdata.label [nan] is not 1 (meningioma), 2 (glioma) or 3 (pituitary)" in lines
    assert "skipped 5.mat: cjdata.label [inf] is not 1 (meningioma), 2 (glioma) or 3 (pituitary)" in lines
    assert sorted(load_dataset(tmp_path / "out").manifest["orig_path"]) == ["1.mat", "2.mat", "3.mat"]


def test_mask_of_the_wrong_shape_is_dropped_and_listed(tmp_path, capsys):
    src = figshare_tree(tmp_path / "src")
    write_mat(src / "2.mat", slice_image(2), 2, "MR0002", box_mask(20, 30))
    code, _, err = run_cli(["prepare", "figshare", src, tmp_path / "out", "--size", 32, "-j", 1], capsys)
    assert code == 0, err
    reason = "tumorMask is 30×20 but the image 40×48: mask dropped, image kept"
    assert [ln for ln in err.splitlines() if "2.mat" in ln] == [f"flagged 2.mat: {reason}"]
    ds = load_dataset(tmp_path / "out")
    row = ds.manifest.set_index("orig_path").loc["2.mat"]
    assert row["mask_path"] == "" and row["mask_note"] == reason and (tmp_path / "out" / row["path"]).is_file()
    assert ds.info["flagged"] == [{"path": "2.mat", "reason": reason}]
    assert ds.manifest.set_index("orig_path").loc["1.mat", "mask_path"] == "masks/meningioma/1.png"


@pytest.mark.parametrize("source", ["folder", "kaggle"])
def test_tiny_images_are_skipped_with_the_limit(source, tmp_path, capsys, monkeypatch):
    root = tmp_path / "src"
    args = prepare_args(source, tmp_path, tmp_path / "out")
    where = root / "Training" if source == "kaggle" else root
    png(where / "glioma" / "dot.png", np.full((1, 1), 200, np.uint8))
    png(where / "glioma" / "strip.png", noise(5, (8, 40)))
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    prefix = "Training/" if source == "kaggle" else ""
    lines = err.splitlines()
    assert (f"skipped {prefix}glioma/dot.png: 1×1 pixels is smaller than 32 px on a side; "
            "if such images are genuine, lower the limit with BTC_MIN_SIDE=1") in lines
    assert (f"skipped {prefix}glioma/strip.png: 40×8 pixels is smaller than 32 px on a side; "
            "if such images are genuine, lower the limit with BTC_MIN_SIDE=8") in lines
    monkeypatch.setenv("BTC_MIN_SIDE", "8")
    code, _, err = run_cli(args, capsys)
    assert code == 0 and "strip.png" not in err and "skipped " + prefix + "glioma/dot.png" in err
    assert f"{prefix}glioma/strip.png" in set(load_dataset(tmp_path / "out").manifest["orig_path"])


def test_malformed_dataset_yaml_is_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(prepare_args("phantom", tmp_path, out), capsys)[0] == 0
    (out / "dataset.yaml").write_text("classes: [glioma, notumor\ntasks: {presence: \n")
    broken = (out / "dataset.yaml").read_bytes()
    for command in (["audit", out], ["train", "--data", out, "--model", "small_cnn", "--epochs", 1,
                                     "--device", "cpu", "--no-pretrained", "--out", tmp_path / "run"]):
        code, _, err = run_cli(command, capsys)
        line = one_line_error(code, err)
        assert line.startswith(f"error: {out / 'dataset.yaml'}: not valid YAML (")
        assert "at line 2); fix it, or prepare the dataset again with 'btc prepare'" in line
    (out / "dataset.yaml").write_text("tasks: [presence]\nclasses: [a, b]\n")
    code, _, err = run_cli(["audit", out], capsys)
    assert "'tasks' must map task → {output class: [labels]}" in one_line_error(code, err)
    (out / "dataset.yaml").write_bytes(broken)
    assert (out / "dataset.yaml").read_bytes() == broken


def test_cv_of_a_tiny_dataset_is_one_line(tmp_path, capsys):
    """48 images, 2 folds: each fold's 24 training images are too few for a 10% validation split."""
    data = tmp_path / "tiny"
    assert run_cli(["prepare", "phantom", data, "--per-class", 12, "--size", 32, "-q"], capsys)[0] == 0
    code, _, err = run_cli(["cv", "--data", data, "--model", "small_cnn", "--folds", 2, "--epochs", 1,
                            "--image-size", 32, "--device", "cpu", "--no-pretrained", "-q",
                            "--out", tmp_path / "cv"], capsys)
    line = one_line_error(code, err)
    # too few patients (leak-free) or too few images per class (image level) for a 10% hold-out
    assert "n_splits" not in line and line.startswith("error: val_fraction") and "0.1: " in line
    assert "for a 10% hold-out" in line or "a 10% stratified hold-out needs" in line


def test_splits_too_small_name_the_option_and_the_remedy():
    import pandas as pd

    from btc.data.splits import holdout, kfold_assignments
    from btc.errors import BtcError

    df = pd.DataFrame({"path": [f"{i}.png" for i in range(48)], "patient_id": "", "label": np.arange(48) % 4})
    y = df["label"].to_numpy()
    with pytest.raises(BtcError) as e:
        holdout(df, y, 0.05, option="val_fraction")
    assert str(e.value) == ("val_fraction 0.05: a 5% stratified hold-out needs a class of at least 20 images, "
                            "and the largest class here has 12 (48 images); use val_fraction 0.083 or more, "
                            "0 for none, or more data")
    assert holdout(df, y, 1 / 12, option="val_fraction").sum() == 4  # what the message offers works
    with pytest.raises(BtcError) as e:
        kfold_assignments(df, y, 20)
    assert str(e.value) == ("--folds 20: stratified folds need a class of at least 20 images, and the largest "
                            "class here has 12 (48 images); use --folds 12 or fewer, or more data")
