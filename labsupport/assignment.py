"""Sticky, reproducible assignment of users to versions or variants (lessons 06 and 07).

A rollout or an experiment must send each user to the same version on every request, in every
process and on every machine, and two experiments running at once must split users independently.
Both follow from one idea: hash the user id together with a *salt* (the experiment's or the
rollout's name) with a hash function whose output is fixed by its definition, cut the hash into
``BUCKETS`` equal buckets, and give each version a contiguous run of buckets sized by its weight.

Python's built-in ``hash`` is the wrong tool: for integers it is the integer itself (so
``hash(user_id) % 2`` sends even ids to one group, odd ids to the other), and for strings it is
salted afresh in every process (``PYTHONHASHSEED``), so two servers disagree about the same user.

Here the hash is 64-bit FNV-1a over the text ``f"{salt}\x1f{user_id}"``, followed by the
finaliser of MurmurHash3 (``fmix64``). FNV-1a is two integer operations per byte, so numpy
computes it for every user at once; on its own, though, it changes little between texts that
differ only in their last bytes, so neighbouring ids kept the same offset between their buckets
under every salt (two experiments would not split them independently). The finaliser mixes every
bit into every other, which is what makes different salts independent. The hash is computed once
per *distinct* user id.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Buckets the hash is cut into; weights are honoured to 1 / BUCKETS.
BUCKETS = 10_000

#: 64-bit FNV-1a's offset basis and prime, and the two multipliers of MurmurHash3's ``fmix64``.
FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3
FMIX_MULTIPLIERS = (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53)
#: 10 ** 1 .. 10 ** 19: where an unsigned 64-bit integer gains a decimal digit.
_POWERS_OF_TEN = np.array([10 ** k for k in range(1, 20)], dtype=np.uint64)


def _check_salt(salt: str) -> None:
    if not isinstance(salt, str) or not salt:
        raise TypeError(f"salt must be a non-empty string naming the experiment or rollout, "
                        f"got {salt!r}.")


def _as_ids(user_ids: Sequence | np.ndarray) -> np.ndarray:
    ids = np.asarray(user_ids)
    if ids.ndim != 1:
        raise ValueError(f"user_ids must be one-dimensional, got shape {ids.shape}.")
    if ids.size == 0:
        raise ValueError("user_ids is empty: there is nobody to assign.")
    if ids.dtype.kind not in "iuUO":
        raise TypeError(f"user ids must be integers or strings, got dtype {ids.dtype}.")
    return ids


def fnv1a(data: bytes) -> int:
    """64-bit FNV-1a of ``data``, one byte at a time: the definition, in plain Python."""
    state = FNV_OFFSET
    for byte in data:
        state = ((state ^ byte) * FNV_PRIME) % 2 ** 64
    return state


def fmix64(state: int) -> int:
    """MurmurHash3's finaliser: every input bit flips each output bit with probability 1/2."""
    for multiplier in FMIX_MULTIPLIERS:
        state ^= state >> 33
        state = (state * multiplier) % 2 ** 64
    return state ^ (state >> 33)


