"""Deterministic random streams.

Every photo, listing and evolve step draws from its own generator, derived from the run's seed and
stable string keys (never from a shared stream), so the output does not depend on rendering order,
worker count or which other photos exist: the same (seed, keys) always gives the same numbers.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *keys: str | int) -> int:
    """A 64-bit integer derived from ``seed`` and ``keys`` (stable across processes and platforms).

    Args:
        seed: The run's seed.
        *keys: Identifiers (photo id, purpose, day, ...) that name the stream.

    Returns:
        A non-negative integer below 2**64.

    Raises:
        TypeError: ``seed`` is not an int.
    """
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    text = "\x1f".join([str(int(seed)), *(str(k) for k in keys)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def derive_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A numpy Generator for the stream named by ``(seed, *keys)``; see :func:`derive_seed`."""
    return np.random.Generator(np.random.PCG64(derive_seed(seed, *keys)))


def weighted_choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """Pick a key of ``weights`` with probability proportional to its value.

    Raises:
        ValueError: The weights are empty, negative or all zero.
    """
    keys = list(weights)
    w = np.asarray([weights[k] for k in keys], dtype=float)
    if not keys or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights!r}")
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]
