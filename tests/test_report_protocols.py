"""`btc report` puts the same model under both protocols side by side (issue 15 point 5).

Only runs whose settings differ in nothing but the protocol are paired (the report says why
others are not); every run of a pair's settings is paired (seed k with seed k, copies each);
a folder given twice counts once; the CI of the difference is paired when both runs have the
same test images; a leak-free run is labelled leak-free.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from btc.engine.config import TrainConfig
from btc.report.build import build_report
from btc.report.protocols import (
    IGNORED,
    difference_ci,
    paired_difference_ci,
    protocol_pairs,
    protocol_table,
    unpaired_note,
)
from btc.report.provenance import provenance
from btc.report.render import render
from btc.report.runs import read_runs
from btc.runfolder import Predictions, RunFolder
from tests.test_report import images, provenance_block, write_run

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


# --------------------------------------------------------------------------- which runs are paired


def test_runs_that_differ_in_other_settings_are_not_paired_and_the_report_says_why(tmp_path):
    paths, targets = images(CLASSES)
    paper = write_run(RunFolder(tmp_path / "paper"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                      targets=targets, protocol="paper", epochs=3)
    free = write_run(RunFolder(tmp_path / "free"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                     targets=targets, protocol="leak-free", epochs=5, lr=1e-2)
    assert protocol_pairs(read_runs([paper.path, free.path])) == []
    report = build_report([paper.path, free.path], plots=False)
    assert [t.key for t in report.tables] == ["runs"]
    notes = [n for n in report.notes if "not paired" in n]
    assert len(notes) == 1 and "differ in epochs (3 vs 5), lr (0.001 vs 0.01)" in notes[0], report.notes


@pytest.mark.parametrize("setting", [{"batch_size": 64}, {"optimizer": "sgd"}, {"image_size": 128},
                                     {"weight_decay": 1e-4}, {"hflip": 0.5}, {"pretrained": True},
                                     {"split_column": "split_dedup"}, {"schedule": "cosine"}])
def test_any_training_setting_keeps_two_runs_apart(tmp_path, setting):
    paths, targets = images(CLASSES)
    paper = write_run(RunFolder(tmp_path / "paper"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                      targets=targets, protocol="paper")
    free = write_run(RunFolder(tmp_path / "free"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                     targets=targets, protocol="leak-free", **setting)
    assert protocol_pairs(read_runs([paper.path, free.path])) == []
    assert f"differ in {next(iter(setting))} (" in unpaired_note(read_runs([paper.path, free.path]))


def test_protocol_machine_and_versions_do_not_keep_two_runs_apart(tmp_path):
    paths, targets = images(CLASSES)
    paper = write_run(RunFolder(tmp_path / "paper"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                      targets=targets, protocol="paper", split_protocol="paper: official split",
                      amp="auto", compile=False, snapshot_every=0, torch_version="2.3.0")
    free = write_run(RunFolder(tmp_path / "free"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                     targets=targets, protocol="leak-free", split_protocol="leak-free: official split",
                     device="cuda", device_name="NVIDIA H100", btc_version="0.3.0", amp="bf16", compile=True,
                     channels_last="on", deterministic=True, snapshot_every=5, torch_version="2.5.1",
                     provenance=provenance_block(0, ("leak-free splits",)))
    runs = read_runs([paper.path, free.path])
    assert protocol_pairs(runs) == [(runs[0], runs[1])] and unpaired_note(runs) == ""


def test_only_the_protocol_and_how_a_run_is_computed_are_ignored():
    """Every TrainConfig field but the protocol and the execution settings is compared."""
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert IGNORED & train_fields == {"protocol", "device", "amp", "channels_last", "compile", "deterministic",
                                      "snapshot_every"}


def test_every_paper_run_is_paired_by_seed(tmp_path):
    paths, targets = images(CLASSES)
    folders = [write_run(RunFolder(tmp_path / f"{protocol}-{seed}"), model="mlp", classes=CLASSES, seed=seed,
                         paths=paths, targets=targets, protocol=protocol)
               for protocol in ("paper", "leak-free") for seed in (0, 1)]
    runs = read_runs([f.path for f in folders])
    pairs = [(a.name, b.name) for a, b in protocol_pairs(runs)]
    assert pairs == [("paper-0", "leak-free-0"), ("paper-1", "leak-free-1")]
    assert len(protocol_table(runs).rows) == 2


def test_copies_of_a_run_are_each_paired(tmp_path):
    paths, targets = images(CLASSES)
    free = write_run(RunFolder(tmp_path / "free"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                     targets=targets, protocol="leak-free")
    copies = [write_run(RunFolder(tmp_path / f"paper-{k}"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                        targets=targets, protocol="paper") for k in (1, 2)]
    runs = read_runs([c.path for c in copies] + [free.path])
    assert [(a.name, b.name) for a, b in protocol_pairs(runs)] == [("paper-1", "free"), ("paper-2", "free")]


def test_the_same_folder_given_twice_is_counted_once(tmp_path, monkeypatch):
    paper, free, _, _ = pair(tmp_path)
    monkeypatch.chdir(tmp_path)
    report = build_report([paper.path, Path("paper"), Path("./paper/"), free.path], plots=False)
    assert [r.name for r in report.runs] == ["paper", "free"]
    side_by_side = next(t for t in report.tables if t.key == "protocols")
    assert len(side_by_side.rows) == 1 and len(report.comparisons) == 1


def test_an_unpaired_run_next_to_a_pair_is_named(tmp_path):
    paper, free, other, _ = pair(tmp_path)
    table = protocol_table(read_runs([paper.path, free.path, other.path]))
    assert "other-seed (leak-free) and paper (paper) differ in seed (1 vs 0)" in " ".join(table.notes), table.notes


# --------------------------------------------------------------------------- labels, notes, wording


def test_a_leak_free_train_run_is_labelled_leak_free(tmp_path):
    text = ("leak-free: the manifest's official split ('split'), 14 test images with a twin in training removed")
    paths, targets = images(CLASSES)
    free = write_run(RunFolder(tmp_path / "free"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                     targets=targets, protocol="leak-free", split_protocol=text)
    paper = write_run(RunFolder(tmp_path / "paper"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                      targets=targets, protocol="paper", split_protocol="paper: the manifest's official split ('split')")
    runs = read_runs([free.path, paper.path])
    label = provenance(runs[0])["protocol"]
    assert label.startswith("leak-free") and "paper's split" not in label and text in label
    assert provenance(runs[1])["protocol"].startswith("paper's split")


def test_identical_test_sets_get_a_paired_ci_and_no_removal_note(tmp_path):
    """Two CVs over the same images: nothing was removed, and the CI resamples the images once."""
    paths, targets = images(CLASSES)
    paper = write_run(RunFolder(tmp_path / "paper"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                      targets=targets, protocol="paper")
    free = write_run(RunFolder(tmp_path / "free"), model="mlp", classes=CLASSES, seed=0, paths=paths,
                     targets=targets, protocol="leak-free")
    p = free.read_predictions()  # the same predictions, listed in another order
    free.write_predictions(Predictions(p.paths[::-1], p.targets[::-1], p.probs[::-1], p.classes, p.predicted[::-1]))
    table = protocol_table(read_runs([paper.path, free.path]))
    difference = table.rows[0].cells[2]
    assert difference.value == 0 and difference.ci == (0.0, 0.0)  # resampled independently it would be wide
    notes = " ".join(table.notes)
    assert "twin" not in notes and "lacks" not in notes
    assert f"the same {len(paths)} test images" in notes and "paired bootstrap" in notes


def test_paired_difference_ci_brackets_the_difference_and_is_seeded():
    rng = np.random.default_rng(1)
    a = rng.random(300) < 0.9
    b = a.copy()
    b[:30] = ~b[:30]
    low, high = paired_difference_ci(a, b)
    assert low <= a.mean() - b.mean() <= high and paired_difference_ci(a, b) == (low, high)
    assert high - low < np.subtract(*difference_ci(a, b)[::-1])  # pairing removes the shared variance


def test_removed_test_images_are_counted_and_mcnemar_wording_agrees(tmp_path):
    paper, free, _, keep = pair(tmp_path)
    report = build_report([paper.path, free.path], plots=False)
    table = next(t for t in report.tables if t.key == "protocols")
    notes = " ".join(table.notes)
    assert f"lacks {len(images(CLASSES)[0]) - keep} of the paper protocol's {len(images(CLASSES)[0])} test images" in notes
    assert f"on the {keep} shared test images" in notes
    text = render(report, "md", None)
    assert "Published: btc's runs" not in text
    reason = report.comparisons[0].reason
    assert f"on the {keep} shared test images" in reason and "not paired" not in reason
