"""What every path-traced scene shares: Mitsuba loaded safely beside TensorFlow, the scene dictionary and its
mesh files, materials, the outdoor light (sky, sun, ground), the camera's sensor, and the developing of a
render into a photo (the denoiser's guide pass, the tone map).

The exteriors and close-ups (:mod:`fleetvision.synth.pbr_scene`) and the interiors
(:mod:`fleetvision.synth.pbr_cabin`) build their own geometry on these; changing one here changes both.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from fleetvision.synth.pbr_camera import Camera
from fleetvision.synth.pbr_denoise import cross_bilateral, finite_or_zero

GUIDE_SAMPLES = 4
GUIDES = {"type": "aov", "aovs": "al:albedo,nn:sh_normal,dd:depth"}


class PbrUnavailableError(RuntimeError):
    """Mitsuba 3 (the ``pbr`` extra) is not installed."""


NO_LLVM = "none (fleetvision: TensorFlow is loaded; the scalar variant needs no LLVM)"
"""What ``DRJIT_LIBLLVM_PATH`` is set to while Dr.Jit is imported into a process that holds TensorFlow."""


@contextlib.contextmanager
def _no_llvm_beside_tensorflow() -> Iterator[None]:
    """Keep Dr.Jit (Mitsuba's array library) from loading the system's libLLVM into a process that
    already holds TensorFlow, for the duration of its import.

    TensorFlow links its own LLVM; Dr.Jit, imported after it, loaded ``libLLVM`` for its JIT backend and the
    interpreter then aborted at exit (``free(): invalid pointer`` in LLVM's option destructors), after all
    its work was done, failing every such process (a one-process ``pytest`` run, a benchmark). Imported
    first, Dr.Jit is fine. The ``scalar_rgb`` variant never uses the JIT, so Dr.Jit is given a library
    path that does not load (it says so on stderr, once); the variable is restored afterwards, so spawned
    workers load Dr.Jit normally. A ``DRJIT_LIBLLVM_PATH`` the user set is left alone.
    """
    key = "DRJIT_LIBLLVM_PATH"
    if "tensorflow" not in sys.modules or "drjit" in sys.modules or key in os.environ:
        yield
        return
    os.environ[key] = NO_LLVM
    try:
        yield
    finally:
        os.environ.pop(key, None)


def mitsuba() -> Any:
    """The ``mitsuba`` module in its CPU ``scalar_rgb`` variant.

    Raises:
        PbrUnavailableError: Mitsuba is not installed.
    """
    try:
        with _no_llvm_beside_tensorflow():
            import mitsuba as mi
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise PbrUnavailableError('physically based rendering needs Mitsuba 3: pip install ".[pbr]"') from exc
    if mi.variant() != "scalar_rgb":
        mi.set_variant("scalar_rgb")
        mi.set_log_level(mi.LogLevel.Error)
    return mi


def pbr_available() -> bool:
    """Whether Mitsuba is installed, found by importing it through :func:`mitsuba` (never ``import mitsuba``
    directly, ``pytest.importorskip`` included: imported beside TensorFlow without that guard, the process
    aborts at exit)."""
    try:
        mitsuba()
    except PbrUnavailableError:
        return False
    return True


def write_ply(path: str, verts: np.ndarray, faces: np.ndarray) -> None:
    verts = np.ascontiguousarray(verts, np.float32)
    records = np.zeros(len(faces), dtype=[("n", "u1"), ("i", "<i4", 3)])
    records["n"] = 3
    records["i"] = faces
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(verts)}\nproperty float x\n"
              f"property float y\nproperty float z\nelement face {len(faces)}\n"
              "property list uchar int vertex_indices\nend_header\n")
    with open(path, "wb") as fh:
        fh.write(header.encode())
        fh.write(verts.tobytes())
        fh.write(records.tobytes())


def principled(rgb: Any, rough: float = 0.3, metallic: float = 0.0, specular: float = 0.5, clearcoat: float = 0.0,
                texture: dict[str, Any] | None = None) -> dict[str, Any]:
    bsdf: dict[str, Any] = {"type": "principled", "roughness": float(rough), "metallic": float(metallic),
                            "specular": float(specular)}
    bsdf["base_color"] = texture if texture is not None else {"type": "rgb", "value": [float(c) for c in rgb]}
    if clearcoat:
        bsdf.update(clearcoat=float(clearcoat), clearcoat_gloss=0.9)
    return bsdf


def two_sided(bsdf: dict[str, Any]) -> dict[str, Any]:
    """``bsdf`` on both sides of a surface (Mitsuba's BSDFs shade the front side only, the back is black)."""
    return {"type": "twosided", "bsdf": bsdf}


def srgb_to_linear(rgb: tuple[int, int, int]) -> np.ndarray:
    c = np.asarray(rgb, float) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


class SceneBuilder:
    """Collects the scene dictionary; mesh files go to one temporary folder per photo."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.scene: dict[str, Any] = {"type": "scene"}

    def mesh(self, name: str, verts: np.ndarray, faces: np.ndarray, bsdf: dict[str, Any], to_world: Any,
             face_normals: bool = False, radiance: np.ndarray | None = None) -> None:
        path = os.path.join(self.folder, f"{name}.ply")
        write_ply(path, verts, faces)
        self.scene[name] = {"type": "ply", "filename": path, "to_world": to_world, "bsdf": bsdf,
                            "face_normals": face_normals}
        if radiance is not None:
            self.scene[name]["emitter"] = {"type": "area", "radiance": {"type": "rgb",
                                                                        "value": [float(v) for v in radiance]}}


def sky(rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """An equirectangular sky (float32 [128, 256, 3], linear): gradient, skyline, colour cast; overcast?"""
    h, w = 128, 256
    v = (np.arange(h) + 0.5)[:, None] / h
    overcast = bool(rng.random() < 0.45)
    zenith = np.full(3, 0.8) if overcast else np.array([0.25, 0.45, 0.9])
    horizon = np.full(3, 0.95) if overcast else np.array([0.75, 0.8, 0.9])
    t = np.clip(v / 0.5, 0, 1)[..., None]
    img = np.where(v[..., None] < 0.5, zenith * (1 - t**2) + horizon * t**2, rng.uniform(0.08, 0.3, 3) * 0.6)
    img = np.broadcast_to(img, (h, w, 3)).copy()
    x = 0
    while x < w:  # buildings and trees: a band of random heights above the horizon
        bw, bh = int(rng.integers(4, 30)), int(rng.integers(0, 22))
        img[h // 2 - bh:h // 2, x:x + bw] = rng.uniform(0.05, 0.5, 3) * (0.5 if rng.random() < 0.5 else 1.0)
        x += bw
    img *= rng.uniform(0.6, 2.0) * (1.6 if overcast else 1.0) * rng.uniform(0.85, 1.15, 3)
    return img.astype(np.float32), overcast


def ground(rng: np.random.Generator, n: int = 256) -> np.ndarray:
    """Asphalt or concrete (float32 [n, n, 3]), sometimes with parking-bay lines."""
    base = rng.uniform(0.08, 0.4) * rng.uniform(0.85, 1.15, 3)
    noise = np.kron(rng.normal(0, 0.25, (n // 8, n // 8, 1)), np.ones((8, 8, 1))) + rng.normal(0, 0.15, (n, n, 1))
    img = np.clip(base * (1 + 0.3 * noise), 0, 1)
    if rng.random() < 0.5:
        colour = np.array([0.8, 0.7, 0.1]) if rng.random() < 0.5 else np.array([0.85, 0.85, 0.85])
        for row in (n // 2 - 12, n // 2 + 11):
            img[row - 1:row + 1, :] = colour
    return img.astype(np.float32)


def denoised(linear: np.ndarray, guides: np.ndarray) -> np.ndarray:
    """The render's radiance [H, W, 3] with the path-tracing noise of a dozen samples taken out: a 3 x 3
    median for fireflies, then the filter guided by the guide pass (its channels: albedo,
    shading normal, depth)."""
    return cross_bilateral(despeckled(linear), guides[..., 0:3], guides[..., 3:6], guides[..., 6])


def despeckled(linear: np.ndarray) -> np.ndarray:
    """A 3 x 3 median per channel: the fireflies (lone over-bright samples) out; non-finite values black."""
    from scipy.ndimage import median_filter

    return median_filter(finite_or_zero(linear), size=(3, 3, 1))


def tone_map(linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    exposure = float(rng.uniform(0.7, 1.4)) / max(1e-3, float(np.percentile(linear, 90)))
    x = np.clip(linear * exposure * 0.8, 0, None)
    x = x / (1 + x * 0.15)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return (np.clip(srgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def add_outdoor_light(b: SceneBuilder, mi: Any, rng: np.random.Generator, *, sky_scale: bool = False) -> None:
    """The sky (an environment map turned at random; its brightness scaled 0.8-2x when ``sky_scale``), the sun
    unless the sky is overcast, and a 30 m textured ground at z = 0, drawn from ``rng`` in that order."""
    t = mi.ScalarTransform4f
    env, overcast = sky(rng)
    b.scene["env"] = {"type": "envmap", "bitmap": mi.Bitmap(env)}
    if sky_scale:
        b.scene["env"]["scale"] = float(rng.uniform(0.8, 2.0))
    b.scene["env"]["to_world"] = t().rotate([1, 0, 0], 90).rotate([0, 1, 0], float(rng.uniform(0, 360)))
    if not overcast:
        el, az = math.radians(rng.uniform(15, 70)), rng.uniform(0, 2 * np.pi)
        b.scene["sun"] = {"type": "directional",
                          "direction": [-math.cos(el) * math.cos(az), -math.cos(el) * math.sin(az), -math.sin(el)],
                          "irradiance": {"type": "rgb", "value": [
                              float(v) for v in rng.uniform(2.5, 5.0) * np.array([1, 0.95, 0.85])]}}
    b.scene["ground"] = {"type": "rectangle", "to_world": t().scale([15, 15, 1]),
                         "bsdf": {"type": "principled", "roughness": 0.7,
                                  "base_color": {"type": "bitmap", "bitmap": mi.Bitmap(ground(rng)),
                                                 "to_uv": t().scale([8, 8, 1])}}}


def sensor(mi: Any, camera: Camera, samples: int, seed: int, near_clip: float | None = None) -> dict[str, Any]:
    """Mitsuba's perspective sensor for ``camera`` (its film the camera's size, ``samples`` a pixel)."""
    out: dict[str, Any] = {
        "type": "perspective", "fov": camera.fov_x_deg, "fov_axis": "x",
        "to_world": mi.ScalarTransform4f().look_at(origin=[float(v) for v in camera.origin],
                                                   target=[float(v) for v in camera.target], up=[0, 0, 1]),
        "film": {"type": "hdrfilm", "width": int(camera.size[0]), "height": int(camera.size[1]),
                 "rfilter": {"type": "gaussian"}},
        "sampler": {"type": "independent", "sample_count": int(samples), "seed": int(seed % 2**31)}}
    if near_clip is not None:
        out["near_clip"] = float(near_clip)
    return out


def develop(mi: Any, scene: dict[str, Any], samples: int, denoise: bool, rng: np.random.Generator) -> Image.Image:
    """Render ``scene`` and develop it: the path tracer's pass, then the denoiser guided by a pass of its
    own (``denoise``; else only a 3 x 3 median against fireflies), then the tone map (its exposure from
    ``rng``)."""
    loaded = mi.load_dict(scene)
    linear = np.asarray(mi.render(loaded, spp=int(samples)))
    if denoise:
        # the denoiser's guides (pbr_denoise) in a pass of their own: nested in the path tracer's pass, the
        # AOV integrator doubled its cost; alone, a few samples of first hits are cheap and nearly noise-free
        guides = np.asarray(mi.render(loaded, spp=GUIDE_SAMPLES, integrator=mi.load_dict(GUIDES)))
        linear = denoised(linear, guides)
    else:
        linear = despeckled(linear)
    return Image.fromarray(tone_map(linear, rng))
