"""`btc report`: the papers' tables from tiny real run folders, stats, plots, formats, errors.

The run folders are made once per module (1 epoch, 64 px, the small models dsconv_cbam and mlp).
The papers' other architectures are too slow for a CPU test, so some of those real folders are
copied and their `config.yaml` relabelled (model / recipe) to land in the paper's rows: the
report maps runs to rows by config, so the mapping and the cells are what is tested. Expected
btc values always come from the run folders' own metrics.json / cv.json / history.csv, and
published values from `btc/report/papers.py`.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import binomtest

from btc.cli import main
from btc.report import papers as P
from btc.report.plots import PLOTS, write_run_plots
from btc.report.stats import bootstrap_accuracy_ci, mcnemar
from tests.conftest import run_cli

TRAIN = ["--epochs", "1", "--image-size", "64", "--batch-size", "16", "--no-pretrained", "--device", "cpu", "-q"]


def _btc(*args) -> None:
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        assert e.code in (0, None), f"btc {' '.join(map(str, args))} exited with {e.code}"


def _relabel(src: Path, dst: Path, **fields) -> Path:
    """A copy of a real run folder whose config.yaml (every fold's) says other `fields`."""
    shutil.copytree(src, dst)
    for config in dst.rglob("config.yaml"):
        data = yaml.safe_load(config.read_text())
        data.update(fields)
        config.write_text(yaml.safe_dump(data, sort_keys=False))
    return dst


@pytest.fixture(scope="module")
def runs(tmp_path_factory, phantom_dir) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("report-runs")
    out = {name: base / name for name in ("dsconv", "mlp", "cv", "presence")}
    _btc("train", "--data", phantom_dir, "--model", "dsconv_cbam", "--out", out["dsconv"], *TRAIN)
    _btc("train", "--data", phantom_dir, "--model", "mlp", "--out", out["mlp"], *TRAIN)
    _btc("cv", "--data", phantom_dir, "--model", "mlp", "--folds", "2", "--out", out["cv"], *TRAIN)
    _btc("train", "--data", phantom_dir, "--model", "mlp", "--task", "presence", "--out", out["presence"], *TRAIN)
    for name in ("dsconv", "mlp", "cv", "presence"):  # the copies below then carry their plots
        write_run_plots(out[name], overwrite=False)
    out["resnesat"] = _relabel(out["presence"], base / "resnesat", model="resnesat")
    out["r34_improved_cv"] = _relabel(out["cv"], base / "r34-improved-cv", model="resnet34_improved")
    out["r34"] = _relabel(out["dsconv"], base / "r34", model="resnet34")
    out["sgd"] = _relabel(out["mlp"], base / "r18-sgd", model="resnet18_transfer", recipe="paper004",
                          optimizer="sgd")
    return out


# --------------------------------------------------------------------------- helpers


def md_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Markdown tables by their `## ` heading: rows as {header: cell}, blank labels filled down."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading, header, rows = "", None, None
    for line in text.splitlines():
        if line.startswith("## "):
            heading, header = line[3:].strip(), None
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if header is None:
                header, rows = cells, []
                tables[heading] = rows
            elif not set(line) <= set("|:- "):
                row = dict(zip(header, cells, strict=True))
                if rows and header[0] == "Model" and not row["Model"]:  # a model's group of class rows
                    for key in ("Model", "Run"):
                        row[key] = row[key] or rows[-1][key]
                rows.append(row)
        else:
            header = None if not line.startswith("|") else header
    return tables


def find(rows: list[dict[str, str]], **labels: str) -> dict[str, str]:
    hits = [r for r in rows if all(r.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, f"{labels}: {len(hits)} rows"
    return hits[0]


def pct(value: float) -> str:
    return f"{value * 100:.2f}"


def paper_pct(value: float, unit: str) -> str:
    return f"paper {P.to_percent(value, unit):.2f}"


def report(capsys, *args) -> str:
    code, out, err = run_cli(["report", *args], capsys)
    assert code == 0, err
    return out


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


# --------------------------------------------------------------------------- paper tables


def test_paper_002_table_3(runs, capsys):
    text = report(capsys, runs["dsconv"], runs["mlp"], "--paper", "002")
    rows = md_tables(text)["Table 3. Test results of different models"]
    spec = P.PAPER_002
    for model, label, run in (("dsconv_cbam", "DSConv-CBAM", runs["dsconv"]), ("mlp", "MLP", runs["mlp"])):
        m = metrics(run)
        published = spec["rows"][model]
        for cls in (*spec["classes"], "average"):
            row = find(rows, Model=label, Classes=P.CLASS_LABELS[cls])
            assert row["Run"] == run.name
            values = m["weighted"] if cls == "average" else m["per_class"][cls]
            for metric in spec["columns"]:
                cell = row[P.METRIC_LABELS[metric]]
                assert cell.startswith(pct(values[metric]) + " ("), cell
                assert paper_pct(published["per_class"][cls][metric], "fraction") in cell
        first = find(rows, Model=label, Classes="Pituitary")
        assert first["Kappa"].startswith(f"{m['kappa']:.4f} (paper {published['kappa']:.4f}")
        predictions = pd.read_csv(run / "predictions.csv")
        low, high = bootstrap_accuracy_ci((predictions["label"] == predictions["predicted"]).to_numpy())
        assert first["Accuracy"].startswith(f"{pct(m['accuracy'])} [{pct(low)}–{pct(high)}]")
        assert f"paper {spec['accuracy_text'][model]:.2f}" in first["Accuracy"]
    # no MobileNetV2 run was given: its row keeps the published values and is never filled in
    for cls in (*spec["classes"], "average"):
        row = find(rows, Model="MobileNetV2", Classes=P.CLASS_LABELS[cls])
        for metric in spec["columns"]:
            expected = paper_pct(spec["rows"]["mobilenet_v2"]["per_class"][cls][metric], "fraction")
            assert row[P.METRIC_LABELS[metric]] == f"no run ({expected})"
    assert find(rows, Model="MobileNetV2", Classes="Pituitary")["Accuracy"] == "no run (paper 96.72)"


def test_paper_002_csv_long_format(runs, capsys):
    text = report(capsys, runs["dsconv"], "--paper", "2", "--format", "csv")
    frame = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert list(frame.columns[:9]) == ["table", "row", "column", "btc", "btc_std", "ci_low", "ci_high", "paper", "diff"]
    m = metrics(runs["dsconv"])
    published = P.PAPER_002["rows"]["dsconv_cbam"]["per_class"]
    for cls in ("glioma", "notumor"):
        line = frame[(frame["row"] == f"DSConv-CBAM / {P.CLASS_LABELS[cls]}") & (frame["column"] == "Recall")].iloc[0]
        assert float(line["btc"]) == pytest.approx(m["per_class"][cls]["recall"] * 100, abs=1e-5)
        assert float(line["paper"]) == pytest.approx(published[cls]["recall"] * 100)
        assert float(line["diff"]) == pytest.approx(float(line["btc"]) - float(line["paper"]), abs=1e-5)
    kappa = frame[(frame["row"] == "DSConv-CBAM") & (frame["column"] == "Kappa")].iloc[0]
    assert float(kappa["btc"]) == pytest.approx(m["kappa"], abs=1e-6)
    missing = frame[frame["row"].str.startswith("MLP")]
    assert (missing["status"] == "no run").all() and (missing["btc"] == "").all()
    provenance = frame[frame["table"] == "provenance"].set_index("column")["btc"]
    assert provenance["model"] == "dsconv_cbam"


def test_paper_001_tables_iii_iv(runs, capsys):
    text = report(capsys, runs["resnesat"], "--paper", "001")
    tables = md_tables(text)
    m = metrics(runs["resnesat"])
    spec = P.PAPER_001["tables"]
    row = find(tables["Table III. Presence or absence of tumor model"], Model="ResNeSAt")
    for metric in ("recall", "specificity", "precision", "f1"):
        cell = row[P.METRIC_LABELS[metric]]
        assert cell.startswith(pct(m["per_class"]["tumor"][metric]) + " ("), cell
        assert paper_pct(spec["III"]["rows"]["resnesat"][metric], "fraction") in cell
    assert row["Accuracy"].startswith(pct(m["accuracy"]) + " [")
    assert paper_pct(spec["III"]["rows"]["resnesat"]["accuracy"], "fraction") in row["Accuracy"]
    resnest = find(tables["Table III. Presence or absence of tumor model"], Model="ResNeSt")
    assert resnest["Recall"] == f"no run ({paper_pct(0.9733, 'fraction')})"
    for r in tables["Table IV. Source of tumor model (primary or secondary)"]:
        assert all(r[c].startswith("no run") for c in ("Recall", "Specificity", "Precision", "F1-score", "Accuracy"))


def test_paper_003_tables(runs, capsys):
    cv_dir, r34 = runs["r34_improved_cv"], runs["r34"]
    text = report(capsys, cv_dir, r34, "--paper", "003")
    tables = md_tables(text)
    spec = P.PAPER_003
    cv = json.loads((cv_dir / "cv.json").read_text())
    # Table 2: ablation accuracies (a CV shows mean ± std over folds)
    t2 = tables["Table 2. Model's average test accuracy (ablation)"]
    cell = find(t2, Model="5")["Accuracy"]
    assert cell.startswith(f"{pct(cv['mean']['accuracy'])} ± {pct(cv['std']['accuracy'])} [")
    assert "paper 98.82" in cell
    assert find(t2, Model="1")["Accuracy"].startswith(pct(metrics(r34)["accuracy"]) + " [")
    assert find(t2, Model="2")["Accuracy"] == "no run (paper 98.33)"
    # Table 3: per class, macro average
    t3 = tables["Table 3. Average evaluation index of each model (%)"]
    m = metrics(r34)
    for cls, label in (("meningioma", "Meningioma"), ("average", "Average")):
        values = m["macro"] if cls == "average" else m["per_class"][cls]
        row = find(t3, Model="ResNet34", Type=label)
        assert row["Specificity"].startswith(pct(values["specificity"]) + " (")
        assert f"paper {spec['table3']['rows']['resnet34'][cls]['specificity']:.2f}" in row["Specificity"]
    # Table 4: per fold (paper fold k = btc fold-(k-1)) and the average
    t4 = tables["Table 4. Five-fold cross-validation of the improved network (%)"]
    for fold in cv["folds"]:
        row = find(t4, **{"K-Fold": str(fold["fold"] + 1)})
        assert row["Run"] == f"{cv_dir.name}/fold-{fold['fold']}"
        assert row["Recall"].startswith(pct(fold["metrics"]["macro"]["recall"]) + " (")
        assert f"paper {spec['table4']['folds'][fold['fold'] + 1]['recall']:.2f}" in row["Recall"]
    assert find(t4, **{"K-Fold": "5"})["F1-score"] == "no fold (paper 98.58)"
    average = find(t4, **{"K-Fold": "Average"})
    assert average["Precision"].startswith(f"{pct(cv['mean']['macro']['precision'])} ± "
                                           f"{pct(cv['std']['macro']['precision'])} (paper 98.42")
    # Table 5: other networks; "Ours" is the improved network
    t5 = tables["Table 5. Other classification networks (%)"]
    assert find(t5, Network="Ours (ResNet34 + A + B + C)")["Specificity"].startswith(
        pct(cv["mean"]["macro"]["specificity"]) + " ± ")
    assert find(t5, Network="Vgg16")["Accuracy"] == "no run (paper 95.77)"


def test_paper_004_optimisers(runs, capsys):
    text = report(capsys, runs["sgd"], "--paper", "004")
    rows = md_tables(text)["Test accuracy and loss per optimiser (ResNet18 transfer learning)"]
    m = metrics(runs["sgd"])
    last = pd.read_csv(runs["sgd"] / "history.csv").iloc[-1]
    sgd = find(rows, Run=runs["sgd"].name)
    assert sgd["Test accuracy"].startswith(pct(m["accuracy"]) + " [") and "paper 99.25" in sgd["Test accuracy"]
    assert sgd["Test loss"].startswith(f"{m['loss']:.5f} (paper 0.03780, Δ ")
    assert sgd["Train accuracy"].startswith(pct(last["train_accuracy"]) + " (paper 99.84")
    nadam = find(rows, Optimiser=P.PAPER_004["rows"]["paper004-nadam"]["label"])
    assert nadam["Test accuracy"] == "no run (paper 99.31)"
    assert nadam["Test loss"] == "no run (paper 0.03446)"
    assert nadam["Train loss"] == "no run (paper –)"


# --------------------------------------------------------------------------- generic report, provenance, plots


def test_generic_report_provenance_and_plots(runs, capsys, tmp_path):
    out = tmp_path / "sub" / "report.md"
    code, stdout, err = run_cli(["report", runs["dsconv"], runs["cv"], "--out", out], capsys)
    assert code == 0, err
    assert stdout == ""
    text = out.read_text()
    tables = md_tables(text)
    rows = tables["Comparison of the given runs"]
    cv = json.loads((runs["cv"] / "cv.json").read_text())
    assert find(rows, Run="cv")["Recall"] == f"{pct(cv['mean']['macro']['recall'])} ± {pct(cv['std']['macro']['recall'])}"
    assert find(rows, Run="dsconv")["Kappa"] == f"{metrics(runs['dsconv'])['kappa']:.4f}"
    prov = {r["run"]: r for r in tables["Runs: data, protocol, device"]}
    config = yaml.safe_load((runs["dsconv"] / "config.yaml").read_text())
    assert prov["dsconv"]["data"] == f"phantom ({config['data']})"
    assert prov["dsconv"]["protocol"].startswith("paper's split")
    assert prov["dsconv"]["device"] == config["device_name"]
    assert prov["dsconv"]["seed"] == "0" and prov["dsconv"]["btc version"] == config["btc_version"]
    assert prov["dsconv"]["epochs"] == "1" and prov["dsconv"]["image size"] == "64"
    assert "2-fold" in prov["cv"]["protocol"] and prov["cv"]["kind"] == "CV, 2 of 2 folds"
    # the plots were (re)generated into the run folders and are linked relative to the report
    for name in PLOTS:
        assert (runs["cv"] / name).is_file() and (runs["dsconv"] / name).is_file()
        assert f"(../../{runs['dsconv'].parent.name}/dsconv/{name})" in text
    comparisons = tables["Paired comparisons (McNemar)"]
    assert comparisons[0]["p (exact)"].startswith("not paired")


def test_html_embeds_png_and_tex_is_booktabs(runs, capsys, tmp_path):
    out = tmp_path / "report.html"
    report(capsys, runs["dsconv"], runs["mlp"], "--paper", "002", "--format", "html", "--out", out)
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "DSConv-CBAM" in text and "no run" in text
    start = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    assert base64.b64decode(text[start:text.index('"', start)])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temporary left
    tex = report(capsys, runs["dsconv"], "--paper", "002", "--format", "tex")
    assert "\\begin{tabular}" in tex and "\\toprule" in tex and "\\bottomrule" in tex
    assert "DSConv-CBAM" in tex and "resnet34" not in tex


def test_write_run_plots_regenerates_missing(runs, tmp_path):
    run = shutil.copytree(runs["mlp"], tmp_path / "mlp")
    for name in PLOTS:
        (run / name).unlink(missing_ok=True)
    written = write_run_plots(run)
    assert sorted(written) == sorted(PLOTS)
    for name in PLOTS:
        assert (run / name).read_bytes()[:4] == b"\x89PNG"
    before = (run / "roc.png").stat().st_mtime_ns
    write_run_plots(run, overwrite=False)
    assert (run / "roc.png").stat().st_mtime_ns == before


# --------------------------------------------------------------------------- stats


def test_bootstrap_ci_is_deterministic_and_contains_accuracy():
    correct = np.random.default_rng(1).random(300) < 0.8
    ci = bootstrap_accuracy_ci(correct, n_boot=2000, seed=0)
    assert ci == bootstrap_accuracy_ci(correct, n_boot=2000, seed=0)
    assert ci[0] < correct.mean() < ci[1]
    assert 0.05 < ci[1] - ci[0] < 0.15  # ≈ 2 × 1.96 × sqrt(0.8 × 0.2 / 300) = 0.09
    assert bootstrap_accuracy_ci(np.ones(20, bool)) == (1.0, 1.0)


def test_mcnemar_exact_on_hand_made_vectors():
    # 5 images right only by A, 1 right only by B, 4 right by both, 2 wrong by both
    a = np.array([1] * 5 + [0] + [1] * 4 + [0] * 2, bool)
    b = np.array([0] * 5 + [1] + [1] * 4 + [0] * 2, bool)
    result = mcnemar(a, b)
    assert (result.n, result.b, result.c) == (12, 5, 1)
    # exact two-sided: 2 × P(X ≤ 1), X ~ Binomial(6, ½) = 2 × (1 + 6) / 64
    assert result.p_value == pytest.approx(14 / 64)
    assert result.p_value == pytest.approx(binomtest(5, 6, 0.5).pvalue)
    assert not result.significant()
    assert mcnemar(a, a).p_value == 1.0
    assert mcnemar(np.ones(30, bool), np.zeros(30, bool)).significant()


def test_mcnemar_of_two_runs_on_the_same_test_images(runs, capsys):
    text = report(capsys, runs["dsconv"], runs["mlp"], runs["cv"])
    rows = md_tables(text)["Paired comparisons (McNemar)"]
    a = pd.read_csv(runs["dsconv"] / "predictions.csv")
    b = pd.read_csv(runs["mlp"] / "predictions.csv").set_index("path").loc[a["path"]]
    expected = mcnemar((a["label"] == a["predicted"]).to_numpy(), (b["label"] == b["predicted"]).to_numpy())
    paired = find(rows, **{"Run A": "dsconv", "Run B": "mlp"})
    assert paired["A right, B wrong"] == str(expected.b) and paired["A wrong, B right"] == str(expected.c)
    assert paired["p (exact)"] == f"{expected.p_value:.4g}"
    assert find(rows, **{"Run A": "dsconv", "Run B": "cv"})["p (exact)"] == "not paired (different test images)"


# --------------------------------------------------------------------------- published numbers, errors


def test_published_numbers_agree_across_tables():
    p3 = P.PAPER_003
    ours = p3["table5"]["rows"]["resnet34_improved"]
    assert p3["table2"]["rows"]["resnet34_improved"]["accuracy"] == p3["table4"]["average"]["accuracy"] == ours["accuracy"]
    assert dict(p3["table4"]["average"]) == ours
    folds = p3["table4"]["folds"]
    assert np.mean([f["accuracy"] for f in folds.values()]) == pytest.approx(98.82, abs=0.01)
    model1 = p3["table3"]["rows"]["resnet34"]
    for metric in ("precision", "recall", "specificity", "f1"):
        classes = [model1[c][metric] for c in p3["table3"]["classes"]]
        assert np.mean(classes) == pytest.approx(model1["average"][metric], abs=0.01)
    accuracy_text = P.PAPER_002["accuracy_text"]
    for model, row in P.PAPER_002["rows"].items():
        assert round(accuracy_text[model] / 100, 2) == row["accuracy"]


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "no such run folder"),
    (["{data}"], "not a run folder"),
    (["{run}", "--paper", "005"], "unknown --paper"),
    (["{run}", "--format", "docx"], "unknown --format"),
])
def test_cli_errors_are_one_line(runs, phantom_dir, tmp_path, capsys, args, message):
    values = {"missing": tmp_path / "nope", "data": phantom_dir, "run": runs["dsconv"]}
    code, out, err = run_cli(["report", *[a.format(**values) for a in args]], capsys)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_csv_module_reads_every_line(runs, capsys):
    text = report(capsys, runs["cv"], "--format", "csv")
    lines = list(csv.reader(io.StringIO(text)))
    assert all(len(line) == len(lines[0]) for line in lines)
