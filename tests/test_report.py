"""`btc report`: the papers' tables from run folders, stats, plots, formats, errors, btc 0.1 CVs.

The run and CV folders are written through `btc.runfolder` (the contract the engine writes
through): seeded predictions over a small fixed set of test images, `metrics.json` computed from
them with btc's own `compute_metrics` (a CV: `cv.json` with `aggregate`'s mean and std), a
`history.csv` and a `config.yaml` naming the model the report maps to a paper's row. Expected
btc values always come from these folders' own files, published values from
`btc/report/papers.py`. Near the end, one test builds a btc 0.1 CV folder (fold-0/…) by hand and
one reports a run folder that `btc train` wrote.
"""

from __future__ import annotations

import ast
import base64
import csv
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from btc.engine.metrics import aggregate, compute_metrics
from btc.report import papers as P
from btc.report.build import build_report
from btc.report.plots import missing_plots, write_missing_plots, write_run_plots
from btc.report.runs import read_run
from btc.report.stats import bootstrap_accuracy_ci, mcnemar
from btc.report.summary import write_cv_report
from btc.runfolder import (
    PLOTS,
    SUMMARY_METRICS,
    CVFolder,
    CVSummary,
    FoldAssignment,
    FoldResult,
    Predictions,
    RunFolder,
    metric_value,
)
from tests.conftest import REPO, run_cli

FOUR = ["glioma", "meningioma", "notumor", "pituitary"]
PRESENCE = ["no_tumor", "tumor"]
N_IMAGES = 48


# --------------------------------------------------------------------------- run folders written through the contract


def images(classes: list[str], n: int = N_IMAGES) -> tuple[list[str], np.ndarray]:
    """A fixed test set: paths and true class indices, every class present."""
    targets = np.arange(n) % len(classes)
    return [f"images/{classes[t]}/{i:03d}.png" for i, t in enumerate(targets)], targets


def seeded_predictions(paths: list[str], targets: np.ndarray, classes: list[str], seed: int) -> Predictions:
    """Probabilities that favour the true class (accuracy well above chance, below 1)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(paths), len(classes)))
    logits[np.arange(len(paths)), targets] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return Predictions.from_probs(paths, targets, probs, classes)


def provenance_block(seed: int = 0, deviations: tuple[str, ...] = (), **weights) -> dict:
    """config.yaml's provenance as btc.engine writes it; no deviations: the paper's protocol."""
    return {"initial_weights": weights or {"source": "random"},
            "dataset": {"manifest_sha256": "ab" * 32, "source": "phantom", "crop": "none", "size": 64},
            "protocol": "manifest split column 'split'", "device": "cpu: x86_64",
            "versions": {"btc": "0.2.0"}, "seed": seed, "deviations": list(deviations)}


def write_run(folder: RunFolder, *, model: str, classes: list[str], seed: int, task: str = "tumor_type",
              paths: list[str] | None = None, targets: np.ndarray | None = None, epochs: int = 3,
              protocol: str = "manifest split column 'split'", provenance: dict | None | bool = True,
              **config) -> RunFolder:
    """A finished run folder: config, history, predictions and their metrics. `provenance`: the
    config's provenance block (True: one following the paper's protocol; None: none, btc < 0.2)."""
    if paths is None:
        paths, targets = images(classes)
    predictions = seeded_predictions(paths, targets, classes, seed)
    if provenance is True:
        provenance = provenance_block(seed)
    folder.write_config({"model": model, "recipe": "paper002", "task": task, "epochs": epochs, "image_size": 64,
                         "batch_size": 16, "lr": 1e-3, "optimizer": "adam", "seed": seed, "device": "cpu",
                         "data": "/data/phantom", "dataset": "phantom", "classes": classes,
                         "device_name": "cpu: x86_64", "btc_version": "0.2.0", "protocol": protocol, **config,
                         **({"provenance": provenance} if provenance is not None else {})})
    folder.write_history([{"epoch": e, "lr": 1e-3, "train_loss": 1.0 / e, "train_accuracy": 0.5 + 0.1 * e,
                           "val_loss": None, "val_accuracy": None, "seconds": 1.0} for e in range(1, epochs + 1)])
    folder.write_predictions(predictions)
    folder.write_metrics(compute_metrics(predictions.targets, predictions.probs, classes))
    return folder


def write_cv(cv: CVFolder, *, model: str, classes: list[str], n_folds: int, finished: int | None = None,
             seed: int = 0, **config) -> CVFolder:
    """A CV folder whose first `finished` folds (default all) are done, with its cv.json."""
    paths, targets = images(classes)
    folds = np.arange(len(paths)) % n_folds + 1
    protocol = f"stratified {n_folds}-fold"
    cv.write_folds(FoldAssignment(paths, folds, protocol))
    results = []
    for k in range(1, (finished or n_folds) + 1):
        test = folds == k
        run = write_run(cv.fold(k), model=model, classes=classes, seed=seed + k, paths=list(np.array(paths)[test]),
                        targets=targets[test], protocol=f"{protocol}, fold {k}", **config)
        results.append(FoldResult(k, run.read_metrics()))
    mean, std = aggregate([r.metrics for r in results])
    cv.write_summary(CVSummary(n_folds, results, mean, std, protocol))
    return cv


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("report-runs")
    presence_paths, presence_targets = images(PRESENCE)
    folders = {
        "dsconv": write_run(RunFolder(base / "dsconv"), model="dsconv_cbam", classes=FOUR, seed=1),
        "mlp": write_run(RunFolder(base / "mlp"), model="mlp", classes=FOUR, seed=2),
        "cv": write_cv(CVFolder(base / "cv"), model="mlp", classes=FOUR, n_folds=2, seed=10),
        "resnesat": write_run(RunFolder(base / "resnesat"), model="resnesat", classes=PRESENCE, seed=3,
                              task="presence", paths=presence_paths, targets=presence_targets),
        "r34_improved_cv": write_cv(CVFolder(base / "r34-improved-cv"), model="resnet34_improved", classes=FOUR,
                                    n_folds=4, seed=20),
        "r34": write_run(RunFolder(base / "r34"), model="resnet34", classes=FOUR, seed=4),
        "sgd": write_run(RunFolder(base / "r18-sgd"), model="resnet18_transfer", classes=FOUR, seed=5,
                         recipe="paper004", optimizer="sgd"),
    }
    return {name: folder.path for name, folder in folders.items()}


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
            header = None
    return tables


def find(rows: list[dict[str, str]], **labels: str) -> dict[str, str]:
    hits = [r for r in rows if all(r.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, f"{labels}: {len(hits)} rows"
    return hits[0]


def pct(value: float) -> str:
    return f"{value * 100:.2f}"


def ci(low: float, high: float) -> str:
    """The report's one CI notation, of fractions shown as percentages."""
    return f"95 % CI [{pct(low)}, {pct(high)}]"


