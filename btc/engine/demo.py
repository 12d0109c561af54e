"""`btc demo`: phantom dataset → 3-fold patient-grouped CV of a small CNN → Markdown report.

Runs on two CPU cores in a few minutes with no download: the quickest way to see every stage of
btc (prepare, cv, metrics, report) work end to end.
"""

from __future__ import annotations

import time
from pathlib import Path

from btc.data.manifest import MANIFEST, load_dataset
from btc.data.phantom import prepare_phantom
from btc.engine.config import resolve_config
from btc.engine.cv import cross_validate
from btc.engine.runs import TaskData
from btc.progress import console

DEMO = {"model": "small_cnn", "folds": 3, "per_class": 48, "phantom_size": 96,
        "overrides": {"image_size": 64, "epochs": 8, "batch_size": 16, "pretrained": False,
                      "val_fraction": 0.0, "device": "cpu"}}


def run_demo(out: str | Path, quiet: bool = False) -> Path:
    """Run the demo into `out` (re-running resumes) and return the report's path."""
    from btc.report.summary import write_cv_report

    out = Path(out)
    began = time.perf_counter()
    data_dir = out / "phantom"
    if not (data_dir / MANIFEST).is_file():
        prepare_phantom(data_dir, per_class=DEMO["per_class"], size=DEMO["phantom_size"], seed=0, quiet=quiet)
    data = TaskData.from_dataset(load_dataset(data_dir), "multiclass")
    config = resolve_config(DEMO["model"], task="multiclass", overrides=DEMO["overrides"])
    cv_dir = out / f"{DEMO['model']}-cv{DEMO['folds']}"
    result = cross_validate(data, config, cv_dir, k=DEMO["folds"], quiet=quiet)
    report = write_cv_report(cv_dir, result, title=f"btc demo: {DEMO['model']} on the phantom dataset")
    if not quiet:
        console.print(f"demo finished in {time.perf_counter() - began:.0f} s: mean accuracy "
                      f"{result['mean']['accuracy']:.3f} ± {result['std']['accuracy']:.3f} over {DEMO['folds']} folds")
    return report
