"""What both exterior renderers share: each body type's proportions and where the camera stands for each view.

The painter (:mod:`fleetvision.synth.exterior`) and the path tracer (:mod:`fleetvision.synth.pbr_car`,
:mod:`fleetvision.synth.pbr_scene`) build the same cars from :func:`car_shape` and aim at the same yaws
(:data:`VIEW_YAW` with a :data:`YAW_BANDS` jitter), so a class means the same thing in either's photos.

World frame: ``x`` forward (the nose at ``+x``), ``y`` to the car's left, ``z`` up, metres, the ground at
``z = 0``. Yaw 0 looks at the nose, +90 at the car's left side, 180 at the tail.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class BodyShape:
    """Proportions of one body type (metres)."""

    length: float
    width: float
    clearance: float  # bottom of the body
    nose_z: float  # top of the front face
    belt_z: float  # top of the lower body (window line)
    hood: float  # bonnet length
    cabin_base: tuple[float, float]  # cabin x range at the belt (rear, front)
    cabin_roof: tuple[float, float]  # roof x range (rear, front)
    roof_z: float
    wheel_r: float
    wheel_x: tuple[float, float]  # rear, front axle x
    doors: int = 4
    rear_windows: bool = True
    tray: bool = False


BODY_SHAPES: dict[str, BodyShape] = {
    "sedan": BodyShape(4.7, 1.80, 0.20, 0.66, 0.90, 1.20, (-1.45, 1.15), (-0.80, 0.40), 1.45, 0.32, (-1.40, 1.45)),
    "hatch": BodyShape(4.1, 1.75, 0.19, 0.66, 0.88, 1.00, (-1.98, 1.05), (-1.72, 0.30), 1.48, 0.31, (-1.30, 1.30)),
    "wagon": BodyShape(4.8, 1.80, 0.20, 0.66, 0.90, 1.15, (-2.33, 1.25), (-2.20, 0.50), 1.50, 0.32, (-1.50, 1.50)),
    "suv": BodyShape(4.7, 1.90, 0.30, 0.86, 1.10, 1.20, (-2.28, 1.15), (-2.15, 0.40), 1.75, 0.38, (-1.40, 1.42)),
    "ute": BodyShape(5.3, 1.90, 0.32, 0.88, 1.12, 1.30, (-0.60, 1.35), (-0.55, 0.55), 1.82, 0.38, (-1.70, 1.60),
                     tray=True),
    "van": BodyShape(5.0, 1.95, 0.26, 0.92, 1.05, 0.60, (-2.50, 1.90), (-2.50, 1.20), 2.25, 0.34, (-1.60, 1.75),
                     rear_windows=False),
    "coupe": BodyShape(4.5, 1.85, 0.17, 0.60, 0.82, 1.40, (-1.50, 0.85), (-0.70, 0.15), 1.32, 0.33, (-1.35, 1.40),
                       doors=2),
}

SHAPE_VARIANTS = 6  # proportion variants per body type (a car's look picks one)
VIEW_YAW: dict[str, float] = {"full_front": 0.0, "front_3q": 45.0, "side": 90.0, "rear_3q": 135.0,
                              "full_rear": 180.0}
"""Each exterior shot family's camera yaw, degrees (0: at the nose; the side's sign is set per photo)."""
VIEW_YAW_JITTER: dict[str, float] = {"full_front": 9.0, "full_rear": 9.0, "front_3q": 10.0, "rear_3q": 10.0,
                                     "side": 7.0}
"""How far either way a photo's yaw strays from :data:`VIEW_YAW`, degrees (uniform); both renderers use it."""
CLASS_YAW_JITTER: dict[str, float] = {"full_front": 20.0, "full_rear": 20.0, "front_3q": 25.0, "rear_3q": 25.0,
                                      "side": 20.0}
"""The whole band each view's label covers (head-on and side +-20 degrees, three-quarters 20-70 and 110-160):
the bands meet, so every yaw around the car belongs to one view, as on real photos, which are taken from
anywhere. :data:`VIEW_YAW_JITTER` keeps to the middle of each band (clean, typical examples)."""
YAW_BANDS: dict[str, dict[str, float]] = {"narrow": VIEW_YAW_JITTER, "class": CLASS_YAW_JITTER}
"""The yaw jitter tables by name (``synth.train_yaw_band``; :func:`fleetvision.synth.photo_spec.sample_spec`)."""


@lru_cache(maxsize=64)
def car_shape(body_type: str, variant: int = 0) -> BodyShape:
    """The proportions of one car: the body type's, stretched by a small per-variant jitter.

    Variant 0 is the body type as listed in ``BODY_SHAPES``; others scale length, width, roof height,
    bonnet, wheels and cabin position by a few percent, so cars of one type differ but stay that type.

    Raises:
        KeyError: Unknown body type.
    """
    s = BODY_SHAPES[body_type]
    if variant % SHAPE_VARIANTS == 0:
        return s
    rng = np.random.Generator(np.random.PCG64(1000 * (variant % SHAPE_VARIANTS) + len(body_type)))
    lo, hi = [0.94, 0.96, 0.95, 0.88, 0.92], [1.06, 1.04, 1.05, 1.12, 1.1]
    lx, wy, hz, hood, wr = (float(v) for v in rng.uniform(lo, hi))
    slope = float(rng.uniform(-0.12, 0.12))  # cabin leans forward/back: a faster or more upright windscreen

    def x(v: float) -> float:
        return v * lx

    roof = s.clearance + (s.roof_z - s.clearance) * hz
    return BodyShape(
        length=s.length * lx, width=s.width * wy, clearance=s.clearance, nose_z=s.nose_z, belt_z=s.belt_z,
        hood=s.hood * hood * lx, cabin_base=(x(s.cabin_base[0]), x(s.cabin_base[1])),
        cabin_roof=(x(s.cabin_roof[0]) + slope * (0.0 if s.rear_windows is False else 1.0), x(s.cabin_roof[1]) + slope),
        roof_z=max(roof, s.belt_z + 0.3), wheel_r=s.wheel_r * wr, wheel_x=(x(s.wheel_x[0]), x(s.wheel_x[1])),
        doors=s.doors, rear_windows=s.rear_windows, tray=s.tray,
    )
