"""`btc report` puts the same model under both protocols side by side (issue 15 point 5)."""

from __future__ import annotations

import numpy as np

from btc.report.build import build_report
from btc.report.protocols import difference_ci, protocol_table
from btc.report.render import render
from btc.report.runs import read_runs
from btc.runfolder import RunFolder
from tests.test_report import images, write_run

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


def pair(tmp_path):
    paths, targets = images(CLASSES)
    paper = write_run(RunFolder(tmp_path / "paper"), model="mlp", classes=CLASSES, seed=0, task="multiclass",
                      paths=paths, targets=targets, protocol="paper", split_protocol="paper: official split")
    keep = len(paths) * 2 // 3  # leak-free: the test images with a twin in training are gone
    free = write_run(RunFolder(tmp_path / "free"), model="mlp", classes=CLASSES, seed=0, task="multiclass",
                     paths=paths[:keep], targets=targets[:keep], protocol="leak-free",
                     split_protocol="leak-free: official split, twins removed")
    other = write_run(RunFolder(tmp_path / "other-seed"), model="mlp", classes=CLASSES, seed=1, task="multiclass",
                      paths=paths, targets=targets, protocol="leak-free")
    return paper, free, other, keep


def test_pairs_only_runs_that_differ_in_their_protocol(tmp_path):
    paper, free, other, keep = pair(tmp_path)
    runs = read_runs([paper.path, free.path, other.path])
    table = protocol_table(runs)
    assert table is not None and len(table.rows) == 1  # seed 1 has no paper run to pair with
    row = table.rows[0]
    a, b = runs[0].correct.astype(float), runs[1].correct.astype(float)
    assert row.cells[0].value == 100 * a.mean() and row.cells[1].value == 100 * b.mean()
    assert row.cells[2].value == 100 * (a.mean() - b.mean())
    low, high = row.cells[2].ci
    assert low <= row.cells[2].value <= high
    assert f"{keep} shared test images" in " ".join(table.notes)
    assert protocol_table(read_runs([paper.path, other.path])) is None  # different seeds: no pair


def test_difference_ci_brackets_the_difference_and_is_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.random(300) < 0.9, rng.random(200) < 0.7
    low, high = difference_ci(a, b)
    assert low < a.mean() - b.mean() < high and difference_ci(a, b) == (low, high)
    assert 0.05 < low and high < 0.35


def test_side_by_side_table_renders_in_the_report(tmp_path):
    paper, free, _, _ = pair(tmp_path)
    report = build_report([paper.path, free.path], plots=False)
    text = render(report, "md", None)
    assert "The paper's protocol and the leak-free protocol, side by side" in text
    assert "paper / free" in text
    html = render(report, "html", None)
    assert "side by side" in html