def paper_pct(value: float, unit: str) -> str:
    return f"paper {P.to_percent(value, unit):.2f}"


def report(capsys, *args) -> str:
    code, out, err = run_cli(["report", *args], capsys)
    assert code == 0, err
    return out


def metrics(run: Path) -> dict:
    return RunFolder(run).read_metrics()


def correct(run: Path) -> np.ndarray:
    p = RunFolder(run).read_predictions()
    return p.targets == p.predicted


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
        low, high = bootstrap_accuracy_ci(correct(run))
        assert first["Accuracy"].startswith(f"{pct(m['accuracy'])}, {ci(low, high)} (")
        assert f"paper {spec['accuracy_text'][model]:.2f}" in first["Accuracy"]
    # no MobileNetV2 run was given: its five rows collapse into one line, never filled in
    assert not [r for r in rows if r["Model"] == "MobileNetV2"]
    assert "\nPublished only (no run given): MobileNetV2.\n" in text


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
    # CSV keeps the rows no run filled, with the published values
    missing = frame[frame["row"].str.startswith("MLP")]
    assert len(missing) == 5 * 4 + 2 and (missing["status"] == "no run").all() and (missing["btc"] == "").all()
    recall = missing[(missing["row"] == "MLP / Glioma") & (missing["column"] == "Recall")].iloc[0]
    assert float(recall["paper"]) == pytest.approx(P.PAPER_002["rows"]["mlp"]["per_class"]["glioma"]["recall"] * 100)
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
    assert row["Accuracy"].startswith(pct(m["accuracy"]) + ", 95 % CI [")
    assert paper_pct(spec["III"]["rows"]["resnesat"]["accuracy"], "fraction") in row["Accuracy"]
    assert [r["Model"] for r in tables["Table III. Presence or absence of tumor model"]] == ["ResNeSAt"]
    # Table IV has no run at all: no table, one line naming its published rows
    assert "Table IV. Source of tumor model (primary or secondary)" not in tables
    table_iv = text[text.index("## Table IV."):]
    assert table_iv.split("\n\n")[2] == "Published only (no run given): ResNeSt, ResNeSAt."
    assert "\nPublished only (no run given): ResNeSt.\n" in text  # Table III


