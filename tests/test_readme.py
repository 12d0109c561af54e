"""README.md's examples work (issue 18): the first-hour block runs as written, the labels.yaml
example is accepted and gives its tasks, and every other `btc` line is a valid command line.

- The bash block after the marker `<!-- tests/test_readme.py runs this block -->` is run line by
  line, in-process, in a temporary folder beside a link to `../shared` (its commands read
  `../shared/data/...` as they would from the repository root).
- The `labels.yaml` example (the YAML block with `folders:`) is loaded by `btc prepare folder`'s
  reader and used to prepare a tree with its folders, filled with phantom images.
- Every other `btc …` line of a bash block (also `torchrun … -m btc …`) is parsed by the
  command line itself, without running it: an option that does not exist, a missing argument or
  a bad value fails; `python benchmarks/X.py` lines name a script that exists.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from typer._click.exceptions import BadParameter, UsageError  # typer ≥ 0.29 carries its own click
from typer.core import TyperGroup
from typer.main import get_command

from btc.cli import app
from tests.conftest import REPO, SHARED_DATA, run_cli

README = REPO / "README.md"
RUN_MARKER = "<!-- tests/test_readme.py runs this block -->"


def blocks(language: str) -> list[tuple[int, str]]:
    """(line number of the opening fence, body) of every fenced block in that language."""
    out, lines = [], README.read_text(encoding="utf-8").splitlines()
    start = None
    for i, line in enumerate(lines):
        if start is None and line.strip() == f"```{language}":
            start = i
        elif start is not None and line.strip() == "```":
            out.append((start + 1, "\n".join(lines[start + 1:i])))
            start = None
    return out


def run_block() -> str:
    text = README.read_text(encoding="utf-8")
    assert RUN_MARKER in text, "README lost its tested first-hour block"
    after = text[text.index(RUN_MARKER) + len(RUN_MARKER):]
    return after.split("```bash\n", 1)[1].split("```", 1)[0]


def commands(body: str) -> list[list[str]]:
    """The btc argument lists of a bash block (comments, redirections and `&&` handled)."""
    found = []
    for line in body.replace("\\\n", " ").splitlines():  # a line continued with a backslash is one command
        tokens = shlex.split(line, comments=True)
        for part in _split(tokens, "&&"):
            part = part[:part.index(">")] if ">" in part else part
            if part[:1] in (["btc"], [".venv/bin/btc"]):
                found.append(part[1:])
            elif "-m" in part and part[part.index("-m") + 1:part.index("-m") + 2] == ["btc"]:
                found.append(part[part.index("-m") + 2:])
    return found


def _split(tokens: list[str], separator: str) -> list[list[str]]:
    parts, current = [], []
    for token in tokens:
        if token == separator:
            parts.append(current)
            current = []
        else:
            current.append(token)
    return parts + [current]


def parse(args: list[str]):
    """Parse a btc command line the way `btc` would, without running the command (a `UsageError`
    for an unknown option, a missing argument or a bad value)."""
    command = get_command(app)
    name = "btc"
    while isinstance(command, TyperGroup):
        assert args and args[0] in command.commands, f"btc {' '.join(args)}: no such command"
        name, command, args = f"{name} {args[0]}", command.commands[args[0]], args[1:]
    return command.make_context(name, list(args))


# --------------------------------------------------------------------------- the labels.yaml example


def test_labels_yaml_example_is_accepted(tmp_path, capsys):
    """The README's labels.yaml (issue 18.1: it used `classes:` for the folder map) prepares a tree
    with its folders into paper 001's presence and source tasks."""
    from btc.data.sources.folder import load_labels
    from btc.data.sources.phantom import generate

    (text,) = [body for _, body in blocks("yaml") if "folders:" in body]
    labels = tmp_path / "labels.yaml"
    labels.write_text(text + "\n")
    folders = load_labels(labels).folders
    assert folders == {"glioma": "glioma", "meningioma": "meningioma", "metastasis_lung": "lung", "normal": "notumor"}
    # a hospital-like tree: phantom slices under the README's folder names
    source = {"glioma": "glioma", "meningioma": "meningioma", "metastasis_lung": "pituitary", "normal": "notumor"}
    import cv2

    for rel, label, _, _, image in generate(per_class=4, size=64, per_patient=2, seed=1):
        for folder in (f for f, kind in source.items() if kind == label):
            (tmp_path / "hospital" / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "hospital" / folder / Path(rel).name), image)
    code, out, err = run_cli(["prepare", "folder", tmp_path / "hospital", tmp_path / "data", "--labels", labels],
                             capsys)
    assert code == 0, err
    info = yaml.safe_load((tmp_path / "data" / "dataset.yaml").read_text())
    assert info["classes"] == ["glioma", "lung", "meningioma", "notumor"]
    assert info["tasks"] == yaml.safe_load(text)["tasks"]
    assert sum(sum(per_class.values()) for per_class in info["counts"].values()) == 16


