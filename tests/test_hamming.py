"""The near-duplicate pair search (btc/data/hamming.py): multi-index hashing returns exactly the
pairs of the exhaustive search, whatever the threshold, block count, chunk size or data, and the
exhaustive search itself agrees with a pure-Python count of differing bits."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data

from btc.data.audit import candidate_pairs
from btc.data.hamming import (
    BITS,
    _expand,
    bit_frequencies,
    block_layout,
    exhaustive_pairs,
    near_pairs,
    plan,
)

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("audit_scale", REPO / "benchmarks" / "audit_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


audit_scale = _script()


def python_pairs(hashes: np.ndarray, threshold: int) -> set[tuple[int, int, int]]:
    values = [int(h) for h in hashes]
    return {(i, j, (values[i] ^ values[j]).bit_count())
            for i, j in itertools.combinations(range(len(values)), 2)
            if (values[i] ^ values[j]).bit_count() <= threshold}


def as_set(rows: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in r) for r in rows}


@pytest.fixture(scope="module")
def clustered() -> np.ndarray:
    """3000 hashes with the kaggle-like bias of a fixed frequency profile, 30 % in planted clusters."""
    freq = np.linspace(0.02, 0.98, BITS)
    return audit_scale.synthetic_hashes(3000, freq, planted=0.3, seed=1)


@pytest.fixture(scope="module")
def kaggle_hashes() -> np.ndarray:
    """btc's phash64 of the 7019 images of ../shared/data/kaggle-224 (about 10 s), distinct."""
    return np.unique(audit_scale.real_hashes(shared_data("kaggle-224")))


def test_exhaustive_matches_python_bit_count():
    hashes = audit_scale.synthetic_hashes(200, np.full(BITS, 0.5), planted=0.5, seed=3)
    for threshold in (0, 4, 6):
        rows = exhaustive_pairs(hashes, threshold, chunk=1000)  # several chunks of 5 rows
        assert as_set(rows) == python_pairs(hashes, threshold)
        assert len(rows) == len(as_set(rows))  # each pair once


@pytest.mark.parametrize("threshold", range(7))
def test_index_equals_exhaustive_on_planted_clusters(clustered, threshold):
    reference = exhaustive_pairs(clustered, threshold)
    if threshold >= 2:
        assert len(reference) > 50  # the planted clusters give pairs to find
    assert np.array_equal(near_pairs(clustered, threshold), reference)
    for blocks in range(1, threshold + 2):  # every block count, radius ⌊t/m⌋ from t down to 0
        if threshold // blocks <= 2:
            found = near_pairs(clustered, threshold, blocks=blocks, chunk=500)
            assert np.array_equal(found, reference), f"blocks={blocks}"


@pytest.mark.parametrize("threshold", range(7))
def test_index_equals_exhaustive_on_kaggle_224(kaggle_hashes, threshold):
    reference = exhaustive_pairs(kaggle_hashes, threshold)
    assert np.array_equal(near_pairs(kaggle_hashes, threshold), reference)
    assert np.array_equal(near_pairs(kaggle_hashes, threshold, blocks=threshold + 1, chunk=1000), reference)


def test_kaggle_224_near_pairs_are_found_by_the_index(kaggle_hashes):
    chosen = plan(kaggle_hashes, 4)
    assert chosen.blocks > 0  # 7k hashes: the index, not every pair
    assert len(near_pairs(kaggle_hashes, 4)) > 1000  # Kaggle's merged sources do repeat images


def test_edge_cases():
    empty = np.array([], dtype=np.uint64)
    assert near_pairs(empty, 4).shape == (0, 3)
    assert exhaustive_pairs(empty, 4).shape == (0, 3)
    assert near_pairs(np.array([7], dtype=np.uint64), 4).shape == (0, 3)
    assert near_pairs(np.array([1, 3], dtype=np.uint64), -1).shape == (0, 3)
    with pytest.raises(ValueError, match="one-dimensional"):
        near_pairs(np.zeros((2, 2), dtype=np.uint64), 4)
    with pytest.raises(ValueError, match="blocks"):
        near_pairs(np.zeros(4, dtype=np.uint64), 4, blocks=65)


