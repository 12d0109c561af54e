"""The `btc` command line: a thin Typer layer over the core engine (DESIGN.md, Command line).

Each subcommand only parses its arguments and calls one function of the engine; a `BtcError`
raised there is printed as one line (`error: …`) with a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

try:  # typer ≥ 0.26 vendors its own click; older typer uses click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_errors

from btc import __version__
from btc.errors import BtcError, Interrupted
from btc.runfolder import BEST, HISTORY

out = Console()
err = Console(stderr=True)


def _flag_without_type(display_type_rich):
    """Typer ≥ 0.29 shows a flag's type in --help (`--quiet -q <bool>`); a flag takes no value,
    so its type column is left empty (options that take a value keep `<int>`, `<path>`, …)."""

    def display(self, ctx):
        return None if self.is_flag else display_type_rich(self, ctx)

    return display


def _usage_name(argument) -> str:
    """An argument in a usage line as click writes it: `SRC OUT`, `[MODEL]...` (typer 0.29
    wraps required ones in braces, `{SRC} {OUT}`)."""
    name = argument.display_name_raw if argument.required else f"[{argument.display_name_raw}]"
    return name + ("..." if argument.nargs != 1 else "")


typer.core.TyperOption.display_type_rich = _flag_without_type(typer.core.TyperOption.display_type_rich)
if hasattr(typer.core.TyperArgument, "_usage_display_name"):
    typer.core.TyperArgument._usage_display_name = _usage_name

app = typer.Typer(
    name="btc",
    help=(
        "Brain-tumour MRI classification research toolkit: prepare the public datasets, train and "
        "cross-validate the papers' architectures, benchmark them and write the papers' tables "
        "from real runs.\n\n"
        "Start with:  btc demo   (synthetic data → 3-fold CV → report, on CPU in minutes)"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
prepare_app = typer.Typer(
    help="Turn a raw dataset into a prepared dataset (images/, manifest.csv, dataset.yaml).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(prepare_app, name="prepare")


def _interruptible(register):
    """Wrap `app.command(...)` so that Ctrl-C inside a command becomes a one-line `Interrupted`
    error (exit 130) saying how to continue, instead of click's bare 'Aborted!'."""

    def command(*args, **kwargs):
        def decorator(fn):
            @functools.wraps(fn)
            def wrapper(*a, **k):
                try:
                    return fn(*a, **k)
                except KeyboardInterrupt:
                    raise Interrupted() from None

            return register(*args, **kwargs)(wrapper)

        return decorator

    return command


app.command = _interruptible(app.command)
prepare_app.command = _interruptible(prepare_app.command)