def stable_hash(user_ids: Sequence | np.ndarray, salt: str) -> np.ndarray:
    """64-bit hash of ``salt`` and each user id, the same in every process and on every machine.

    Ids are hashed by their text, so the integer ``7`` and the string ``"7"`` are one user. The
    hash of one id is ``fmix64(fnv1a(f"{salt}\\x1f{user_id}".encode()))`` (UTF-8, with
    ``surrogateescape`` for ids decoded from raw bytes): :func:`fnv1a` and :func:`fmix64` spell
    it out one id at a time. Here it runs on all distinct ids at once: ids of the same text
    length form a matrix of bytes, and FNV-1a walks its columns. Integer ids never become
    Python strings: their decimal digits are computed as arrays.

    Returns
    -------
    numpy.ndarray
        ``uint64`` array, one hash per entry of ``user_ids``.
    """
    _check_salt(salt)
    ids = _as_ids(user_ids)
    if ids.dtype.kind == "O":  # a mixed list (7 and "7"): compare them as the text they hash as
        ids = np.array([f"{user_id}" for user_id in ids.tolist()], dtype=object)
    distinct, inverse = np.unique(ids, return_inverse=True)
    start = np.uint64(fnv1a(f"{salt}\x1f".encode("utf-8", "surrogateescape")))
    prime = np.uint64(FNV_PRIME)
    hashes = np.empty(distinct.size, dtype=np.uint64)
    for rows, columns in _texts_by_length(distinct):
        state = np.full(rows.size, start, dtype=np.uint64)
        for column in columns:  # one byte of the text of every id of this length
            state ^= column
            state *= prime
        hashes[rows] = state
    shift = np.uint64(33)
    for multiplier in FMIX_MULTIPLIERS:
        hashes ^= hashes >> shift
        hashes *= np.uint64(multiplier)
    hashes ^= hashes >> shift
    return hashes[inverse.ravel()]


def _texts_by_length(distinct: np.ndarray) -> Iterator[tuple[np.ndarray, Iterable[np.ndarray]]]:
    """Yield ``(rows, columns)``: the ids whose UTF-8 text has one length, and its bytes, column
    by column (``columns[j]`` holds byte ``j`` of each of those ids)."""
    if distinct.dtype.kind in "iu":
        yield from _decimal_texts(distinct)
        return
    if distinct.dtype.kind == "U":
        codes = distinct.view(np.uint32).reshape(distinct.size, -1)
        if codes.size and int(codes.max()) < 128:  # ASCII: a character is its byte
            written = codes != 0  # numpy pads with NUL; a text may hold NUL, but never last
            lengths = np.where(written.any(axis=1),
                               codes.shape[1] - np.argmax(written[:, ::-1], axis=1), 0)
            for length in np.unique(lengths).tolist():
                rows = np.flatnonzero(lengths == length)
                yield rows, codes[rows, :length].T
            return
    encoded = [f"{user_id}".encode("utf-8", "surrogateescape") for user_id in distinct.tolist()]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        joined = b"".join([encoded[row] for row in rows.tolist()])
        yield rows, np.frombuffer(joined, dtype=np.uint8).reshape(rows.size, length).T


def _decimal_texts(values: np.ndarray) -> Iterator[tuple[np.ndarray, Iterator[np.ndarray]]]:
    """The decimal text of integer ids, as ``str(int)`` writes it, computed as arrays."""
    negative = values < 0
    if values.dtype.kind == "i":  # |x| without overflow at the most negative int64: ~x + 1
        magnitude = np.where(negative, (~values).astype(np.uint64) + np.uint64(1),
                             values.astype(np.uint64))
    else:
        magnitude = values.astype(np.uint64)
    digits = 1 + np.searchsorted(_POWERS_OF_TEN, magnitude, side="right")
    # the ids come sorted (np.unique), so ids of one length and sign lie next to each other
    length = digits + negative
    cuts = np.flatnonzero((np.diff(length) != 0) | (np.diff(negative) != 0)) + 1
    for first, last in zip([0, *cuts.tolist()], [*cuts.tolist(), values.size]):
        rows = np.arange(first, last)
        yield rows, _digits(magnitude[first:last], int(digits[first]), bool(negative[first]))


def _digits(magnitude: np.ndarray, n_digits: int, sign: bool) -> Iterator[np.ndarray]:
    """The bytes of ``[-]ddd``, most significant digit first (division by a scalar is fast)."""
    if sign:
        yield np.uint64(ord("-"))
    for place in range(n_digits - 1, -1, -1):
        yield magnitude // np.uint64(10 ** place) % np.uint64(10) + np.uint64(ord("0"))


def buckets(user_ids: Sequence | np.ndarray, salt: str, n_buckets: int = BUCKETS) -> np.ndarray:
    """Bucket in ``0 .. n_buckets - 1`` of each user under ``salt`` (sticky and uniform)."""
    if int(n_buckets) != n_buckets or n_buckets < 2:
        raise ValueError(f"n_buckets must be a whole number >= 2, got {n_buckets}.")
    return (stable_hash(user_ids, salt) % np.uint64(n_buckets)).astype(np.int64)


