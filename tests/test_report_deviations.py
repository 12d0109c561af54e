"""`btc report` marks every number it compares with a published one by whether its run followed
the paper's protocol (issue 14, point 3): a run whose provenance lists deviations carries a
numbered footnote naming them, in every format; a run without provenance (btc < 0.2) says so.

Run folders are written through `btc.runfolder` with a provenance block as btc.engine writes
it (`config.yaml` → `provenance`); metrics come from btc's own `compute_metrics`.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import pandas as pd
import pytest

from btc.report.model import UNKNOWN_PROVENANCE
from btc.runfolder import CVFolder, RunFolder
from tests.test_report import FOUR, find, md_tables, provenance_block, report, write_cv, write_run

TABLE_004 = "Test accuracy and loss per optimiser (ResNet18 transfer learning)"
DEVIATIONS = ("random initialisation (paper: ImageNet weights)", "image size 64 (paper: 224)")
FOOTNOTE = "not the paper's protocol: " + "; ".join(DEVIATIONS)
WEIGHTS = {"source": "torchvision:ResNet18_Weights.IMAGENET1K_V1", "file": "/cache/hub/checkpoints/resnet18-f37072fd.pth",
           "sha256": "f37072fd47e89c7ba5f5ab1fcbaf3f4f3d3a8c2e1b6f9a2d4c5e6f7a8b9c0d1e", "verified": True}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """paper 004: an SGD run that followed the protocol (ImageNet weights), a NAdam run that
    did not (random initialisation, 64 px), and an SGD run btc < 0.2 wrote (no provenance)."""
    base = tmp_path_factory.mktemp("deviations")
    common = {"model": "resnet18_transfer", "classes": FOUR}
    return {
        "follows": write_run(RunFolder(base / "r18-sgd"), seed=1, recipe="paper004", optimizer="sgd",
                             provenance=provenance_block(1, **WEIGHTS), **common).path,
        "deviates": write_run(RunFolder(base / "r18-nadam"), seed=2, recipe="paper004-nadam", optimizer="nadam",
                              provenance=provenance_block(2, DEVIATIONS), **common).path,
        "old": write_run(RunFolder(base / "r18-old"), seed=3, recipe="paper004", optimizer="sgd", provenance=None,
                         **common).path,
    }


def test_markdown_marks_the_deviating_row_and_names_its_deviations(runs, capsys):
    text = report(capsys, runs["follows"], runs["deviates"], "--paper", "004")
    rows = md_tables(text)[TABLE_004]
    follows = find(rows, Run=runs["follows"].name)
    deviates = find(rows, Run=runs["deviates"].name)
    assert follows["Protocol"] == "paper's protocol"
    assert all("¹" not in follows[c] for c in ("Test accuracy", "Test loss", "Train accuracy", "Train loss"))
    assert deviates["Protocol"] == "not the paper's protocol ¹"
    accuracy = RunFolder(runs["deviates"]).read_metrics()["accuracy"] * 100
    cell = deviates["Test accuracy"]
    assert cell.startswith(f"{accuracy:.2f}, 95 % CI [") and "] ¹ (paper 99.31, Δ " in cell, cell
    for column in ("Test loss", "Train accuracy", "Train loss"):
        assert " ¹ (paper " in deviates[column], deviates[column]
    assert f"\n¹ {FOOTNOTE}\n" in text
    # the provenance section names the weights (source, hash prefix, verified), the data and the deviations
    prov = md_tables(text)["Runs: data, protocol, device"]
    good, bad = find(prov, run=runs["follows"].name), find(prov, run=runs["deviates"].name)
    assert good["initial weights"] == (f"{WEIGHTS['source']}, resnet18-f37072fd.pth, sha256 {WEIGHTS['sha256'][:12]}, "
                                       "verified")
    assert good["dataset fingerprint"] == f"manifest sha256 {'ab' * 6}, phantom, crop none, size 64"
    assert good["deviations from the paper's protocol"] == "none: the paper's protocol"
    assert bad["initial weights"] == "random initialisation"
    assert bad["deviations from the paper's protocol"] == "; ".join(DEVIATIONS)


def test_tex_marks_the_deviating_row(runs, capsys):
    text = report(capsys, runs["follows"], runs["deviates"], "--paper", "004", "--format", "tex")
    body = text[text.index(r"\label{tab:btc-004}"):text.index(r"\end{table}")]
    lines = [line for line in body.splitlines() if line.endswith(r"\\") and " & " in line]
    follows = next(line for line in lines if f" & {runs['follows'].name} & " in line)
    deviates = next(line for line in lines if f" & {runs['deviates'].name} & " in line)
    assert follows.split(" & ")[-1] == r"paper's protocol \\"
    assert r"\textsuperscript" not in follows
    cells = deviates.split(" & ")
    assert cells[-1] == r"not the paper's protocol\textsuperscript{1} \\"
    assert all(r"\textsuperscript{1} (" in c for c in cells[2:6]), cells  # the four numbers
    assert r"\textsuperscript{1} not the paper's protocol: random initialisation (paper: ImageNet weights); " \
           "image size 64 (paper: 224)" in body


def test_csv_carries_the_protocol_of_every_compared_value(runs, capsys):
    text = report(capsys, runs["follows"], runs["deviates"], "--paper", "004", "--format", "csv")
    frame = pd.read_csv(io.StringIO(text), keep_default_na=False)
    table = frame[frame["table"] == "004"]
    by_run = {run: group for run, group in table.groupby("run")}
    assert set(by_run[runs["follows"].name]["protocol"]) == {"paper's protocol"}
    assert set(by_run[runs["deviates"].name]["protocol"]) == {FOOTNOTE}
    assert len(by_run[runs["deviates"].name]) == 4  # test / train accuracy and loss, all marked
    # a row no run filled has no protocol to state
    assert (frame[(frame["table"] == "004") & (frame["status"] == "no run")]["protocol"] == "").all()
    assert (frame[frame["table"] == "provenance"]["protocol"] == "").all()


def test_html_marks_the_deviating_row(runs, capsys):
    text = report(capsys, runs["follows"], runs["deviates"], "--paper", "004", "--format", "html")
    rows = {name: next(r.split("</tr>")[0] for r in text.split("<tr>") if f"<td>{name}</td>" in r)
            for name in (runs["follows"].name, runs["deviates"].name)}
    good, bad = rows[runs["follows"].name], rows[runs["deviates"].name]
    assert "<td>paper&#x27;s protocol</td>" in good and "<sup>" not in good
    assert "<td>not the paper&#x27;s protocol<sup>1</sup></td>" in bad
    assert bad.count("<sup>1</sup>") == 5  # four numbers and the Protocol column
    assert f'<p class="footnote"><sup>1</sup> {html.escape(FOOTNOTE)}</p>' in text


def test_a_run_without_provenance_is_unknown(runs, capsys):
    text = report(capsys, runs["old"], runs["deviates"], "--paper", "004")
    rows = md_tables(text)[TABLE_004]
    old = find(rows, Run=runs["old"].name)
    assert old["Protocol"] == "provenance unknown ¹"
    assert " ¹ (paper 99.25" in old["Test accuracy"]
    # footnotes are numbered down the table: SGD (unknown) first, then NAdam (deviating)
    assert find(rows, Run=runs["deviates"].name)["Protocol"] == "not the paper's protocol ²"
    assert f"\n¹ {UNKNOWN_PROVENANCE}: not known to follow the paper's protocol\n" in text
    assert f"\n² {FOOTNOTE}\n" in text
    prov = find(md_tables(text)["Runs: data, protocol, device"], run=runs["old"].name)
    for field in ("initial weights", "dataset fingerprint", "deviations from the paper's protocol"):
        assert prov[field] == UNKNOWN_PROVENANCE


def test_cv_joins_its_folds_distinct_deviations(tmp_path, capsys):
    """Every fold has its own config.yaml: the CV's row carries the deviations of all its folds."""
    cv = write_cv(CVFolder(tmp_path / "r18-cv"), model="resnet18_transfer", classes=FOUR, n_folds=2,
                  recipe="paper004", optimizer="sgd", provenance=provenance_block(0, DEVIATIONS[:1]))
    RunFolder(cv.fold(2).path).write_config({**cv.fold(2).read_config(),
                                             "provenance": provenance_block(0, DEVIATIONS)})
    text = report(capsys, cv.path, "--paper", "004")
    assert find(md_tables(text)[TABLE_004], Run="r18-cv")["Protocol"] == "not the paper's protocol ¹"
    assert f"\n¹ {FOOTNOTE}\n" in text  # fold 1's deviation once, then fold 2's other one
