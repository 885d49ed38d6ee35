"""Path-tracing noise out of a render, edges kept: a cross-bilateral filter guided by the render's own
albedo, normals and depth (pure numpy).

At the dozen samples per pixel the 2-core machine affords (:mod:`fleetvision.synth.pbr_scene`), glossy
paint and glass come out grainy: a sandpaper texture on every car that no camera makes, and convolutional
features are sensitive to texture. The renderer makes three nearly noise-free guides in a cheap pass of
their own (the first surface's albedo, shading normal and depth through the same camera). Each pixel becomes a
weighted mean of its neighbours that lie on the same surface (alike in albedo, normal and depth) and are
alike in brightness, so the grain on a panel averages away while the edges the eye reads (a panel's
outline, a lamp, a plate's characters, a badge, a shadow's edge) stay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DenoiseSettings:
    """How far and how alike a neighbour must be to count.

    Attributes:
        radius: Window half-width in pixels ((2r + 1)^2 neighbours).
        sigma_px: Spatial Gaussian, pixels.
        sigma_albedo: Albedo difference (RGB distance, 0-1 scale).
        sigma_normal: Shading-normal difference (vector distance; 2 = opposite).
        sigma_depth: Relative depth difference.
        sigma_log_lum: Brightness difference in natural log units (keeps shadows' and highlights' edges).
    """

    radius: int = 3
    sigma_px: float = 2.0
    sigma_albedo: float = 0.08
    sigma_normal: float = 0.3
    sigma_depth: float = 0.04
    sigma_log_lum: float = 0.6


def finite_or_zero(a: np.ndarray) -> np.ndarray:
    """``a`` as float32 with every NaN and infinity replaced by 0 (an unknown value: black radiance, an
    unknown guide)."""
    return np.nan_to_num(np.asarray(a, np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _padded(a: np.ndarray, r: int) -> np.ndarray:
    """A float32 image [H, W] or [H, W, C] grown by ``r`` pixels on every side, repeating its edge."""
    a = np.asarray(a, np.float32)
    return np.pad(a, ((r, r), (r, r)) + ((0, 0),) * (a.ndim - 2), mode="edge")


def _shifted(padded: np.ndarray, dy: int, dx: int, r: int) -> np.ndarray:
    """From an image padded by ``r`` on every side, each pixel's neighbour at offset (dy, dx)."""
    h, w = padded.shape[0] - 2 * r, padded.shape[1] - 2 * r
    return padded[r + dy:r + dy + h, r + dx:r + dx + w]


def cross_bilateral(radiance: np.ndarray, albedo: np.ndarray, normal: np.ndarray, depth: np.ndarray,
                    settings: DenoiseSettings = DenoiseSettings()) -> np.ndarray:
    """Denoise linear ``radiance`` [H, W, 3] guided by ``albedo`` [H, W, 3], ``normal`` [H, W, 3] and
    ``depth`` [H, W] (0 where a ray hit no surface, e.g. the sky). Returns float32 [H, W, 3], finite
    everywhere: a non-finite guide value counts as unknown (zero), a non-finite radiance as black.

    Raises:
        ValueError: The guides' shapes do not match the radiance's.
    """
    radiance = np.asarray(radiance, np.float32)
    h, w = radiance.shape[:2]
    if radiance.ndim != 3 or radiance.shape[2] != 3:
        raise ValueError(f"radiance must be [H, W, 3], got {radiance.shape}")
    for name, guide, shape in (("albedo", albedo, (h, w, 3)), ("normal", normal, (h, w, 3)), ("depth", depth, (h, w))):
        if np.shape(guide) != shape:
            raise ValueError(f"{name} must be {shape} like the radiance, got {np.shape(guide)}")
    r, s = settings.radius, settings
    # a renderer leaves a non-finite value now and then: Mitsuba's shading normal came out NaN on 25-135
    # pixels of 5 renders in 30 (a few rows of a car body; vertex normals that cancel, most likely), and
    # one NaN guide pixel made every pixel whose window holds it NaN: a black blot in the photo.
    # Unknown guides are zeros (a zero normal or albedo is alike only to other unknowns, a zero depth is
    # sky), an unknown radiance is black, so the centre pixel still weighs 1 and every output is finite.
    radiance, albedo, normal, depth = (finite_or_zero(a) for a in (radiance, albedo, normal, depth))
    lum = np.log(np.maximum(radiance @ np.array([0.2126, 0.7152, 0.0722], np.float32), 1e-4))
    rel = np.where(depth > 0, depth, np.inf)  # the sky: no surface, alike only to other sky pixels
    p_rad, p_alb, p_nrm, p_lum, p_rel = (_padded(a, r) for a in (radiance, albedo, normal, lum, rel))
    total = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w), np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            e = (dy * dy + dx * dx) / (2 * s.sigma_px**2)
            e = e + ((_shifted(p_alb, dy, dx, r) - albedo) ** 2).sum(-1) / (2 * s.sigma_albedo**2)
            e = e + ((_shifted(p_nrm, dy, dx, r) - normal) ** 2).sum(-1) / (2 * s.sigma_normal**2)
            e = e + (_shifted(p_lum, dy, dx, r) - lum) ** 2 / (2 * s.sigma_log_lum**2)
            other = _shifted(p_rel, dy, dx, r)
            with np.errstate(invalid="ignore"):  # sky beside sky: inf - inf, no gap
                gap = np.where(np.isinf(rel) & np.isinf(other), 0.0, np.abs(other - rel) / np.minimum(other, rel))
            e = e + gap**2 / (2 * s.sigma_depth**2)
            wgt = np.exp(-e).astype(np.float32)
            total += wgt[..., None] * _shifted(p_rad, dy, dx, r)
            weight += wgt
    return total / weight[..., None]  # the centre pixel always weighs 1
