"""Sticky assignment: the same in every process, honouring weights, independent across salts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from labsupport import assignment

SPLIT = {"control": 0.5, "treatment": 0.5}


def _assign_in_fresh_process(ids: list, hash_seed: str) -> list:
    code = ("import json, sys\nfrom labsupport import assignment\n"
            "ids = json.loads(sys.stdin.read())\n"
            "print(json.dumps(assignment.assign(ids, 'exp-1', [0.3, 0.7]).tolist()))")
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(ids), env=env,
                          capture_output=True, text=True, check=True, timeout=120)
    return json.loads(done.stdout)


def test_two_processes_with_different_hash_seeds_agree():
    ids = [f"user-{i}" for i in range(300)] + list(range(300))
    first = _assign_in_fresh_process(ids, "1")
    second = _assign_in_fresh_process(ids, "2")
    assert first == second
    assert first == assignment.assign(ids, "exp-1", [0.3, 0.7]).tolist()
    assert set(first) == {0, 1}


def test_fnv1a_matches_the_published_test_vectors():
    # from the FNV reference page (Fowler, Noll, Vo): 64-bit FNV-1a of "", "a" and "foobar"
    assert assignment.fnv1a(b"") == 0xCBF29CE484222325
    assert assignment.fnv1a(b"a") == 0xAF63DC4C8601EC8C
    assert assignment.fnv1a(b"foobar") == 0x85944171F73967E8


def test_known_value_pins_the_hash_function():
    # fmix64(fnv1a(b"exp\x1f42")): changing the hash silently re-splits every user
    assert int(assignment.stable_hash([42], "exp")[0]) == 1990889329280189175
    assert assignment.fmix64(0) == 0 and assignment.fmix64(1) == 12994781566227106604


def test_the_finaliser_flips_each_output_bit_half_the_time():
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 2 ** 63, size=300).tolist()
    flips = np.zeros((64, 64))
    for value in inputs:
        mixed = assignment.fmix64(value)
        for bit in range(64):
            changed = mixed ^ assignment.fmix64(value ^ (1 << bit))
            flips[bit] += [(changed >> out) & 1 for out in range(64)]
    share = flips / len(inputs)  # each of 64 x 64 (input bit, output bit) pairs near 1/2
    assert np.all(np.abs(share - 0.5) < 0.15), np.abs(share - 0.5).max()


def test_neighbouring_ids_move_independently_across_salts():
    # Plain FNV-1a fails this: ids differing in their last digit kept one of 4 bucket offsets
    # over 200 salts, so every experiment split such pairs alike. The finaliser is what fixes it.
    offsets = {int((pair[1] - pair[0]) % assignment.BUCKETS)
               for pair in (assignment.buckets([12340, 12341], f"salt-{k}") for k in range(200))}
    assert len(offsets) > 180


def test_repeated_ids_are_sticky_and_integer_and_text_ids_agree():
    ids = np.array([5, 9, 5, 5, 9, 12])
    variants = assignment.assign(ids, "sticky", SPLIT)
    assert variants[0] == variants[2] == variants[3]
    assert variants[1] == variants[4]
    as_text = assignment.assign([str(i) for i in ids], "sticky", SPLIT)
    assert as_text.tolist() == variants.tolist()


def test_mapping_gives_names_and_sequence_gives_indices():
    ids = np.arange(1000)
    names = assignment.assign(ids, "s", SPLIT)
    indices = assignment.assign(ids, "s", [0.5, 0.5])
    assert set(names.tolist()) == {"control", "treatment"}
    assert (names == "treatment").tolist() == (indices == 1).tolist()


@pytest.mark.parametrize("weights", [[0.05, 0.95], [0.25, 0.25, 0.5], [0.9, 0.1]])
def test_shares_match_weights_within_sampling_error(weights):
    n = 40_000
    variants = assignment.assign(np.arange(n), "shares", weights)
    shares = np.bincount(variants, minlength=len(weights)) / n
    standard_errors = np.sqrt(np.asarray(weights) * (1 - np.asarray(weights)) / n)
    assert np.all(np.abs(shares - weights) < 5 * standard_errors), shares


def test_a_zero_weight_gets_nobody():
    variants = assignment.assign(np.arange(5000), "z", {"a": 0.0, "b": 1.0})
    assert set(variants.tolist()) == {"b"}


def test_hash_parity_is_not_how_users_are_split():
    ids = np.arange(20_000)
    variants = assignment.assign(ids, "parity", [0.5, 0.5])
    even_share = variants[ids % 2 == 0].mean()
    assert abs(even_share - 0.5) < 0.03, "even ids must not all land in one group"
    assert [hash(int(i)) % 2 for i in ids[:6]] == [0, 1, 0, 1, 0, 1]


def test_different_salts_split_independently():
    ids = np.arange(20_000)
    first = assignment.assign(ids, "experiment-a", [0.5, 0.5])
    second = assignment.assign(ids, "experiment-b", [0.5, 0.5])
    table = np.array([[np.sum((first == i) & (second == j)) for j in (0, 1)] for i in (0, 1)])
    assert stats.chi2_contingency(table).pvalue > 1e-3
    same = assignment.assign(ids, "experiment-a", [0.5, 0.5])
    assert (same == first).all()


def test_uniformity_p_values_look_uniform_across_salts():
    ids = np.arange(2000)
    p_values = [assignment.uniformity(ids, f"salt-{k}", n_groups=20).p_value for k in range(60)]
    assert stats.kstest(p_values, "uniform").pvalue > 1e-3


def test_uniformity_counts_every_distinct_user_once():
    ids = np.concatenate([np.arange(1000), np.arange(1000)])
    check = assignment.uniformity(ids, "u", n_groups=10)
    assert sum(check.counts) == 1000 and len(check.counts) == 10


@pytest.mark.parametrize("weights, message", [
    ([0.5, 0.6], "sum to 1"),
    ([1.2, -0.2], "non-negative"),
    ([], "empty"),
    ({"a": float("nan"), "b": 1.0}, "finite"),
])
def test_bad_weights_are_named(weights, message):
    with pytest.raises(ValueError, match=message):
        assignment.assign([1, 2, 3], "s", weights)


def test_bad_ids_and_salts_are_named():
    with pytest.raises(ValueError, match="empty"):
        assignment.assign([], "s", [1.0])
    with pytest.raises(TypeError, match="integers or strings"):
        assignment.assign([0.5, 1.5], "s", [1.0])
    with pytest.raises(TypeError, match="salt"):
        assignment.assign([1], "", [1.0])
    with pytest.raises(ValueError, match="distinct users"):
        assignment.uniformity([1, 2, 3], "s", n_groups=10)


def test_assign_buckets_is_assign_and_growing_a_weight_only_adds_users():
    ids = np.arange(5000)
    hashed = assignment.buckets(ids, "grow")
    small = assignment.assign_buckets(hashed, [0.9, 0.1])
    assert small.tolist() == assignment.assign(ids, "grow", [0.9, 0.1]).tolist()
    large = assignment.assign_buckets(hashed, [0.6, 0.4])
    assert np.all(large[small == 1] == 1), "a user in the 10% must stay in the 40%"


@pytest.mark.parametrize("ids", [
    np.arange(-300, 3000),
    np.array([0, -1, 9, -10, 2 ** 63 - 1, -2 ** 63], dtype=np.int64),
    np.array([0, 10 ** 19 - 1, 10 ** 19, 2 ** 64 - 1], dtype=np.uint64),
    np.arange(-5, 5, dtype=np.int8),
    np.array(["a", "Zoë", "\udcff", "", "7", "user 1", 7, 10 ** 30], dtype=object),
    np.array(["", "a", "b\x00c", "user-12", "user-3"]),  # ASCII text, one with a NUL inside
    np.array(["Zoë", "Zoe", "用户"]),
])
def test_the_vectorised_hash_is_the_formula_applied_id_by_id(ids):
    expected = [assignment.fmix64(assignment.fnv1a(
        f"ab\x1f{uid}".encode("utf-8", "surrogateescape"))) for uid in ids.tolist()]
    assert assignment.stable_hash(ids, "ab").tolist() == expected