def test_paper_003_tables(runs, capsys):
    cv_dir, r34 = runs["r34_improved_cv"], runs["r34"]
    text = report(capsys, cv_dir, r34, "--paper", "003")
    tables = md_tables(text)
    spec = P.PAPER_003
    cv = CVFolder(cv_dir).read_summary()
    # Table 2: ablation accuracies (a CV shows mean ± std over folds)
    t2 = tables["Table 2. Model's average test accuracy (ablation)"]
    cell = find(t2, Model="5")["Accuracy"]
    assert cell.startswith(f"{pct(cv.mean['accuracy'])} ± {pct(cv.std['accuracy'])}, 95 % CI [")
    assert "paper 98.82" in cell
    assert find(t2, Model="1")["Accuracy"].startswith(pct(metrics(r34)["accuracy"]) + ", 95 % CI [")
    assert [r["Model"] for r in t2] == ["1", "5"]
    assert ("Published only (no run given): 2 (ResNet34 + A), 3 (ResNet34 + B), 4 (ResNet34 + C)."
            in text.split("## Table 2.")[1].split("## Table 3.")[0])
    # Table 3: per class, macro average
    t3 = tables["Table 3. Average evaluation index of each model (%)"]
    m = metrics(r34)
    for cls, label in (("meningioma", "Meningioma"), ("average", "Average")):
        values = m["macro"] if cls == "average" else m["per_class"][cls]
        row = find(t3, Model="ResNet34", Type=label)
        assert row["Specificity"].startswith(pct(values["specificity"]) + " (")
        assert f"paper {spec['table3']['rows']['resnet34'][cls]['specificity']:.2f}" in row["Specificity"]
    # Table 4: paper fold k is btc's fold-k (each with its own CI), then the average
    t4 = tables["Table 4. Five-fold cross-validation of the improved network (%)"]
    assert [f.fold for f in cv.folds] == [1, 2, 3, 4]
    for fold in cv.folds:
        row = find(t4, **{"K-Fold": str(fold.fold)})
        assert row["Run"] == f"{cv_dir.name}/{CVFolder(cv_dir).fold(fold.fold).path.name}"
        assert row["Recall"].startswith(pct(fold.metrics["macro"]["recall"]) + " (")
        assert f"paper {spec['table4']['folds'][fold.fold]['recall']:.2f}" in row["Recall"]
        low, high = bootstrap_accuracy_ci(correct(CVFolder(cv_dir).fold(fold.fold).path))
        assert row["Accuracy"].startswith(f"{pct(fold.metrics['accuracy'])}, {ci(low, high)} (")
    assert find(t4, **{"K-Fold": "5"})["F1-score"] == "no fold (paper 98.58)"  # the CV's missing fold stays
    average = find(t4, **{"K-Fold": "Average"})
    assert average["Precision"].startswith(f"{pct(cv.mean['macro']['precision'])} ± "
                                           f"{pct(cv.std['macro']['precision'])} (paper 98.42")
    # Table 5: other networks; "Ours" is the improved network
    t5 = tables["Table 5. Other classification networks (%)"]
    assert find(t5, Network="Ours (ResNet34 + A + B + C)")["Specificity"].startswith(
        pct(cv.mean["macro"]["specificity"]) + " ± ")
    assert "Vgg16" in text.split("## Table 5.")[1].split("Published only (no run given): ")[1].split("\n")[0]
    assert len(t5) == 1  # Ours; the seven other networks have no run


def test_paper_004_optimisers(runs, capsys):
    text = report(capsys, runs["sgd"], "--paper", "004")
    rows = md_tables(text)["Test accuracy and loss per optimiser (ResNet18 transfer learning)"]
    m = metrics(runs["sgd"])
    last = RunFolder(runs["sgd"]).read_history().iloc[-1]
    sgd = find(rows, Run=runs["sgd"].name)
    assert sgd["Test accuracy"].startswith(pct(m["accuracy"]) + ", 95 % CI [") and "paper 99.25" in sgd["Test accuracy"]
    assert sgd["Test loss"].startswith(f"{m['loss']:.5f} (paper 0.03780, Δ ")
    assert sgd["Train accuracy"].startswith(pct(last["train_accuracy"]) + " (paper 99.84")
    assert sgd["Train loss"].startswith(f"{last['train_loss']:.5f} (paper 0.00550")
    assert len(rows) == 1
    assert f"\nPublished only (no run given): {P.PAPER_004['rows']['paper004-nadam']['label']}.\n" in text


# --------------------------------------------------------------------------- generic report, provenance, plots


def test_generic_report_provenance_and_plots(runs, capsys, tmp_path):
    dsconv = shutil.copytree(runs["dsconv"], tmp_path / "runs" / "dsconv")
    cv_dir = shutil.copytree(runs["cv"], tmp_path / "runs" / "cv")
    out = tmp_path / "sub" / "report.md"
    code, stdout, err = run_cli(["report", dsconv, cv_dir, "--out", out], capsys)
    assert code == 0, err
    assert stdout == "" and err.strip() == f"wrote {out}"
    text = out.read_text()
    tables = md_tables(text)
    rows = tables["Comparison of the given runs"]
    assert [c for c in rows[0] if c not in ("Run", "Model", "Task")] == [
        title[0].upper() + title[1:] for _, title in SUMMARY_METRICS] + ["Loss"]
    cv = CVFolder(cv_dir).read_summary()
    assert (find(rows, Run="cv")["Macro recall"]
            == f"{pct(cv.mean['macro']['recall'])} ± {pct(cv.std['macro']['recall'])}")
    assert find(rows, Run="dsconv")["Kappa"] == f"{metrics(dsconv)['kappa']:.4f}"
    prov = {r["run"]: r for r in tables["Runs: data, protocol, device"]}
    config = RunFolder(dsconv).read_config()
    assert prov["dsconv"]["data"] == f"phantom ({config['data']})"
    assert prov["dsconv"]["protocol"].startswith("paper's split")
    assert prov["dsconv"]["device"] == config["device_name"]
    assert prov["dsconv"]["seed"] == "1" and prov["dsconv"]["btc version"] == config["btc_version"]
    assert prov["dsconv"]["epochs"] == "3" and prov["dsconv"]["image size"] == "64"
    assert prov["cv"]["seed"] == "11; 12"  # the folds' distinct seeds
    assert prov["cv"]["protocol"] == "stratified 2-fold" and prov["cv"]["kind"] == "CV, 2 of 2 folds"
    assert prov["cv"]["test images"] == str(N_IMAGES)
    # the plots were drawn into the run folders and are linked relative to the report
    for name in PLOTS:
        assert (cv_dir / name).is_file() and (dsconv / name).is_file()
        assert f"(../runs/dsconv/{name})" in text
    # the CV's pooled out-of-fold predictions cover dsconv's test images: the two are paired by path
    pooled = read_run(CVFolder(cv_dir)).predictions
    order = [pooled.paths.index(path) for path in RunFolder(dsconv).read_predictions().paths]
    expected = mcnemar(correct(dsconv), (pooled.targets == pooled.predicted)[order])
    assert tables["Paired comparisons (McNemar)"][0]["p (exact)"] == f"{expected.p_value:.4g}"


