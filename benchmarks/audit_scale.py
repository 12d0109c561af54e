"""Near-duplicate candidate search at scale: multi-index hashing vs every pair (issue 17 point 2).

The audit (`btc/data/audit.py`) searches the *distinct* 64-bit phashes of a dataset for pairs within
`--threshold` bits (4 by default). This script times that search, `btc.data.hamming.near_pairs`,
and measures its peak memory (tracemalloc, which numpy reports to, in a second run) on:

- `real`: the phashes of a real dataset (default `../shared/data/kaggle-224`, 7019 images: btc's
  `phash64` of each image, or the `phash` column when the folder is a prepared dataset);
- `synthetic-N` for each `--sizes`: N hashes whose bits are drawn with the real hashes' per-bit
  frequencies, `--planted` of them replaced by near-duplicate clusters (2–6 members, each its
  cluster centre with 1–6 bits flipped, so pairs lie on both sides of the threshold). Uniform
  random hashes would have no neighbours and prove nothing.

The exhaustive search (`exhaustive_pairs`) runs where N ≤ `--exhaustive-max`, and its pairs must
equal the index's. Prints a table; writes JSON (the shared result header: device, versions,
command, date) to `benchmarks/results/audit_scale-cpu.json` or `--out FILE`.

    python benchmarks/audit_scale.py
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from btc.bench.provenance import result_header  # noqa: E402
from btc.data.hamming import BITS, bit_frequencies, exhaustive_pairs, near_pairs, plan  # noqa: E402
from btc.data.images import phash64, read_image  # noqa: E402
from btc.io import atomic_write_json  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def real_hashes(folder: Path) -> np.ndarray:
    """The phashes of a dataset: a prepared one's `phash` column, else btc's phash64 of each image."""
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        import pandas as pd

        hexes = pd.read_csv(manifest, dtype=str)["phash"].dropna().tolist()
    else:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        hexes = [phash64(read_image(p, grayscale=True)) for p in files]
    return np.array([int(h, 16) for h in hexes], dtype=np.uint64)


def _random_bits(n: int, freq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hashes = np.zeros(n, dtype=np.uint64)
    for bit, p in enumerate(freq):
        hashes |= (rng.random(n) < p).astype(np.uint64) << np.uint64(bit)
    return hashes


def _flip_random_bits(hashes: np.ndarray, flips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each hash with `flips[i]` distinct random bits flipped."""
    out = hashes.copy()
    for start in range(0, len(hashes), 50_000):
        stop = min(start + 50_000, len(hashes))
        bits = np.argsort(rng.random((stop - start, BITS)), axis=1).astype(np.uint64)
        chosen = np.arange(BITS) < flips[start:stop, None]
        masks = np.where(chosen, np.uint64(1) << bits, np.uint64(0))
        out[start:stop] ^= np.bitwise_or.reduce(masks, axis=1)
    return out


def synthetic_hashes(n: int, freq: np.ndarray, planted: float, seed: int = 0) -> np.ndarray:
    """`n` hashes with per-bit frequencies `freq`, a fraction `planted` in near-duplicate clusters.

    Clusters of 2–6 members; a member is its centre (a hash of the same distribution) with 1–6
    distinct bits flipped. Shuffled; not de-duplicated.
    """
    rng = np.random.default_rng(seed)
    members = int(n * planted)
    sizes = rng.integers(2, 7, size=max(1, members // 2))
    sizes = sizes[np.cumsum(sizes) <= members]
    centres = _random_bits(len(sizes), freq, rng)
    clustered = _flip_random_bits(np.repeat(centres, sizes), rng.integers(1, 7, size=int(sizes.sum())), rng)
    hashes = np.concatenate([_random_bits(n - len(clustered), freq, rng), clustered])
    return rng.permutation(hashes)


def measure(search: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    """(result, seconds, peak MiB): timed in one run, peak traced in a second."""
    start = time.perf_counter()
    result = search()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    search()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def run_case(name: str, hashes: np.ndarray, threshold: int, exhaustive_max: int) -> dict[str, Any]:
    distinct = np.unique(hashes)
    chosen = plan(distinct, threshold)
    pairs, seconds, peak = measure(lambda: near_pairs(distinct, threshold))
    row: dict[str, Any] = {
        "case": name, "hashes": int(len(hashes)), "distinct": int(len(distinct)), "threshold": threshold,
        "blocks": chosen.blocks, "radius": chosen.radius, "pairs": int(len(pairs)),
        "index_s": round(seconds, 4), "index_peak_mib": round(peak, 1),
    }
    if len(distinct) <= exhaustive_max:
        reference, seconds, peak = measure(lambda: exhaustive_pairs(distinct, threshold))
        if not np.array_equal(reference, pairs):
            raise AssertionError(f"{name}: index pairs differ from the exhaustive search")
        row.update(exhaustive_s=round(seconds, 4), exhaustive_peak_mib=round(peak, 1),
                   speedup=round(seconds / max(row["index_s"], 1e-9), 1), same_pairs=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'case':<18} {'distinct':>9} {'m/r':>5} {'pairs':>9} {'index s':>9} {'MiB':>7} "
             f"{'exhaustive s':>13} {'MiB':>7} {'speed-up':>9}"]
    for r in rows:
        ex = (f"{r['exhaustive_s']:>13.3f} {r['exhaustive_peak_mib']:>7.1f} {r['speedup']:>8.1f}×"
              if "exhaustive_s" in r else f"{'—':>13} {'—':>7} {'—':>9}")
        lines.append(f"{r['case']:<18} {r['distinct']:>9} {r['blocks']:>3}/{r['radius']:<1} {r['pairs']:>9} "
                     f"{r['index_s']:>9.3f} {r['index_peak_mib']:>7.1f} {ex}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=REPO.parent / "shared" / "data" / "kaggle-224",
                    help="real dataset: image folder, or prepared dataset (its manifest's phash)")
    ap.add_argument("--sizes", default="100000,1000000", help="synthetic hash counts, comma-separated")
    ap.add_argument("--planted", type=float, default=0.2, help="fraction of synthetic hashes in clusters")
    ap.add_argument("--threshold", type=int, default=4)
    ap.add_argument("--exhaustive-max", type=int, default=100_000,
                    help="run the exhaustive search too up to this many distinct hashes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "audit_scale-cpu.json")
    args = ap.parse_args(argv)

    real = real_hashes(args.images)
    freq = bit_frequencies(real)
    rows = [run_case("real", real, args.threshold, args.exhaustive_max)]
    for size in (int(s) for s in args.sizes.split(",") if s):
        hashes = synthetic_hashes(size, freq, args.planted, args.seed)
        rows.append(run_case(f"synthetic-{size}", hashes, args.threshold, args.exhaustive_max))
    result = {
        **result_header("audit_scale", torch.device("cpu")),
        "real_source": str(args.images), "planted": args.planted, "seed": args.seed,
        "bit_frequencies": [round(float(p), 4) for p in freq],
        "rows": rows,
    }
    atomic_write_json(args.out, result)
    print(table(rows))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