def _version(value: bool) -> None:
    if value:
        out.print(f"btc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """btc command line."""


# --------------------------------------------------------------------------- prepare / audit


@prepare_app.command("phantom")
def prepare_phantom(
    out_dir: Path = typer.Argument(..., metavar="OUT", help="Folder to write the prepared dataset to."),
    per_class: int = typer.Option(40, "--per-class", min=1, help="Images per class."),
    size: int = typer.Option(128, "--size", min=32, help="Image side in pixels."),
    per_patient: int = typer.Option(4, "--per-patient", min=1, help="Slices per synthetic patient."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed → byte-identical dataset)."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", min=0.0, max=0.9, help="Patients put in the test split."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write a synthetic MRI-like dataset: the embedded default for the demo and the tests.

    Example: `btc prepare phantom /tmp/phantom --per-class 40 --size 128 --seed 0`
    """
    from btc.commands.prepare import run

    run("phantom", out=out_dir, per_class=per_class, size=size, per_patient=per_patient, seed=seed,
        test_fraction=test_fraction, quiet=quiet)


@prepare_app.command("kaggle")
def prepare_kaggle(
    src: Path = typer.Argument(..., metavar="SRC", help="The Kaggle 'Brain Tumor MRI Dataset' folder (Training/, Testing/)."),
    out_dir: Path = typer.Argument(..., metavar="OUT", help="Folder to write the prepared dataset to."),
    size: int = typer.Option(256, "--size", min=8, help="Side of the written square images."),
    workers: int | None = typer.Option(None, "--workers", "-j", min=1, help="Processes (default: all cores)."),
    crop: str = typer.Option("extreme", "--crop", help="extreme (paper 004's extreme-point crop) or none (whole image, paper 002)."),
    pad: int = typer.Option(0, "--pad", min=0, help="Pixels kept around the extreme points."),
    dedup: bool = typer.Option(False, "--dedup", help="Also write a leak-free split (duplicate groups kept on one side)."),
    image_format: str = typer.Option("png", "--format", help="png (lossless) or jpg."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Crop (paper 004's extreme points, or none), resize, manifest and audit of the Kaggle dataset.

    Example: `btc prepare kaggle ~/data/brain-tumor-mri-dataset data/kaggle --size 256 --dedup`
    """
    from btc.commands.prepare import run

    run("kaggle", src=src, out=out_dir, size=size, workers=workers, crop=crop, pad=pad, dedup=dedup,
        image_format=image_format, quiet=quiet)


@prepare_app.command("figshare")
def prepare_figshare(
    src: Path = typer.Argument(..., metavar="SRC", help="Folder of Figshare `ID.mat` files (and optionally cvind.mat)."),
    out_dir: Path = typer.Argument(..., metavar="OUT", help="Folder to write the prepared dataset to."),
    size: int = typer.Option(512, "--size", min=8, help="Side of the written images."),
    workers: int | None = typer.Option(None, "--workers", "-j", min=1, help="Processes (default: all cores)."),
    bit16: bool = typer.Option(False, "--16bit", help="Also write lossless 16-bit PNGs of the raw int16 pixels."),
    no_tumor: Path | None = typer.Option(None, "--no-tumor", help="Folder of no-tumour images to merge (paper 003)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """MATLAB v7.3 `cjdata` → PNG + tumour mask, patient ids and official folds (cvind.mat).

    Example: `btc prepare figshare ~/data/figshare data/figshare --no-tumor ~/data/kaggle/Training/notumor`
    """
    from btc.commands.prepare import run

    run("figshare", src=src, out=out_dir, size=size, workers=workers, bit16=bit16, no_tumor=no_tumor, quiet=quiet)


@prepare_app.command("folder")
def prepare_folder(
    src: Path = typer.Argument(..., metavar="SRC", help="A class-per-folder image tree."),
    out_dir: Path = typer.Argument(..., metavar="OUT", help="Folder to write the prepared dataset to."),
    labels: Path | None = typer.Option(None, "--labels", help="labels.yaml: folder → class map and tasks."),
    size: int | None = typer.Option(None, "--size", min=8, help="Resize to this square side: a non-square image is stretched, its aspect ratio not kept (default: keep the size)."),
    workers: int | None = typer.Option(None, "--workers", "-j", min=1, help="Processes (default: all cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Any class-per-folder dataset, with a label map and task definitions.

    Example: `btc prepare folder ~/data/hospital data/hospital --labels labels.yaml`
    """
    from btc.commands.prepare import run

    run("folder", src=src, out=out_dir, labels=labels, size=size, workers=workers, quiet=quiet)


@app.command()
def audit(
    data: Path = typer.Argument(..., metavar="DATA", help="A prepared dataset folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    threshold: int | None = typer.Option(None, "--threshold", min=0, max=64, help="Hamming distance of the hash candidates."),
    min_similarity: float | None = typer.Option(None, "--min-similarity", min=-1.0, max=1.0,
                                                help="Pixel similarity that confirms a candidate (default 0.75)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Exact and near duplicates (confirmed by pixels), label conflicts, split / class / patient leakage.

    Example: `btc audit data/kaggle --json > audit.json`
    """
    from btc.commands.audit import run

    run(data, as_json=as_json, threshold=threshold, min_similarity=min_similarity, quiet=quiet)


# --------------------------------------------------------------------------- models


@app.command()
def models(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list on stdout instead of a table."),
    names: str | None = typer.Option(None, "--models", help="Comma-separated subset (default: all)."),
) -> None:
    """The model registry: name, paper, parameters, sizes, MACs and FLOPs (2×MACs) at the paper's input size.

    Example: `btc models --json`
    """
    from btc.commands.models import run

    run(names=names.split(",") if names else None, as_json=as_json)


# --------------------------------------------------------------------------- train / cv

_TRAIN_HELP_EPILOG = "Any recipe field can be overridden; the resolved config is saved as config.yaml in the run folder."


_TENSORBOARD_HELP = ("Also log every epoch to TensorBoard event files in the run folder's tensorboard/ "
                     f"(pip install -e '.[tensorboard]'); {HISTORY} stays the record.")


def _tensorboard(on: bool) -> None:
    """--tensorboard: the engine mirrors each history row into event files (btc/engine/tensorboard.py)."""
    if on:
        from btc.engine.tensorboard import enable

        enable()


def _overrides(set_: list[str], **fields: object) -> dict[str, object]:
    """Explicit options, then `--set FIELD=VALUE` items (typed like the config field)."""
    from btc.engine.config import parse_set_options

    return {**parse_set_options(set_), **{k: v for k, v in fields.items() if v is not None}}


@app.command(epilog=_TRAIN_HELP_EPILOG)
def train(
    data: Path = typer.Option(..., "--data", help="Prepared dataset folder."),
    model: str = typer.Option(..., "--model", help="Registered model name (see `btc models`)."),
    recipe: str | None = typer.Option(None, "--recipe", help="Recipe name or YAML file (default: the model's paper)."),
    task: str = typer.Option("multiclass", "--task", help="Label mapping from dataset.yaml (multiclass, presence, source, …)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1),
    image_size: int | None = typer.Option(None, "--image-size", min=16),
    lr: float | None = typer.Option(None, "--lr"),
    optimizer: str | None = typer.Option(None, "--optimizer", help="sgd, adam or nadam."),
    test_fraction: float | None = typer.Option(None, "--test-fraction", help="Hold-out fraction when the manifest has no split."),
    pretrained: bool | None = typer.Option(None, "--pretrained/--no-pretrained",
                                           help="Start from ImageNet weights (the recipe's default); --no-pretrained is recorded as a deviation."),
    weights: Path | None = typer.Option(None, "--weights", help="Initial weights: a local state-dict file."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    seed: int = typer.Option(0, "--seed"),
    out_dir: Path | None = typer.Option(None, "--out", help="Run folder (default: runs/MODEL-TASK-TIME)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Replace a previous btc run in --out (only btc's files are removed)."),
    protocol: str | None = typer.Option(None, "--protocol", help="paper (the paper's image-level splits; default) or leak-free (patients and duplicate groups kept on one side)."),
    offline: bool = typer.Option(False, "--offline", help="Never download (also BTC_OFFLINE=1): ImageNet weights must be cached."),
    set_: list[str] = typer.Option([], "--set", help="Override any recipe field: FIELD=VALUE (repeatable)."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help=_TENSORBOARD_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train one model on one split and evaluate it on the test split.

    Example: `btc train --data data/kaggle --model dsconv_cbam --epochs 35 --out runs/dsconv`
    """
    from btc.commands.train import run

    _tensorboard(tensorboard)
    run(data=data, model=model, recipe=recipe, task=task, device=device, seed=seed, out_dir=out_dir,
        resume=resume, force=force, offline=offline, weights=weights, quiet=quiet,
        overrides=_overrides(set_, epochs=epochs, batch_size=batch_size, image_size=image_size, lr=lr,
                             optimizer=optimizer, test_fraction=test_fraction, pretrained=pretrained,
                             protocol=protocol))


@app.command(epilog=_TRAIN_HELP_EPILOG)
def cv(
    data: Path = typer.Option(..., "--data", help="Prepared dataset folder."),
    model: str = typer.Option(..., "--model", help="Registered model name (see `btc models`)."),
    folds: int | None = typer.Option(None, "--folds", "-k", min=2,
                                     help="Number of folds (default: the CV folder's, else 10)."),
    force: bool = typer.Option(False, "--force", help="Replace a previous btc CV in --out (only btc's files are removed)."),
    offline: bool = typer.Option(False, "--offline", help="Never download (also BTC_OFFLINE=1): ImageNet weights must be cached."),
    fold: int | None = typer.Option(None, "--fold", min=1, help="Run only this fold (1…K)."),
    parallel_folds: int = typer.Option(1, "--parallel-folds", min=1,
                                       help="Run N folds at a time in separate processes (share one GPU)."),
    protocol: str | None = typer.Option(None, "--protocol", help="paper (the paper's image-level splits; default) or leak-free (patients and duplicate groups kept on one side)."),
    recipe: str | None = typer.Option(None, "--recipe", help="Recipe name or YAML file (default: the model's paper)."),
    task: str = typer.Option("multiclass", "--task", help="Label mapping from dataset.yaml."),
    epochs: int | None = typer.Option(None, "--epochs", min=1),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1),
    image_size: int | None = typer.Option(None, "--image-size", min=16),
    lr: float | None = typer.Option(None, "--lr"),
    optimizer: str | None = typer.Option(None, "--optimizer", help="sgd, adam or nadam."),
    pretrained: bool | None = typer.Option(None, "--pretrained/--no-pretrained",
                                           help="Start from ImageNet weights (the recipe's default); --no-pretrained is recorded as a deviation."),
    weights: Path | None = typer.Option(None, "--weights", help="Initial weights: a local state-dict file."),
    device: str = typer.Option("auto", "--device"),
    seed: int = typer.Option(0, "--seed"),
    out_dir: Path | None = typer.Option(None, "--out", help="CV folder (default: runs/MODEL-TASK-cvK-TIME)."),
    set_: list[str] = typer.Option([], "--set", help="Override any recipe field: FIELD=VALUE (repeatable)."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help=_TENSORBOARD_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Stratified (patient-grouped) K-fold cross-validation; resumes unfinished folds.

    Example: `btc cv --data data/kaggle --model resnesat --folds 10 --out runs/resnesat-cv`

    Several GPUs: `torchrun --nproc_per_node 4 -m btc cv ...` (each fold data-parallel), or
    `--fold I` on several machines. One GPU, small batches: `--parallel-folds 3`.
    """
    from btc.commands.cv import run

    _tensorboard(tensorboard)
    run(data=data, model=model, folds=folds, fold=fold, recipe=recipe, task=task,
        device=device, seed=seed, out_dir=out_dir, force=force, offline=offline, weights=weights, quiet=quiet, parallel_folds=parallel_folds,
        overrides=_overrides(set_, epochs=epochs, batch_size=batch_size, image_size=image_size, lr=lr,
                             optimizer=optimizer, pretrained=pretrained, protocol=protocol))


@app.command("two-stage")
def two_stage(
    stage1: Path = typer.Argument(..., metavar="STAGE1", help="Stage-1 run or CV folder (e.g. --task presence)."),
    stage2: Path = typer.Argument(..., metavar="STAGE2", help="Stage-2 run or CV folder (e.g. --task source or tumor_type)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for the chained evaluation."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Chain a presence model and a second-stage model on the same test images (paper 001, Fig. 2).

    Stage 1 classifies every test image; the images it calls tumour go to stage 2. Metrics are
    of the chained prediction (e.g. no_tumor / glioma / meningioma / pituitary). Train both
    stages with the same --seed (and --folds): their test images then agree.

    Example (after `btc cv … --task presence --out runs/p` and `btc cv … --task tumor_type --out runs/t`):
    `btc two-stage runs/p runs/t --out runs/p+t`
    """
    from btc.commands.two_stage import run

    run(stage1, stage2, out_dir=out_dir, device=device, batch_size=batch_size, quiet=quiet)


# --------------------------------------------------------------------------- benchmark / report


@app.command()
def benchmark(
    models_: str = typer.Option("all", "--models", help="Comma-separated model names, or all."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    image_size: int | None = typer.Option(None, "--image-size", min=16, help="Default: each model's paper size."),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="Mixed precision on CUDA."),
    channels_last: str = typer.Option("auto", "--channels-last", help="auto, on or off."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    iters: int = typer.Option(10, "--iters", min=1, help="Timed iterations (median reported)."),
    warmup: int = typer.Option(3, "--warmup", min=0),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of the table."),
    out_file: Path | None = typer.Option(None, "--out", help="Write the results as JSON to this file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Parameters, size, FLOPs, training/inference images/s, latency and memory per model.

    Example: `btc benchmark --device cpu --models resnet18,dsconv_cbam --image-size 64 --out out.json`
    """
    from btc.commands.benchmark import run

    run(models_, device=device, batch_size=batch_size, image_size=image_size, amp=amp,
        channels_last=channels_last, compile=compile_, iters=iters, warmup=warmup,
        as_json=as_json, out_file=out_file, quiet=quiet)


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., metavar="RUN", help="Run or CV folders."),
    paper: str | None = typer.Option(None, "--paper", help="001, 002, 003 or 004: that paper's tables."),
    fmt: str = typer.Option("md", "--format", help="md, tex, csv or html."),
    out_file: Path | None = typer.Option(None, "--out", help="Write here instead of printing."),
) -> None:
    """The papers' tables from btc's own runs, next to the published numbers.

    Example: `btc report runs/dsconv runs/mobilenet runs/mlp --paper 002 --format md`
    """
    from btc.commands.report import run

    run(runs, paper=paper, fmt=fmt, out=out_file)


# --------------------------------------------------------------------------- predict / export


@app.command()
def predict(
    checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help=f"{BEST} of a run."),
    inputs: list[Path] = typer.Argument(..., metavar="IMAGE|DIR", help="Images or folders of images."),
    csv: Path | None = typer.Option(None, "--csv", help="Write predictions as CSV."),
    cam: Path | None = typer.Option(None, "--cam", help="Write Grad-CAM overlays to this folder."),
    device: str = typer.Option("auto", "--device"),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
) -> None:
    """Class probabilities for new images, with the checkpoint's own preprocessing.

    Example: `btc predict runs/dsconv/checkpoint-best.pt scans/ --cam cams/`
    """
    from btc.commands.predict import run

    run(checkpoint, inputs, csv=csv, cam=cam, device=device, batch_size=batch_size)


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help=f"{BEST} of a run."),
    onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write."),
    opset: int = typer.Option(17, "--opset"),
) -> None:
    """Export a trained model to ONNX (dynamic batch), checked with ONNX Runtime when installed.

    Example: `btc export runs/dsconv/checkpoint-best.pt --onnx dsconv.onnx`
    """
    from btc.commands.export import run

    run(checkpoint, onnx, opset=opset)


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the dataset, runs and report."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Phantom dataset → 3-fold CV of a small model → Markdown report, on CPU in minutes.

    Example: `btc demo --out /tmp/btc-demo`
    """
    from btc.commands.demo import run

    run(out_dir, quiet=quiet)


# --------------------------------------------------------------------------- weights / fetch


def _sub_app(name: str, help_text: str) -> typer.Typer:
    """A command group (`btc NAME SUBCOMMAND`) whose commands end Ctrl-C in one line too."""
    group = typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode="markdown")
    app.add_typer(group, name=name)
    group.command = _interruptible(group.command)
    return group


weights_app = _sub_app("weights", "ImageNet weights in the torchvision / timm caches: list, fetch ahead of time, import.")


@weights_app.command("list")
def weights_list(
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Each model's ImageNet weights (or "from scratch") and whether they are cached.

    Example: `btc weights list`
    """
    from btc.commands.weights import run_list

    run_list(as_json=as_json)


@weights_app.command("fetch")
def weights_fetch(
    models: list[str] = typer.Argument(None, metavar="MODEL", help="Models whose weights to download."),
    every: bool = typer.Option(False, "--all", help="Every model that has ImageNet weights."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Download weights into their caches now (on a login node), checked against the published hash.

    Example: `btc weights fetch resnet18_transfer mobilenet_v2 resnesat`
    """
    from btc.commands.weights import run_fetch

    run_fetch(models or [], every=every, quiet=quiet, as_json=as_json)


@weights_app.command("import")
def weights_import(
    model: str = typer.Argument(..., metavar="MODEL", help="The model whose weights FILE holds."),
    file: Path = typer.Argument(..., metavar="FILE", help="A state dict (.pth / .safetensors)."),
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Copy a local weights file into the right cache under the right name, after checking it.

    Example: `btc weights import resnet18_transfer ~/Downloads/resnet18-f37072fd.pth`
    """
    from btc.commands.weights import run_import

    run_import(model, file, as_json=as_json)


fetch_app = _sub_app("fetch", "Download a public dataset, checked, ready for `btc prepare`.")


@fetch_app.command("figshare")
def fetch_figshare(
    folder: Path = typer.Argument(..., metavar="DIR", help="Folder to download and unpack into."),
    offline: bool = typer.Option(False, "--offline", help="Refuse the network (one line)."),
    keep_archives: bool = typer.Option(False, "--keep-archives", help="Keep the zips after unpacking."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """Cheng's Figshare dataset (doi 10.6084/m9.figshare.1512427), md5-checked, resumable, unpacked.

    Example: `btc fetch figshare ~/data/figshare && btc prepare figshare ~/data/figshare data/figshare`
    """
    from btc.commands.fetch import run_figshare

    run_figshare(folder, offline=offline, keep_archives=keep_archives, quiet=quiet, as_json=as_json)


@fetch_app.command("kaggle")
def fetch_kaggle(
    folder: Path = typer.Argument(..., metavar="DIR", help="Folder to download and unpack into."),
    offline: bool = typer.Option(False, "--offline", help="Refuse the network (one line)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """The Kaggle "Brain Tumor MRI Dataset" through the kaggle package (`pip install 'btc[kaggle]'`).

    Example: `btc fetch kaggle ~/data/kaggle && btc prepare kaggle ~/data/kaggle data/kaggle`
    """
    from btc.commands.fetch import run_kaggle

    run_kaggle(folder, offline=offline, quiet=quiet, as_json=as_json)


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (a scheduler's kill) ends a command like Ctrl-C


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: user errors become one line and a non-zero exit code."""
    import signal

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        code = app(args=argv, prog_name="btc", standalone_mode=False)
    except click_errors.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # a group called without a subcommand: its help
            e.show()
            sys.exit(2)
        where = e.ctx.command_path if e.ctx is not None else "btc"  # a bad option or argument: one line
        err.print(f"[red]error:[/red] {escape(e.format_message())} (see `{escape(where)} --help`)",
                  highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        error = Interrupted()
        err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except BtcError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)