# --------------------------------------------------------------------------- the HTML page as a user sees it


class _Page(HTMLParser):
    """The images (src) and the text of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def _picture(png: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None, "not a decodable image"
    return image


def _not_blank(image: np.ndarray) -> bool:
    """More than 1 % of the pixels differ from the page's most common (background) grey level."""
    background = np.bincount(image.ravel(), minlength=256).argmax()
    return float((np.abs(image.astype(int) - int(background)) > 16).mean()) > 0.01


@pytest.fixture(scope="module")
def html_page(runs, tmp_path_factory) -> Path:
    """A paper-002 HTML report of a run that follows the protocol, one that does not (image size),
    and a CV, with every plot embedded."""
    base = tmp_path_factory.mktemp("html")
    deviating = write_run(RunFolder(base / "mlp-64px"), model="mlp", classes=FOUR, seed=8,
                          provenance=provenance_block(8, ("image size 64 (paper: 224)",)))
    folders = [shutil.copytree(runs["dsconv"], base / "dsconv"), deviating.path,
               shutil.copytree(runs["cv"], base / "cv")]
    out = base / "report.html"
    code = 0
    try:
        from btc.cli import main

        main(["report", *map(str, folders), "--paper", "002", "--format", "html", "--out", str(out)])
    except SystemExit as e:
        code = e.code
    assert code in (0, None)
    return out


def test_html_page_decodes_every_image_and_marks_protocol(html_page):
    """Without a browser: the page parses, every embedded image decodes to a picture that is not
    blank, and the provenance and deviation marks are on it."""
    page = _Page()
    page.feed(html_page.read_text())
    assert len(page.images) == 3 * len(PLOTS)  # three runs, every plot
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        picture = _picture(base64.b64decode(src.split(",", 1)[1]))
        assert min(picture.shape) > 100 and _not_blank(picture)
    text = " ".join(page.text)
    assert "not the paper's protocol" in text and "image size 64 (paper: 224)" in text  # footnote
    assert "paper's protocol" in text and "Runs: data, protocol, device" in text
    assert "deviations from the paper's protocol" in text and "initial weights" in text
    assert "Published only (no run given): MobileNetV2." in text
    assert "percentages with two decimals" in text


CHROMIUM = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (apt-get install chromium); "
                                              "test_html_page_decodes_every_image_and_marks_protocol checks the page")
def test_html_page_in_headless_chromium(html_page, tmp_path):
    """Rendered by Chromium: the screenshot is not blank and every <img> has loaded (a script in a
    copy of the page writes the count of loaded images into the title, read back from the DOM)."""
    probe = tmp_path / "probe.html"
    probe.write_text(html_page.read_text().replace("</body>", (
        "<script>window.addEventListener('load', () => { const all = [...document.images]; "
        "document.title = `images ${all.length} loaded ${all.filter(i => i.complete && i.naturalWidth > 0).length}`; "
        "});</script></body>")))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"]
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    title = dom.split("<title>")[1].split("</title>")[0]
    assert title == f"images {3 * len(PLOTS)} loaded {3 * len(PLOTS)}", title
    shot = tmp_path / "page.png"
    subprocess.run([*flags, "--window-size=1280,2400", f"--screenshot={shot}", html_page.as_uri()],
                   capture_output=True, timeout=120)
    screenshot = _picture(shot.read_bytes())
    assert screenshot.shape == (2400, 1280) and _not_blank(screenshot)
    # the tables fit the page's width: no column of the screenshot's right edge carries text
    assert not _not_blank(screenshot[:, -8:])


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


def test_tex_and_csv_draw_no_plots(runs, tmp_path, capsys):
    run = shutil.copytree(runs["mlp"], tmp_path / "mlp")
    for name in PLOTS:  # drawn there by an earlier Markdown / HTML report
        (run / name).unlink(missing_ok=True)
    for fmt in ("tex", "csv"):
        report(capsys, run, "--format", fmt)
    assert missing_plots(RunFolder(run)) == list(PLOTS)


def test_write_missing_plots_draws_only_the_missing(runs, tmp_path):
    folder = RunFolder(shutil.copytree(runs["mlp"], tmp_path / "mlp"))
    for name in PLOTS:
        folder.plot(name).unlink(missing_ok=True)
    assert sorted(p.name for p in write_missing_plots(folder)) == sorted(PLOTS)
    for name in PLOTS:
        assert folder.plot(name).read_bytes()[:4] == b"\x89PNG"
    assert write_missing_plots(folder) == []
    folder.plot(PLOTS[0]).unlink()
    before = folder.plot(PLOTS[2]).stat().st_mtime_ns
    assert write_missing_plots(folder) == [folder.plot(PLOTS[0])]
    assert folder.plot(PLOTS[2]).stat().st_mtime_ns == before
    assert sorted(p.name for p in write_run_plots(folder)) == sorted(PLOTS)  # all, replaced