def _weights(weights: Mapping[str, float] | Sequence[float]) -> tuple[list, np.ndarray]:
    if isinstance(weights, Mapping):
        names, values = list(weights), list(weights.values())
    else:
        values = list(weights)
        names = list(range(len(values)))
    if not values:
        raise ValueError("weights is empty: name at least one version or variant.")
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"weights must be numbers, got {values!r}.") from error
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"weights must be finite and non-negative, got {values!r}.")
    if not math.isclose(float(array.sum()), 1.0, abs_tol=1e-9):
        raise ValueError(f"weights must sum to 1, got {values!r} (sum {array.sum():g}).")
    return names, array


def assign(user_ids: Sequence | np.ndarray, salt: str,
           weights: Mapping[str, float] | Sequence[float]) -> np.ndarray:
    """Assign each user to a variant by a salted stable hash (sticky, reproducible).

    Parameters
    ----------
    user_ids
        One id per request or per user (integers or strings); repeated ids get the same variant.
    salt
        Names the experiment or rollout. Different salts split users independently.
    weights
        Share of users per variant: a mapping ``{"control": 0.5, "treatment": 0.5}`` (the result
        holds the names) or a sequence ``[0.9, 0.1]`` (the result holds indices). Must be
        non-negative and sum to 1; honoured to ``1 / BUCKETS``.

    Returns
    -------
    numpy.ndarray
        The variant of each entry of ``user_ids``.

    Examples
    --------
    >>> assign([1, 2, 3, 1], "checkout-test", {"control": 0.5, "treatment": 0.5})[0] == \\
    ...     assign([1], "checkout-test", {"control": 0.5, "treatment": 0.5})[0]
    True
    """
    return assign_buckets(buckets(user_ids, salt), weights)


def assign_buckets(bucket_ids: np.ndarray,
                   weights: Mapping[str, float] | Sequence[float]) -> np.ndarray:
    """Map buckets (from :func:`buckets`) to variants by weight: the second half of :func:`assign`.

    A rollout that changes weights step by step (lesson 06) hashes its users once and calls
    this at every step; a user's bucket never changes, so raising a canary's weight only adds
    users to it (nobody who saw the candidate is sent back, unless the weight goes down).
    """
    names, shares = _weights(weights)
    bounds = np.rint(np.cumsum(shares) * BUCKETS).astype(np.int64)
    bounds[-1] = BUCKETS
    index = np.searchsorted(bounds, np.asarray(bucket_ids), side="right")
    return np.asarray(names, dtype=object if isinstance(weights, Mapping) else np.int64)[index]


@dataclass(frozen=True)
class Uniformity:
    """Chi-square goodness-of-fit check that hashing spreads users evenly over groups.

    Attributes
    ----------
    counts
        Users per group.
    statistic, p_value
        Pearson's chi-square against equal expected counts, and its p-value.
    """

    counts: tuple[int, ...]
    statistic: float
    p_value: float


def uniformity(user_ids: Sequence | np.ndarray, salt: str, n_groups: int = 100) -> Uniformity:
    """Check that distinct users fall evenly into ``n_groups`` hash groups.

    A good hash gives p-values spread evenly on [0, 1] across salts; a biased one (such as
    ``hash(user_id) % n`` on ids that share a step) gives p-values near 0.
    """
    distinct = np.unique(_as_ids(user_ids))
    if distinct.size < 5 * n_groups:
        raise ValueError(f"need at least {5 * n_groups} distinct users for {n_groups} groups "
                         f"(5 expected per group), got {distinct.size}.")
    counts = np.bincount(buckets(distinct, salt, n_groups), minlength=n_groups)
    result = stats.chisquare(counts)
    return Uniformity(tuple(int(c) for c in counts), float(result.statistic),
                      float(result.pvalue))
