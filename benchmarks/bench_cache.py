"""Rendered sets kept between benchmark runs: file names keyed by the generator's code, atomic writes,
JPEG bytes packed into one array.

Used by the benchmarks that render their own labelled photos (``bench_render_transfer.py``,
``fit_plate_flank.py``): a path-traced set takes minutes to hours here, so each is rendered once per
(settings, generator code) and read back on later runs. A cache entry appears only once complete
(written to a temporary name, then renamed).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def synth_digest() -> str:
    """12 hex digits of every module of ``fleetvision/synth`` (the painter's and the path tracer's): a
    change to any of them renders a cached set anew."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "fleetvision" / "synth").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` to ``path``, complete or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def pack_photos(photos: Sequence[bytes]) -> dict[str, np.ndarray]:
    """JPEG bytes -> ``jpeg`` (all bytes, uint8) and ``ends`` (each photo's end offset), for :func:`save_npz`."""
    return {"jpeg": np.frombuffer(b"".join(photos), np.uint8), "ends": np.cumsum([len(p) for p in photos])}


def unpack_photos(jpeg: np.ndarray, ends: np.ndarray) -> list[bytes]:
    """The inverse of :func:`pack_photos`."""
    buffer = np.asarray(jpeg, dtype=np.uint8).tobytes()
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    return [buffer[a:b] for a, b in zip(starts, np.asarray(ends, dtype=np.int64))]