def test_cv_plots_pool_the_finished_folds(runs, tmp_path):
    cv = CVFolder(shutil.copytree(runs["cv"], tmp_path / "cv"))
    assert sorted(p.name for p in write_run_plots(cv)) == sorted(PLOTS)
    run = read_run(cv)
    assert run.kind == "cv" and [f.fold for f in run.folds] == [1, 2]
    assert len(run.predictions.paths) == N_IMAGES  # out-of-fold predictions of both folds
    # the pooled predictions are the folds' own, so the summed confusion matrix is theirs
    pooled = compute_metrics(run.predictions.targets, run.predictions.probs, run.classes)["confusion_matrix"]
    summed = np.sum([np.asarray(f.metrics["confusion_matrix"]) for f in run.folds], axis=0)
    assert summed.tolist() == pooled
    assert [label for label, _ in run.histories()] == [cv.fold(1).path.name, cv.fold(2).path.name]


def test_two_stage_chain_without_history_gets_no_curves(tmp_path):
    folder = write_run(RunFolder(tmp_path / "chain"), model="resnesat", classes=PRESENCE, seed=7, task="presence")
    folder.history_path.unlink()
    assert sorted(p.name for p in write_run_plots(folder)) == sorted(set(PLOTS) - {"learning_curves.png"})


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
    text = report(capsys, runs["dsconv"], runs["mlp"], runs["resnesat"], "--format", "md")
    rows = md_tables(text)["Paired comparisons (McNemar)"]
    expected = mcnemar(correct(runs["dsconv"]), correct(runs["mlp"]))
    paired = find(rows, **{"Run A": "dsconv", "Run B": "mlp"})
    assert paired["A right, B wrong"] == str(expected.b) and paired["A wrong, B right"] == str(expected.c)
    assert paired["p (exact)"] == f"{expected.p_value:.4g}"
    assert find(rows, **{"Run A": "dsconv", "Run B": "resnesat"})["p (exact)"].startswith("no test: different labels")


def test_mcnemar_only_between_runs_that_predict_the_same_labels(runs, tmp_path, capsys):
    """A 4-class two-stage chain and its 2-class presence run are tested on the same images, but
    "right" means different things: no McNemar test between them, and the report says why."""
    paths, four = images(FOUR)
    chain = write_run(RunFolder(tmp_path / "chain"), model="resnesat", classes=FOUR, seed=1, task="chain",
                      paths=paths, targets=four)
    presence = write_run(RunFolder(tmp_path / "presence"), model="resnesat", classes=PRESENCE, seed=2,
                         task="presence", paths=paths, targets=(four != FOUR.index("notumor")).astype(int))
    relabelled = write_run(RunFolder(tmp_path / "relabelled"), model="mlp", classes=FOUR, seed=3, paths=paths,
                           targets=(four + 1) % 4)
    text = report(capsys, chain.path, presence.path, relabelled.path)
    rows = md_tables(text)["Paired comparisons (McNemar)"]
    different = find(rows, **{"Run A": "chain", "Run B": "presence"})
    assert different["p (exact)"] == ("no test: different labels (4 classes (glioma, meningioma, notumor, pituitary) "
                                      "vs 2 classes (no_tumor, tumor))")
    assert different["A right, B wrong"] == "–" and different["Significant (α = 0.05)"] == "–"
    assert (find(rows, **{"Run A": "chain", "Run B": "relabelled"})["p (exact)"]
            == "no test: the same images carry different labels")


def test_mcnemar_pairs_images_by_path_not_by_order(runs, tmp_path):
    """The same test images listed in another order are still paired image by image."""
    shuffled = RunFolder(tmp_path / "mlp-shuffled")
    shutil.copytree(runs["mlp"], shuffled.path)
    p = shuffled.read_predictions()
    order = np.random.default_rng(0).permutation(len(p.paths))
    shuffled.write_predictions(Predictions([p.paths[i] for i in order], p.targets[order], p.probs[order],
                                           p.classes, p.predicted[order]))
    report_ = build_report([runs["dsconv"], shuffled.path], plots=False)
    assert report_.comparisons[0].result == mcnemar(correct(runs["dsconv"]), correct(runs["mlp"]))


# --------------------------------------------------------------------------- published numbers, errors


def test_published_numbers_agree_across_tables():
    p3 = P.PAPER_003
    ours = p3["table5"]["rows"]["resnet34_improved"]
    assert p3["table2"]["rows"]["resnet34_improved"]["accuracy"] == p3["table4"]["average"]["accuracy"] == ours["accuracy"]
    assert dict(p3["table4"]["average"]) == ours
    folds = p3["table4"]["folds"]
    assert sorted(folds) == [1, 2, 3, 4, 5]
    assert np.mean([f["accuracy"] for f in folds.values()]) == pytest.approx(98.82, abs=0.01)
    model1 = p3["table3"]["rows"]["resnet34"]
    for metric in ("precision", "recall", "specificity", "f1"):
        classes = [model1[c][metric] for c in p3["table3"]["classes"]]
        assert np.mean(classes) == pytest.approx(model1["average"][metric], abs=0.01)
    accuracy_text = P.PAPER_002["accuracy_text"]
    for model, row in P.PAPER_002["rows"].items():
        assert round(accuracy_text[model] / 100, 2) == row["accuracy"]


