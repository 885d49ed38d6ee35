"""Exterior photos path-traced by Mitsuba 3: smooth cars (:mod:`fleetvision.synth.pbr_car`) with
glossy paint, glass, tyres and rims under a sky, on a textured ground, among parked cars; and close-ups
of their lamps and wheels (:func:`render_detail`). Where the camera stands: :mod:`fleetvision.synth.pbr_camera`.

Why: models trained on the painter's flat-shaded cars do not transfer to real photos. A linear probe
on frozen EfficientNet-Lite0 features, trained on 700 painter exteriors, named the view (5 ways, no
side) of 24% of real dev photos; the same probe trained on these renders named 64% (docs/models.md,
*Physically based exteriors*).

What varies per photo (domain randomisation): body proportions and details, paint (metallic, clear
coat, roughness), sky (clear with a sun or overcast, skyline, colour cast, exposure), ground texture and
bay lines, 0-2 neighbouring cars, boxes for walls and buildings, and the camera: yaw within the shot's
range, 1.3-5 m from the car's surface (log-uniform: mostly close, as phone photos are), 0.6-1.3 m high,
a 45-72 degree lens, landscape or portrait.

Mitsuba runs in its ``scalar_rgb`` variant (CPU, no LLVM needed): about 0.65 s a photo at 224 x 168 and
12 samples per pixel on one core of the 2-core machine. ``pip install ".[pbr]"``.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from fleetvision.synth.car_geometry import BODY_SHAPES, SHAPE_VARIANTS, VIEW_YAW, YAW_BANDS
from fleetvision.synth.overlays import PLATE_SIZE_M, plate_look, plate_texture
from fleetvision.synth.pbr_camera import (
    DETAIL_PARTS,
    SIDED_FAMILIES,
    Camera,
    PlateView,
    place_camera,
    place_detail_camera,
    plate_view,
)
from fleetvision.synth.pbr_car import LOOKS, CarMesh, car_mesh
from fleetvision.synth.pbr_kit import (
    SceneBuilder,
    add_outdoor_light,
    develop,
    mitsuba,
    principled,
    sensor,
    srgb_to_linear,
    two_sided,
)
from fleetvision.synth.pbr_lettering import end_face_place, lettering_shapes
from fleetvision.synth.rng import derive_rng

DEFAULT_SAMPLES = 12


@dataclass(frozen=True)
class PbrPhoto:
    """A rendered exterior and its labels.

    Attributes:
        image: The photo (RGB, ``size``).
        flank: ``left`` | ``right`` (the car's own flank the camera sees) or None for head-on views.
        plate: The main car's plate label (:func:`fleetvision.synth.pbr_camera.plate_view`).
    """

    image: Image.Image
    flank: str | None
    plate: PlateView

    @property
    def plate_box(self) -> tuple[float, float, float, float] | None:
        """(x0, y0, x1, y1) normalised, of the main car's plate clearly in view, or None."""
        return self.plate.box


class CarScene(SceneBuilder):
    """A scene with cars in it: :meth:`car` adds one, with its plates, lettering, tyres and rims."""

    def car(self, mi: Any, car: CarMesh, rng: np.random.Generator, paint: np.ndarray, prefix: str,
            offset: tuple[float, float], yaw_deg: float, plate: Image.Image | None, plate_m: tuple[float, float],
            lettering_rng: np.random.Generator | None = None) -> Any:
        t = mi.ScalarTransform4f
        to_world = t().translate([offset[0], offset[1], 0.0]).rotate([0, 0, 1], yaw_deg)
        tail = (0.5, 0.015, 0.01) if rng.random() < 0.8 else (0.35, 0.12, 0.02)
        bsdfs = {
            "paint": principled(paint, rng.uniform(0.08, 0.35), rng.uniform(0.0, 0.7), 0.5, rng.uniform(0.3, 1.0)),
            "glass": principled([float(rng.uniform(0.01, 0.04))] * 3, 0.03, 0.0, 0.6),
            "head": principled((0.75, 0.75, 0.75), 0.08, 0.9, 0.5),
            "tail": principled(tail, 0.08, 0.0, 0.6),
            "trim": principled((0.03, 0.03, 0.03), 0.6, 0.0, 0.3),
            "grille": principled([float(rng.uniform(0.01, 0.3))] * 3, 0.35, float(rng.random() < 0.3), 0.4),
            "drl": principled((0.9, 0.9, 0.9), 0.1),
        }
        bsdfs["chrome"] = bsdfs["head"]  # badges, bars, exhausts: as the lamps' chrome shells
        bsdfs["tail_clear"] = bsdfs["head"]  # a tail lamp's reversing section: chrome behind clear glass
        bsdfs["tail_amber"] = principled((0.6, 0.2, 0.01), 0.08, 0.0, 0.6)  # its indicator
        lit = {"drl": float(rng.uniform(2.0, 8.0)) * np.array([1.0, 0.97, 0.9])}  # white LEDs, as bright as a sky
        for part, (verts, faces) in car.parts.items():
            self.mesh(f"{prefix}-{part}", verts, faces, bsdfs[part], to_world, radiance=lit.get(part))
        if plate is not None:
            # the rectangle's v axis runs upwards as the camera sees the plate: the rows flipped, the text reads
            bitmap = mi.Bitmap(np.ascontiguousarray(np.asarray(plate.convert("RGB"), np.float32)[::-1]) / 255.0)
            for end in car.plate_mounts:
                self.scene[f"{prefix}-plate-{end}"] = {
                    "type": "rectangle", "to_world": end_face_place(mi, to_world, car.plate_centre(end), end, plate_m),
                    "bsdf": {"type": "principled", "roughness": 0.3,
                             "base_color": {"type": "bitmap", "bitmap": bitmap}}}
        if lettering_rng is not None:
            self.scene.update(lettering_shapes(mi, car.lettering, to_world, lettering_rng, bsdfs["chrome"], prefix))
        tyres, rims = car.wheels
        # the wheels' meshes are wound one way for both flanks, and Mitsuba's BSDFs are one-sided: before
        # session 32 the car's left-flank rims showed their unlit backs (black wheels on the left, silver
        # alloys on the right: a flank cue no real photo has). Two-sided, both flanks shade alike.
        tyre = two_sided(principled((0.025, 0.025, 0.027), 0.85, 0.0, 0.2))
        for i, (verts, faces) in enumerate(tyres):
            self.mesh(f"{prefix}-tyre{i}", verts, faces, tyre, to_world, face_normals=True)
        alloy = (principled([rng.uniform(0.3, 0.8)] * 3, rng.uniform(0.15, 0.4), 1.0, 0.5) if rng.random() < 0.75
                 else principled((0.03, 0.03, 0.03), 0.3, 0.2, 0.5))
        dark = principled((0.02, 0.02, 0.02), 0.7)
        for i, (kind, verts, faces) in enumerate(rims):
            self.mesh(f"{prefix}-rim{i}", verts, faces, two_sided(alloy if kind == "alloy" else dark), to_world,
                      face_normals=True)
        return to_world


def render_detail(part: str, body_type: str, seed: int, size: tuple[int, int], *, paint_rgb: tuple[int, int, int],
                  plate_style: str, plate_seed: int, samples: int = DEFAULT_SAMPLES, denoise: bool = True) -> PbrPhoto:
    """Path-trace a close-up of one of the car's own parts (``headlight``, ``tail_light``, ``wheel``:
    :data:`DETAIL_PARTS`), in the same scenes as :func:`render_exterior`'s. The painter draws these detail
    shots flat; a real one shows a lamp or wheel on a glossy panel, with the car around it.

    Returns:
        The photo; ``flank`` None, ``plate_box`` the plate's box where one is in frame (a lamp's close-up
        can hold part of the plate).

    Raises:
        ValueError: Unknown part or body type, bad size.
        PbrUnavailableError: Mitsuba is not installed.
    """
    from fleetvision.synth.overlays import plate_text

    if part not in DETAIL_PARTS:
        raise ValueError(f"part must be one of {DETAIL_PARTS}, got {part!r}")
    if body_type not in BODY_SHAPES:
        raise ValueError(f"unknown body type {body_type!r}")
    if min(size) < 16:
        raise ValueError(f"size must be at least 16 x 16, got {size}")
    mi = mitsuba()
    car, camera, rng = detail_scene(part, body_type, seed, size)
    look = plate_look(rng, plate_style, plate_text(derive_rng(plate_seed, "pbr-plate"), plate_style))
    image = _path_traced(mi, car, camera, rng, paint_rgb=paint_rgb, look=look, plate_style=plate_style, seed=seed,
                         samples=samples, denoise=denoise, beside=True)
    return PbrPhoto(image, None, plate_view(car, camera, PLATE_SIZE_M[plate_style]))


def detail_scene(part: str, body_type: str, seed: int,
                 size: tuple[int, int]) -> tuple[CarMesh, Camera, np.random.Generator]:
    """The car and camera of :func:`render_detail`'s close-up, and its random stream as the render goes on
    from there: the geometry alone, no renderer (a row's plate label, :func:`plate_view`, needs no render)."""
    rng = derive_rng(seed, "pbr-detail")
    car = car_mesh(body_type, int(rng.integers(SHAPE_VARIANTS)), int(rng.integers(LOOKS)))
    return car, place_detail_camera(part, car, rng, size), rng


def render_exterior(family: str, flank: str | None, body_type: str, seed: int, size: tuple[int, int], *,
                    paint_rgb: tuple[int, int, int], plate_style: str, plate_seed: int,
                    samples: int = DEFAULT_SAMPLES, denoise: bool = True, yaw_band: str = "narrow") -> PbrPhoto:
    """Path-trace one exterior photo of the shot ``family`` (``full_front``, ``front_3q``, ``side``,
    ``rear_3q``, ``full_rear``).

    Args:
        flank: The car's flank the camera sees (``left`` | ``right``; head-on views: ignored, a random
            small offset either way).
        seed: Every other choice (proportions, details, scene, camera) derives from it.
        size: (width, height) of the photo.
        paint_rgb: The car's paint (sRGB 0-255).
        plate_style, plate_seed: The plate (:func:`fleetvision.synth.overlays.plate_look`).
        samples: Samples per pixel.
        denoise: Take the path-tracing grain out (:func:`_denoised`, a guide pass of its own); False keeps
            only the 3 x 3 median against fireflies (for comparisons: ``bench_render_realism.py``).
        yaw_band: ``narrow`` | ``class``: how far the camera's yaw strays from the view's (:func:`place_camera`).

    Raises:
        ValueError: Unknown family, body type or yaw band, bad flank or size.
        PbrUnavailableError: Mitsuba is not installed.
    """
    from fleetvision.synth.overlays import plate_text

    if family not in VIEW_YAW:
        raise ValueError(f"family must be one of {sorted(VIEW_YAW)}, got {family!r}")
    if body_type not in BODY_SHAPES:
        raise ValueError(f"unknown body type {body_type!r}")
    if flank not in ("left", "right", None):
        raise ValueError(f"flank must be 'left', 'right' or None, got {flank!r}")
    if min(size) < 16:
        raise ValueError(f"size must be at least 16 x 16, got {size}")
    if yaw_band not in YAW_BANDS:
        raise ValueError(f"yaw_band must be one of {sorted(YAW_BANDS)}, got {yaw_band!r}")
    mi = mitsuba()
    car, camera, rng = exterior_scene(family, flank, body_type, seed, size, yaw_band)
    look = plate_look(rng, plate_style, plate_text(derive_rng(plate_seed, "pbr-plate"), plate_style))
    image = _path_traced(mi, car, camera, rng, paint_rgb=paint_rgb, look=look, plate_style=plate_style, seed=seed,
                         samples=samples, denoise=denoise, beside=family != "side")
    return PbrPhoto(image, flank if family in SIDED_FAMILIES else None,
                    plate_view(car, camera, PLATE_SIZE_M[plate_style]))


def exterior_scene(family: str, flank: str | None, body_type: str, seed: int, size: tuple[int, int],
                   yaw_band: str = "narrow") -> tuple[CarMesh, Camera, np.random.Generator]:
    """The car and camera of :func:`render_exterior`'s photo, and its random stream as the render goes on
    from there: the geometry alone, no renderer. The camera is placed first: the neighbours are kept out of
    its way."""
    rng = derive_rng(seed, "pbr")
    car = car_mesh(body_type, int(rng.integers(SHAPE_VARIANTS)), int(rng.integers(LOOKS)))
    return car, place_camera(family, flank, car.shape, rng, size, yaw_band), rng


def shot_scene(subject: str, flank: str | None, body_type: str, seed: int, size: tuple[int, int],
               yaw_band: str = "narrow") -> tuple[CarMesh, Camera, np.random.Generator]:
    """The geometry of :func:`render_shot`'s photo of ``subject``: :func:`detail_scene` for one of the car's
    parts (:data:`DETAIL_PARTS`; ``flank`` and ``yaw_band`` unused), else :func:`exterior_scene` for a view family."""
    if subject in DETAIL_PARTS:
        return detail_scene(subject, body_type, seed, size)
    return exterior_scene(subject, flank, body_type, seed, size, yaw_band)


def render_shot(subject: str, flank: str | None, body_type: str, seed: int, size: tuple[int, int], *,
                paint_rgb: tuple[int, int, int], plate_style: str, plate_seed: int, samples: int = DEFAULT_SAMPLES,
                denoise: bool = True, yaw_band: str = "narrow") -> PbrPhoto:
    """Path-trace ``subject``: a close-up (:func:`render_detail`) of one of the car's parts
    (:data:`DETAIL_PARTS`; ``flank`` and ``yaw_band`` unused), else an exterior (:func:`render_exterior`) of
    that view family. Its plate label is :func:`plate_view` of :func:`shot_scene`'s geometry."""
    if subject in DETAIL_PARTS:
        return render_detail(subject, body_type, seed, size, paint_rgb=paint_rgb, plate_style=plate_style,
                             plate_seed=plate_seed, samples=samples, denoise=denoise)
    return render_exterior(subject, flank, body_type, seed, size, paint_rgb=paint_rgb, plate_style=plate_style,
                           plate_seed=plate_seed, samples=samples, denoise=denoise, yaw_band=yaw_band)


def _path_traced(mi: Any, car: CarMesh, camera: Camera, rng: np.random.Generator, *, paint_rgb: tuple[int, int, int],
                 look: Any, plate_style: str, seed: int, samples: int, denoise: bool, beside: bool) -> Image.Image:
    """Path-trace ``car`` at the origin, painted ``paint_rgb`` with the plate ``look``, seen by ``camera``:
    0-2 parked neighbours (``beside`` it, or ahead and behind it for side views), sky, sun, ground and walls
    from ``rng``; the tone-mapped photo."""
    from fleetvision.synth.overlays import plate_text

    plate_m = PLATE_SIZE_M[plate_style]
    t = mi.ScalarTransform4f
    with tempfile.TemporaryDirectory(prefix="fv-pbr-") as folder:
        b = CarScene(folder)
        b.scene["integrator"] = {"type": "path", "max_depth": 3}
        b.car(mi, car, rng, srgb_to_linear(paint_rgb), "car", (0.0, 0.0), 0.0, plate_texture(look, 44), plate_m,
              lettering_rng=derive_rng(seed, "pbr-lettering"))  # its own stream: the rest of the scene unchanged
        for k, side_sign in enumerate((-1.0, 1.0)):
            if rng.random() >= 0.55:
                continue
            other = car_mesh(str(rng.choice(sorted(BODY_SHAPES))), int(rng.integers(SHAPE_VARIANTS)),
                             int(rng.integers(LOOKS)))
            if not beside:
                offset = (side_sign * float(rng.uniform(5.0, 6.0)), float(rng.uniform(-0.5, 0.5)))
            else:
                offset = (float(rng.uniform(-0.8, 0.8)), side_sign * float(rng.uniform(2.3, 3.0)))
            colour = rng.uniform(0.02, 0.8, 3)
            turned = 180.0 * float(rng.random() < 0.3)
            # never between the camera and the car, nor nearer the camera than the car: a neighbour
            # that fills the frame would be labelled with the main car's view and body type
            if math.hypot(camera.origin[0] - offset[0], camera.origin[1] - offset[1]) < \
                    math.hypot(camera.origin[0], camera.origin[1]) - 0.5:
                continue
            other_look = plate_look(rng, plate_style, plate_text(rng, plate_style))
            b.car(mi, other, rng, colour, f"n{k}", offset, turned, plate_texture(other_look, 44), plate_m)
        add_outdoor_light(b, mi, rng)
        for i in range(int(rng.integers(0, 5))):  # walls, pillars, buildings: away from the car and camera
            ang, rad = rng.uniform(0, 2 * np.pi), rng.uniform(9, 16)
            b.scene[f"box{i}"] = {
                "type": "cube",
                "to_world": t().translate([float(rad * np.cos(ang)), float(rad * np.sin(ang)), 1.5])
                .scale([float(rng.uniform(0.3, 3)), float(rng.uniform(0.3, 3)), 1.5]),
                "bsdf": principled(rng.uniform(0.15, 0.5) * rng.uniform(0.8, 1.2, 3), 0.6)}
        b.scene["sensor"] = sensor(mi, camera, samples, seed)
        return develop(mi, b.scene, samples, denoise, rng)
