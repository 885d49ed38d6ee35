"""Simple photo quality measures on decoded batches: sharpness and brightness, vectorised.

Both work on the small uint8 RGB arrays the models see (``[N, S, S, 3]``), so they cost next to
nothing after decoding. Sharpness is the variance of the 4-neighbour Laplacian of luma, computed after
area-resampling every image to ``ANALYSIS_SIZE`` x ``ANALYSIS_SIZE``: the Laplacian's variance grows
as an image is downscaled, so measuring at one fixed resolution makes values from different input
sizes comparable (inputs of 128 and 224 pixels agree within about 10%). On photo-like images an in-focus
photo measures about 0.004-0.02, one blurred by a few pixels about 0.001, a flat one 0.

A batch is measured :data:`QUALITY_CHUNK` photos at a time, so the float temporaries stay a few MB
whatever the batch size (see there).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import numpy as np

ANALYSIS_SIZE = 64
QUALITY_CHUNK = 8
"""Photos measured at once. A 256-photo batch at S = 224 measured in one go makes ~150 MB of float32
temporaries (the RGB copy, then luma); fresh pages for them cost up to 1.2 ms a photo inside the scoring
UDF, 4-5x the arithmetic. In chunks of 8 the temporaries are ~5 MB and reused: ~0.2-0.3 ms a photo."""
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601
_LUMA_01 = _LUMA / np.float32(255.0)


class QualityThresholds(Protocol):
    """What :func:`image_quality` reads (``ScoringConfig`` and ``ScoringRules`` both have it)."""

    sharpness_good: float
    brightness_low: float
    brightness_high: float


def _check_batch(batch: np.ndarray) -> None:
    if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.shape[-1] != 3:
        shape = getattr(batch, "shape", type(batch).__name__)
        raise ValueError(f"quality measures need a uint8 batch [N, H, W, 3], got {shape}")


def luma(batch: np.ndarray) -> np.ndarray:
    """Luma in 0-1 as float32 ``[N, H, W]`` for a uint8 RGB batch ``[N, H, W, 3]``."""
    _check_batch(batch)
    n, h, w, _ = batch.shape
    # one [N*H*W, 3] @ [3] product on a contiguous copy, the 1/255 folded into the weights
    return (batch.reshape(-1, 3).astype(np.float32) @ _LUMA_01).reshape(n, h, w)


@lru_cache(maxsize=16)
def _area_weights(source: int, target: int) -> np.ndarray:
    """``[target, source]`` matrix averaging each output cell's footprint (exact area resampling)."""
    edges = np.arange(target + 1, dtype=np.float64) * source / target
    left = np.arange(source, dtype=np.float64)
    right = left + 1.0
    overlap = np.clip(
        np.minimum(edges[1:, None], right[None, :]) - np.maximum(edges[:-1, None], left[None, :]), 0.0, None
    )
    weights = overlap / overlap.sum(axis=1, keepdims=True)
    weights.setflags(write=False)
    return weights.astype(np.float32)


def sharpness(batch: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian of luma at ``ANALYSIS_SIZE`` resolution.

    Args:
        batch: uint8 ``[N, H, W, 3]`` RGB.

    Returns:
        float32 ``[N]``; 0 for a flat image.

    Raises:
        ValueError: ``batch`` is not ``[N, H, W, 3]``.
    """
    return measure_quality(batch)[0]


def _sharpness_of_luma(y: np.ndarray) -> np.ndarray:
    n, h, w = y.shape
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    k = ANALYSIS_SIZE
    # Area resampling as two plain 2-D GEMMs over the whole batch: a broadcast [k, H] @ [N, H, W]
    # matmul falls off BLAS in numpy and cost ~27 ms a photo at S = 224 (15x this).
    cols = (y.reshape(n * h, w) @ _area_weights(w, k).T).reshape(n, h, k)
    small_t = cols.transpose(0, 2, 1).reshape(n * k, h) @ _area_weights(h, k).T  # [N*k (x), k (y)]
    small = small_t.reshape(n, k, k).transpose(0, 2, 1)
    lap = (
        small[:, :-2, 1:-1] + small[:, 2:, 1:-1] + small[:, 1:-1, :-2] + small[:, 1:-1, 2:] - 4.0 * small[:, 1:-1, 1:-1]
    )
    return lap.reshape(n, -1).var(axis=1).astype(np.float32)


def brightness(batch: np.ndarray) -> np.ndarray:
    """Mean luma in 0-1 per image, float32 ``[N]``.

    Raises:
        ValueError: ``batch`` is not ``[N, H, W, 3]``.
    """
    return measure_quality(batch)[1]


def _brightness_of_luma(y: np.ndarray) -> np.ndarray:
    if y.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    return y.reshape(y.shape[0], -1).mean(axis=1).astype(np.float32)


def measure_quality(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sharpness, brightness)``, float32 ``[N]`` each; luma computed once, :data:`QUALITY_CHUNK` photos at a time.

    Raises:
        ValueError: ``batch`` is not ``[N, H, W, 3]``.
    """
    _check_batch(batch)
    n = batch.shape[0]
    sharp = np.zeros(n, dtype=np.float32)
    bright = np.zeros(n, dtype=np.float32)
    for start in range(0, n, QUALITY_CHUNK):
        y = luma(batch[start : start + QUALITY_CHUNK])
        sharp[start : start + len(y)] = _sharpness_of_luma(y)
        bright[start : start + len(y)] = _brightness_of_luma(y)
    return sharp, bright


def image_quality(
    sharpness_values: np.ndarray | float,
    brightness_values: np.ndarray | float,
    thresholds: QualityThresholds,
) -> np.ndarray:
    """One 0-1 quality figure per photo: sharpness (saturating) times exposure.

    Sharpness counts fully at ``thresholds.sharpness_good`` and linearly below it. Exposure is 1
    between ``brightness_low`` and ``brightness_high`` and falls linearly to 0 at black and at white.
    NaN in (a failed or unmeasured photo) gives NaN out.

    Args:
        sharpness_values: From :func:`sharpness`.
        brightness_values: From :func:`brightness`.
        thresholds: Anything with ``sharpness_good``, ``brightness_low``, ``brightness_high``.

    Returns:
        float64 array broadcast from the inputs.
    """
    s = np.asarray(sharpness_values, dtype=np.float64)
    b = np.asarray(brightness_values, dtype=np.float64)
    sharp_part = np.clip(s / float(thresholds.sharpness_good), 0.0, 1.0)
    low, high = float(thresholds.brightness_low), float(thresholds.brightness_high)
    with np.errstate(invalid="ignore", divide="ignore"):
        under = np.where(low > 0, b / low, 1.0)
        over = np.where(high < 1, (1.0 - b) / (1.0 - high), 1.0)
    exposure = np.where(b < low, under, np.where(b > high, over, 1.0))
    exposure = np.where(np.isnan(b), np.nan, np.clip(exposure, 0.0, 1.0))
    return sharp_part * exposure