@pytest.fixture
def broken(tmp_path) -> dict[str, Path]:
    """Folders that are not reportable: an unfinished run, a CV without a finished fold, data."""
    unfinished = RunFolder(tmp_path / "unfinished")
    unfinished.write_config({"model": "mlp"})
    cv = CVFolder(tmp_path / "cv-started")
    paths, _ = images(FOUR, 8)
    cv.write_folds(FoldAssignment(paths, np.arange(8) % 2 + 1, "stratified 2-fold"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.csv").write_text("path,label\n")
    return {"unfinished": unfinished.path, "cv": cv.path, "data": data, "missing": tmp_path / "nope"}


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "no such run folder"),
    (["{data}"], "not a run folder"),
    (["{unfinished}"], "the run has not finished"),
    (["{cv}"], "the CV has no finished fold yet"),
    (["{run}", "--paper", "005"], "unknown --paper"),
    (["{run}", "--format", "docx"], "unknown --format"),
])
def test_cli_errors_are_one_line(runs, broken, capsys, args, message):
    values = {**broken, "run": runs["dsconv"]}
    code, out, err = run_cli(["report", *[a.format(**values) for a in args]], capsys)
    assert code == 1
    assert out == ""
    assert message in err and len(err.strip().splitlines()) == 1, err


def _set(metrics: dict, field: str, value) -> dict:
    """`metrics` with the dotted `field` (e.g. per_class.glioma.f1) set to `value`."""
    *parents, last = field.split(".")
    node = metrics
    for key in parents:
        node = node[key]
    node[last] = value
    return metrics


@pytest.mark.parametrize("field, value", [
    ("accuracy", "abc"), ("accuracy", [1]), ("accuracy", 5), ("accuracy", None), ("accuracy", True),
    ("kappa", "x"), ("loss", -1), ("macro.recall", 1.5), ("per_class.glioma.f1", "bad"),
    ("confusion_matrix", [["a"]]),
])
def test_a_corrupt_metrics_value_stops_with_one_line(runs, tmp_path, capsys, field, value):
    """A value that is no number, or a rate outside [0, 1], is refused as corrupt: one line naming
    the file and the field, never a traceback nor a printed 500.00 %."""
    folder = RunFolder(shutil.copytree(runs["dsconv"], tmp_path / "dsconv"))
    folder.metrics_path.write_text(json.dumps(_set(metrics(folder.path), field, value)))
    code, out, err = run_cli(["report", folder.path], capsys)
    assert code == 1 and out == "", out
    assert len(err.strip().splitlines()) == 1, err
    assert str(folder.metrics_path) in err and f"{field} is {value!r}" in err and "corrupt" in err, err


@pytest.mark.parametrize("where, field", [("mean", "accuracy"), ("std", "kappa"), ("fold 2", "accuracy")])
def test_a_corrupt_cv_summary_value_stops_with_one_line(runs, tmp_path, capsys, where, field):
    cv = CVFolder(shutil.copytree(runs["cv"], tmp_path / "cv"))
    summary = cv.read_summary()
    target = {"mean": summary.mean, "std": summary.std}.get(where) or summary.folds[1].metrics
    target[field] = "abc"
    cv.write_summary(summary)
    code, out, err = run_cli(["report", cv.path], capsys)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1, err
    assert str(cv.summary_path) in err and f"{where} {field} is 'abc'" in err, err


