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
