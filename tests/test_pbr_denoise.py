"""The path-traced renders' denoiser (fleetvision.synth.pbr_denoise): pure numpy, no renderer."""

from __future__ import annotations

import numpy as np
import pytest

from fleetvision.synth.pbr_denoise import cross_bilateral

H, W = 40, 60


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A red panel (left) beside a white one (right) under a sky strip (top rows: no surface), with a
    sharp dark shadow across the white panel's lower half: (clean radiance, the same with
    path-tracing-like noise, albedo, normal, depth)."""
    albedo = np.zeros((H, W, 3), np.float32)
    albedo[:, : W // 2] = (0.7, 0.1, 0.1)
    albedo[:, W // 2:] = (0.8, 0.8, 0.8)
    normal = np.zeros((H, W, 3), np.float32)
    normal[..., 2] = 1.0
    depth = np.full((H, W), 5.0, np.float32)
    albedo[:8], normal[:8], depth[:8] = 0.0, 0.0, 0.0  # the sky
    clean = albedo.copy()
    clean[:8] = (0.4, 0.6, 1.0)
    clean[H // 2:, W // 2:] *= 0.15  # the shadow: in the radiance only, not in any guide
    rng = np.random.default_rng(0)
    noisy = clean * np.exp(rng.normal(0.0, 0.25, clean.shape)).astype(np.float32)
    return clean, noisy, albedo, normal, depth


def test_grain_on_a_panel_averages_away() -> None:
    clean, noisy, albedo, normal, depth = _scene()
    out = cross_bilateral(noisy, albedo, normal, depth)
    panel = (slice(12, H // 2 - 4), slice(4, W // 2 - 4))
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert out[panel].std(axis=(0, 1)).max() < noisy[panel].std(axis=(0, 1)).max() / 3
    assert np.abs(out[panel].mean(axis=(0, 1)) - clean[panel].mean(axis=(0, 1))).max() < 0.03


def test_edges_in_the_guides_and_in_the_brightness_stay_sharp() -> None:
    _, noisy, albedo, normal, depth = _scene()
    out = cross_bilateral(noisy, albedo, normal, depth)
    rows = slice(10, H // 2 - 2)
    # the panels' seam (albedo): the columns either side keep their own colour
    assert out[rows, W // 2 - 1, 1].mean() == pytest.approx(0.1, abs=0.03)
    assert out[rows, W // 2, 1].mean() == pytest.approx(0.8, abs=0.08)
    # the sky's edge (depth): no sky blue bleeds into the red panel's top row
    assert out[8, 4: W // 2 - 4, 2].mean() == pytest.approx(0.1, abs=0.03)
    # the shadow's edge (brightness only): the lit row above it stays lit, the shadowed row dark
    cols = slice(W // 2 + 4, W - 4)
    assert out[H // 2 - 1, cols, 0].mean() > 0.6 and out[H // 2, cols, 0].mean() < 0.25


def test_shapes_are_checked() -> None:
    _, noisy, albedo, normal, depth = _scene()
    with pytest.raises(ValueError, match="depth"):
        cross_bilateral(noisy, albedo, normal, depth[:, :-1])
    with pytest.raises(ValueError, match="radiance"):
        cross_bilateral(noisy[..., :2], albedo, normal, depth)


def test_a_non_finite_guide_or_radiance_leaves_no_blot() -> None:
    # Mitsuba's shading normal comes out NaN on a few pixels of some renders; one such pixel turned its
    # whole 7 x 7 neighbourhood NaN, which the tone map cast to black
    _, noisy, albedo, normal, depth = _scene()
    clean_out = cross_bilateral(noisy, albedo, normal, depth)
    normal, albedo, depth, noisy = normal.copy(), albedo.copy(), depth.copy(), noisy.copy()
    normal[20, 10], albedo[25, 12], depth[30, 40] = np.nan, np.inf, np.nan
    noisy[15, 50] = np.nan
    out = cross_bilateral(noisy, albedo, normal, depth)
    assert np.isfinite(out).all()
    far = np.ones((H, W), bool)  # pixels whose window holds none of the four
    for y, x in ((20, 10), (25, 12), (30, 40), (15, 50)):
        far[max(0, y - 3):y + 4, max(0, x - 3):x + 4] = False
    np.testing.assert_allclose(out[far], clean_out[far], rtol=1e-6, atol=1e-7)
    assert abs(float(out[20, 10, 0]) - float(noisy[20, 10, 0])) < 0.5  # the unknown-normal pixel keeps its own value