@pytest.mark.parametrize("classes", [PRESENCE, FOUR, ["a", "b", "c"]])
def test_metrics_recomputed_from_predictions_equal_compute_metrics(classes):
    """The report's check recomputes, from the true and predicted labels alone, what
    `compute_metrics` wrote (btc = scikit-learn): a class never predicted, one never present."""
    from btc.report.checks import confusion_metrics

    rng = np.random.default_rng(len(classes))
    n_classes = len(classes)
    for targets, predicted in ((rng.integers(0, n_classes, 60), rng.integers(0, n_classes, 60)),
                               (rng.integers(0, n_classes, 40), np.zeros(40, dtype=int)),       # one class called
                               (np.ones(30, dtype=int), rng.integers(0, n_classes, 30))):        # one class present
        probs = np.eye(n_classes)[predicted] * 0.7 + 0.3 / n_classes
        expected = compute_metrics(targets, probs, classes, y_pred=predicted)
        got = confusion_metrics(targets, predicted, n_classes)
        assert got["n"] == expected["n"] and got["confusion_matrix"] == expected["confusion_matrix"]
        assert got["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-12)
        if expected["kappa"] is None:
            assert got["kappa"] is None or np.isnan(got["kappa"])
        else:
            assert got["kappa"] == pytest.approx(expected["kappa"], abs=1e-12)
        for i, name in enumerate(classes):
            assert got["per_class"][i] == pytest.approx(expected["per_class"][name], abs=1e-12)
        for group in ("macro", "weighted"):
            assert got[group] == pytest.approx(expected[group], abs=1e-12)


@pytest.mark.parametrize("field, change", [
    ("accuracy", 0.01), ("n", 1), ("kappa", -0.02), ("per_class.glioma.recall", 0.05),
    ("per_class.pituitary.support", 1), ("macro.f1", 0.001), ("weighted.precision", -0.01),
])
def test_a_metric_its_predictions_do_not_give_stops_with_one_line(runs, tmp_path, capsys, field, change):
    """An edited metrics.json (a plausible number, in range) is refused: the report prints no number
    that the run's own predictions.csv does not give."""
    folder = RunFolder(shutil.copytree(runs["dsconv"], tmp_path / "dsconv"))
    values = metrics(folder.path)
    node = values
    for key in field.split(".")[:-1]:
        node = node[key]
    node[field.rsplit(".", 1)[-1]] += change
    folder.metrics_path.write_text(json.dumps(values))
    code, out, err = run_cli(["report", folder.path], capsys)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1, err
    assert f"{folder.metrics_path}: {field} is" in err and str(folder.predictions_path) in err, err
    assert "disagree" in err and "--resume" in err


def test_an_edited_confusion_matrix_or_swapped_predictions_are_refused(runs, tmp_path, capsys):
    folder = RunFolder(shutil.copytree(runs["dsconv"], tmp_path / "dsconv"))
    values = metrics(folder.path)
    matrix = values["confusion_matrix"]
    matrix[0][0], matrix[0][1] = matrix[0][1], matrix[0][0]
    folder.metrics_path.write_text(json.dumps(values))
    code, _, err = run_cli(["report", folder.path], capsys)
    assert code == 1 and "confusion_matrix is" in err, err
    other = RunFolder(shutil.copytree(runs["mlp"], tmp_path / "mlp"))  # another run's predictions
    shutil.copy(other.predictions_path, folder.predictions_path)
    shutil.copy(RunFolder(runs["dsconv"]).metrics_path, folder.metrics_path)
    code, _, err = run_cli(["report", folder.path], capsys)
    assert code == 1 and "disagree" in err and len(err.strip().splitlines()) == 1, err


def test_predictions_in_another_class_order_are_no_disagreement(runs, tmp_path, capsys):
    folder = RunFolder(shutil.copytree(runs["dsconv"], tmp_path / "dsconv"))
    frame = pd.read_csv(folder.predictions_path)
    probs = [f"prob_{c}" for c in reversed(FOUR)]
    frame[["path", "label", "predicted", *probs]].to_csv(folder.predictions_path, index=False)
    assert read_run(folder.path).predictions.classes == list(reversed(FOUR))
    report(capsys, folder.path)  # exit 0


@pytest.mark.parametrize("where, field", [("fold 2", "accuracy"), ("mean", "accuracy"), ("std", "accuracy"),
                                          ("mean", "macro.recall")])
def test_a_cv_summary_its_folds_do_not_give_stops_with_one_line(runs, tmp_path, capsys, where, field):
    cv = CVFolder(shutil.copytree(runs["cv"], tmp_path / "cv"))
    summary = cv.read_summary()
    target = {"mean": summary.mean, "std": summary.std}.get(where) or summary.folds[1].metrics
    *parents, last = field.split(".")
    for key in parents:
        target = target[key]
    target[last] = target[last] / 2 + 0.01  # in range, and not what the folds give
    cv.write_summary(summary)
    code, out, err = run_cli(["report", cv.path], capsys)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1, err
    assert str(cv.summary_path) in err and f"{where} {field} is" in err, err
    if where.startswith("fold"):
        assert str(cv.fold(2).predictions_path) in err


def test_csv_module_reads_every_line(runs, capsys):
    text = report(capsys, runs["cv"], "--format", "csv")
    lines = list(csv.reader(io.StringIO(text)))
    assert all(len(line) == len(lines[0]) for line in lines)


# --------------------------------------------------------------------------- CV summary, incomplete CV


def test_write_cv_report_lists_folds_1_to_k_and_mean_std(runs, tmp_path):
    cv = CVFolder(shutil.copytree(runs["cv"], tmp_path / "cv"))
    summary = cv.read_summary()
    path = write_cv_report(cv, summary, title="demo CV")
    text = path.read_text()
    assert path.parent == cv.path and text.startswith("# demo CV\n")
    lines = text.splitlines()

    def shown(value: float, key: tuple[str, ...]) -> str:  # rates in percent, kappa and AUC plain
        return f"{value:.4f}" if key[-1] in ("kappa", "auc") else pct(value)

    for f in summary.folds:
        row = next(line for line in lines if line.startswith(f"| {f.fold} |"))
        assert row == "| " + " | ".join([str(f.fold)] + [shown(metric_value(f.metrics, key), key)
                                                        for key, _ in SUMMARY_METRICS]) + " |"
    mean = next(line for line in lines if line.startswith("| **mean ± std**"))
    assert mean.split(" | ")[1] == f"{pct(summary.mean['accuracy'])} ± {pct(summary.std['accuracy'])}"
    assert "percentages with two decimals" in text
    pooled = read_run(cv)
    low, high = bootstrap_accuracy_ci(pooled.correct)
    assert f"pooled: accuracy {pct(pooled.pooled_accuracy)}, {ci(low, high)}." in text
    assert "Protocol: stratified 2-fold." in text and "Model `mlp`" in text
    for name in PLOTS:
        assert f"]({name})" in text


def test_incomplete_cv_is_reported_with_its_finished_folds(tmp_path, capsys):
    cv = write_cv(CVFolder(tmp_path / "partial"), model="mlp", classes=FOUR, n_folds=3, finished=2)
    text = report(capsys, cv.path)
    prov = find(md_tables(text)["Runs: data, protocol, device"], run="partial")
    assert prov["kind"] == "CV, 2 of 3 folds (incomplete)"
    assert prov["test images"] == str(sum(len(cv.fold(k).read_predictions().paths) for k in (1, 2)))
    assert "partial: only 2 of 3 folds have finished." in text


# --------------------------------------------------------------------------- btc 0.1 CV folders


def test_btc_0_1_cv_folder_is_migrated_to_folds_1_to_k(tmp_path, capsys):
    """btc 0.1 wrote fold-0 … fold-(K-1), folds.csv with folds 0…K-1 and cv.json with fold 0…:
    the report reads such a folder after migrating it in place, as folds 1…K."""
    old = tmp_path / "r34-improved-0.1"
    paths, targets = images(FOUR)
    zero_based = np.arange(len(paths)) % 2
    fold_metrics = []
    for k in (0, 1):
        test = zero_based == k
        run = write_run(RunFolder(old / f"fold-{k}"), model="resnet34_improved", classes=FOUR, seed=30 + k,
                        paths=list(np.array(paths)[test]), targets=targets[test])
        fold_metrics.append(run.read_metrics())
    pd.DataFrame({"path": paths, "fold": zero_based, "protocol": "stratified 2-fold"}).to_csv(
        old / "folds.csv", index=False)
    mean, std = aggregate(fold_metrics)
    (old / "cv.json").write_text(json.dumps({
        "n_folds": 2, "complete": True, "protocol": "stratified 2-fold", "mean": mean, "std": std,
        "folds": [{"fold": k, "metrics": m} for k, m in enumerate(fold_metrics)]}))

    text = report(capsys, old, "--paper", "003")
    t4 = md_tables(text)["Table 4. Five-fold cross-validation of the improved network (%)"]
    for k, m in ((1, fold_metrics[0]), (2, fold_metrics[1])):
        row = find(t4, **{"K-Fold": str(k)})
        assert row["Run"] == f"{old.name}/fold-{k}"
        assert row["Accuracy"].startswith(pct(m["accuracy"]) + ", 95 % CI [")
    assert find(t4, **{"K-Fold": "3"})["Accuracy"] == "no fold (paper 98.89)"
    # migrated in place: fold-1 and fold-2, folds.csv and cv.json numbered from 1
    assert sorted(p.name for p in old.iterdir() if p.is_dir()) == ["fold-1", "fold-2"]
    cv = CVFolder(old)
    assert sorted(set(cv.read_folds().folds.tolist())) == [1, 2]
    assert [f.fold for f in cv.read_summary().folds] == [1, 2]
    assert cv.fold(1).read_metrics() == fold_metrics[0]


# --------------------------------------------------------------------------- the report package's own rules


REPORT_DIR = REPO / "btc" / "report"
RUN_FILE_NAMES = ("metrics.json", "cv.json", "history.csv", "predictions.csv", "config.yaml", "folds.csv",
                  "split.csv", "checkpoint", ".pt", "fold-", "report.md", ".png")


def _code_strings(tree: ast.AST) -> list[str]:
    """Every string constant of a module except docstrings."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _imports(tree: ast.AST) -> list[str]:
    """Every module a file imports, at the top or inside functions."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("module", sorted(p.name for p in REPORT_DIR.glob("*.py")))
def test_report_reads_run_folders_only_through_runfolder(module):
    tree = ast.parse((REPORT_DIR / module).read_text())
    spelled = [s for s in _code_strings(tree) if any(name in s for name in RUN_FILE_NAMES)]
    assert not spelled, f"btc/report/{module} spells run-folder names: {spelled}"
    imports = _imports(tree)
    btc_imports = {name for name in imports if name == "btc" or name.startswith("btc.")}
    allowed = ("btc.report", "btc.runfolder", "btc.io", "btc.errors")
    assert all(name.startswith(allowed) or name == "btc" for name in btc_imports), btc_imports
    assert not {"rich", "sys"} & {name.split(".")[0] for name in imports}, "the report package never prints"


def test_report_modules_import_no_cycle():
    """Within btc/report the imports form no cycle (render ↔ tables did)."""
    graph = {}
    for path in REPORT_DIR.glob("*.py"):
        imports = _imports(ast.parse(path.read_text()))
        graph[path.stem] = {name.split(".")[2] for name in imports
                            if name.startswith("btc.report.")} - {path.stem}
    state: dict[str, int] = {}

    def visit(node: str, stack: tuple[str, ...]) -> None:
        assert state.get(node) != 1, f"import cycle: {' → '.join(stack + (node,))}"
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, stack + (node,))
        state[node] = 2

    for node in sorted(graph):
        visit(node, ())


# --------------------------------------------------------------------------- a folder the engine wrote


def test_report_of_a_run_btc_train_wrote(phantom_dir, tmp_path, capsys):
    """The contract end to end: what `btc train` writes is what the report reads."""
    out = tmp_path / "mlp"
    code, _, err = run_cli(["train", "--data", phantom_dir, "--model", "mlp", "--out", out, "--epochs", "1",
                            "--image-size", "64", "--batch-size", "16", "--no-pretrained", "--device", "cpu",
                            "-q"], capsys)
    assert code == 0, err
    assert missing_plots(RunFolder(out)) == []  # the train command drew them
    frame = pd.read_csv(io.StringIO(report(capsys, out, "--format", "csv")), keep_default_na=False)
    cells = frame[frame["table"] == "runs"].set_index("column")["btc"]
    m = metrics(out)
    assert float(cells["Accuracy"]) == pytest.approx(m["accuracy"] * 100, abs=1e-5)
    assert float(cells["Macro F1"]) == pytest.approx(m["macro"]["f1"] * 100, abs=1e-5)
    provenance = frame[frame["table"] == "provenance"].set_index("column")["btc"]
    assert provenance["test images"] == str(m["n"]) and provenance["model"] == "mlp"