def test_classes_given_as_a_folder_map_points_to_folders(tmp_path, capsys):
    """The README's old spelling is refused in one line that names the key to use."""
    labels = tmp_path / "labels.yaml"
    labels.write_text("classes: {glioma: glioma, normal: notumor}\n")
    (tmp_path / "tree" / "glioma").mkdir(parents=True)
    code, _, err = run_cli(["prepare", "folder", tmp_path / "tree", tmp_path / "out", "--labels", labels], capsys)
    assert code == 1 and "'classes' must be a list of class names (a folder → class map goes under 'folders:')" in err


# --------------------------------------------------------------------------- every btc line is a valid command line


def readme_commands() -> list[tuple[int, list[str]]]:
    tested = run_block()
    return [(line, args) for line, body in blocks("bash") if body + "\n" != tested
            for args in commands(body)]


def test_readme_has_commands_to_check():
    found = readme_commands()
    assert len(found) > 30
    assert {args[0] for _, args in found} >= {"prepare", "audit", "models", "train", "cv", "two-stage", "report",
                                              "benchmark", "predict", "export", "weights", "fetch"}


@pytest.mark.parametrize("line, args", readme_commands(), ids=lambda v: str(v) if isinstance(v, int) else " ".join(v)[:60])
def test_every_readme_btc_line_parses(line, args):
    parse(args)


def test_readme_scripts_exist():
    for _, body in blocks("bash"):
        for script in re.findall(r"python (benchmarks/\S+\.py)", body):
            assert (REPO / script).is_file(), script


# --------------------------------------------------------------------------- the first-hour block runs


@pytest.mark.slow
def test_first_hour_block_runs(tmp_path, capsys, monkeypatch):
    """Every line of the tested block, in order, in a fresh folder whose `../shared` is the real one."""
    if not (SHARED_DATA / "kaggle-original-sample").is_dir() or not (SHARED_DATA / "figshare-sample").is_dir():
        pytest.skip(f"the block reads {SHARED_DATA}")
    (tmp_path / "shared").symlink_to(SHARED_DATA.parent)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    outputs = []
    for args in commands(run_block()):
        code, out, err = run_cli(args, capsys)
        assert code == 0, f"btc {' '.join(args)}: {err}"
        assert "Traceback" not in err and "Warning" not in err, err
        outputs.append(out)
    # what the block promises: datasets, runs, a report whose images load, Grad-CAMs, an ONNX file
    for name in ("phantom", "kaggle", "figshare"):
        assert (work / "data" / name / "dataset.yaml").is_file()
    assert sorted(p.name for p in (work / "runs" / "figshare-cv").glob("fold-*")) == [f"fold-{k}" for k in range(1, 6)]
    assert (work / "first.html").read_text().count("data:image/png;base64,") == 6
    assert len(list((work / "cams").glob("*-gradcam-*.png"))) == len(list((work / "data/phantom/images/glioma").iterdir()))
    assert (work / "first.onnx").stat().st_size > 0
    assert "GMACs" in outputs[4] and "GFLOPs" in outputs[4]
    shutil.rmtree(work / "runs")


def test_the_parser_catches_bad_lines():
    with pytest.raises(UsageError):
        parse(["train", "--data", "d", "--model", "m", "--no-such-option"])
    with pytest.raises(UsageError):
        parse(["prepare", "kaggle", "only-src"])
    with pytest.raises(BadParameter):
        parse(["cv", "--data", "d", "--model", "m", "--fold", "0"])
    with pytest.raises(AssertionError, match="no such command"):
        parse(["trian", "--data", "d"])