def test_all_identical_hashes_form_one_big_bucket_verified_in_chunks():
    """1500 copies of the all-zero hash (black images): every pair, at distance 0, chunk by chunk."""
    hashes = np.zeros(1500, dtype=np.uint64)
    rows = near_pairs(hashes, 4, blocks=5, chunk=10_000)
    i, j = np.triu_indices(1500, k=1)
    assert np.array_equal(rows, np.stack([i, j, np.zeros_like(i)], axis=1))


def test_threshold_of_64_or_more_pairs_everything():
    hashes = np.array([0, 2**64 - 1, 12345], dtype=np.uint64)
    assert as_set(near_pairs(hashes, 64)) == python_pairs(hashes, 64) and len(near_pairs(hashes, 64)) == 3


def test_expand_bounds_each_piece_by_chunk_or_one_row():
    p, lo = np.array([0, 1, 2, 3]), np.array([10, 20, 30, 40])
    hi = lo + np.array([3, 50, 2, 2])
    pieces = list(_expand(p, lo, hi, chunk=5))
    assert [len(left) for left, _ in pieces] == [3, 50, 4]  # the 50-partner row alone
    pairs = {(int(a), int(b)) for left, right in pieces for a, b in zip(left, right, strict=True)}
    assert pairs == {(int(a), b) for a, s, e in zip(p, lo, hi, strict=True) for b in range(s, e)}


def test_block_layout_partitions_the_bits_with_balanced_entropy():
    freq = np.r_[np.full(16, 0.999), np.full(48, 0.5)]  # 16 nearly constant bits
    layout = block_layout(freq, 5)
    assert sorted(b for block in layout for b in block) == list(range(BITS))
    assert sorted(len(block) for block in layout) == [12, 13, 13, 13, 13]
    assert all(sum(b >= 16 for b in block) >= 9 for block in layout)  # informative bits spread out
    assert np.allclose(bit_frequencies(np.array([1, 3], dtype=np.uint64))[:3], [1.0, 0.5, 0.0])


def test_plan_chooses_exhaustive_for_few_hashes_and_the_index_for_many(clustered):
    assert plan(clustered[:20], 4).blocks == 0
    big = plan(clustered, 4)
    assert big.blocks >= 1 and big.radius == 4 // big.blocks


def test_audit_candidates_are_exactly_the_pairs_within_the_threshold():
    """The audit's near-duplicate candidates are exactly the image pairs within 4 bits."""
    import pandas as pd

    hashes = audit_scale.synthetic_hashes(2000, np.full(BITS, 0.5), planted=0.3, seed=5)
    assert plan(np.unique(hashes), 4).blocks > 0  # the audit takes the index here
    df = pd.DataFrame({"path": [f"i{k:04d}.png" for k in range(len(hashes))],
                       "sha256": [f"{k:064x}" for k in range(len(hashes))],
                       "phash": [f"{int(h):016x}" for h in hashes]})
    pairs, distances = candidate_pairs(df, 4)
    exhaustive = exhaustive_pairs(hashes, 4)
    assert len(exhaustive) > 100
    assert {tuple(p) for p in pairs.tolist()} == {(min(a, b), max(a, b)) for a, b, _ in exhaustive.tolist()}
    by_pair = {(min(a, b), max(a, b)): d for a, b, d in exhaustive.tolist()}
    assert [by_pair[tuple(p)] for p in pairs.tolist()] == distances.tolist()


def test_benchmark_script_writes_its_contract(tmp_path):
    sample = shared_data("kaggle-original-sample")
    out = tmp_path / "audit_scale.json"
    result = audit_scale.main(["--images", str(sample), "--sizes", "2000", "--exhaustive-max", "5000",
                               "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert {"benchmark", "device", "versions", "command", "date", "rows"} <= set(result)
    assert result["benchmark"] == "audit_scale" and len(result["bit_frequencies"]) == BITS
    real, synthetic = result["rows"]
    assert real["hashes"] == 188 and synthetic["hashes"] == 2000
    for row in (real, synthetic):
        assert row["same_pairs"] and row["index_s"] > 0 and row["exhaustive_s"] > 0 and row["index_peak_mib"] > 0
    assert synthetic["pairs"] > 0
