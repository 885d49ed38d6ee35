"""Where the path tracer's camera stands and what it sees of the car: pure geometry, no renderer.

:func:`place_camera` places the photographer of an exterior view, :func:`place_detail_camera` the one of a
close-up of a lamp or a wheel; :func:`plate_view` projects the car's plates into the photo, which is the
plate label of a path-traced row. :mod:`fleetvision.synth.pbr_scene` renders what these cameras see.

World frame (as in :mod:`fleetvision.synth.car_geometry`): ``x`` forward (the nose at ``+x``), ``y`` to
the car's left, ``z`` up, metres, the ground at ``z = 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fleetvision.synth.car_geometry import VIEW_YAW, YAW_BANDS, BodyShape
from fleetvision.synth.pbr_car import CarMesh

SIDED_FAMILIES = frozenset({"front_3q", "side", "rear_3q"})
"""The shot families that show one flank of the car (head-on views show neither)."""
CAMERA_RANGE_M = (1.3, 5.0)
"""The camera's distance from the car's surface, metres (drawn log-uniform: mostly close, as phone photos are)."""
CAMERA_HEIGHT_M = (0.6, 1.3)
"""The camera's height above the ground, metres: a crouching to chest-high photographer. It was 0.7-1.9 m
until session 29: from 0.6-1.3 m an ImageNet classifier sees the renders as cars more often (car mass
0.368 against 0.319 on 70 renders; 0.439 against 0.421 on a whole training set, full rear 0.331 against
0.276); heads trained on them are no worse on real photos and no better once the dev set's many full rears are
weighed out (view recall averaged over the families 0.630 against 0.632; docs/models.md, *A lower camera*)."""
LENS_DEG = (45.0, 72.0)
"""The horizontal field of view, degrees (a phone's main camera is about 65-70)."""
DETAIL_PARTS = ("headlight", "tail_light", "wheel")
"""The detail classes :func:`fleetvision.synth.pbr_scene.render_detail` path-traces as close-ups of the car's
own parts."""
DETAIL_FRAME_M = {"headlight": (0.4, 0.9), "tail_light": (0.4, 0.9), "wheel": (0.9, 1.6)}
"""How wide a scene a detail close-up frames at its part, metres (log-uniform): the camera stands where its
lens spans that much, so the part fills a half to most of the photo whatever the lens. Wider, a headlight's
close-up showed the grille and the plate and read as a head-on front (real close fronts were then called
headlights: docs/models.md, *Lamp and wheel close-ups*)."""
MIN_DETAIL_DISTANCE_M = 0.3
"""The camera stays at least this far from the part."""


@dataclass(frozen=True)
class Camera:
    """A pinhole camera as Mitsuba's ``perspective`` sensor sees it (horizontal field of view)."""

    origin: np.ndarray
    target: np.ndarray
    fov_x_deg: float
    size: tuple[int, int]

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(left, up, forward) unit vectors; Mitsuba's camera space is +x left, +y up, +z forward."""
        forward = self.target - self.origin
        forward = forward / np.linalg.norm(forward)
        left = np.cross([0.0, 0.0, 1.0], forward)
        left = left / np.linalg.norm(left)
        return left, np.cross(forward, left), forward

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points [N, 3] -> image coordinates [N, 2] normalised to 0..1 (x right, y down); NaN behind."""
        left, up, forward = self.axes()
        rel = np.asarray(points, float) - self.origin
        depth = rel @ forward
        tan_x = math.tan(math.radians(self.fov_x_deg) / 2)
        tan_y = tan_x * self.size[1] / self.size[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = 0.5 - 0.5 * (rel @ left) / depth / tan_x
            v = 0.5 - 0.5 * (rel @ up) / depth / tan_y
        out = np.stack([u, v], 1)
        out[depth <= 0.05] = np.nan
        return out


def place_camera(family: str, flank: str | None, shape: BodyShape, rng: np.random.Generator,
                 size: tuple[int, int], yaw_band: str = "narrow") -> Camera:
    """Where the photographer stands for a ``family`` shot of a car of ``shape`` (centred at the origin,
    nose at ``+x``): the shot's yaw with its jitter, on the ``flank`` side (``left`` is ``+y``; head-on
    views: either side at random), :data:`CAMERA_RANGE_M` from the car's surface (log-uniform: mostly
    close), :data:`CAMERA_HEIGHT_M` high, aimed near the body's middle, a :data:`LENS_DEG` lens. The yaw's
    jitter is the ``yaw_band`` table's (:data:`~fleetvision.synth.car_geometry.YAW_BANDS`)."""
    sided = family in SIDED_FAMILIES
    sign = (1.0 if flank == "left" else -1.0) if sided else \
        (1.0 if rng.random() < 0.5 else -1.0)
    yaw = math.radians(sign * (VIEW_YAW[family] + float(rng.uniform(-1, 1)) * YAW_BANDS[yaw_band][family]))
    direction = np.array([math.cos(yaw), math.sin(yaw)])
    extent = abs(direction[0]) * shape.length / 2 + abs(direction[1]) * shape.width / 2
    distance = extent + math.exp(rng.uniform(*np.log(CAMERA_RANGE_M)))
    origin = np.array([direction[0] * distance, direction[1] * distance, rng.uniform(*CAMERA_HEIGHT_M)])
    target = np.array([rng.normal(0, 0.15), rng.normal(0, 0.15), rng.uniform(0.4, 0.9)])
    return Camera(origin, target, float(rng.uniform(*LENS_DEG)), size)


def detail_anchor(car: CarMesh, part: str, sign: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Where ``part`` (one of :data:`DETAIL_PARTS`) is on the car's ``sign`` flank (+1 left, -1 right) and
    the horizontal direction a photographer of it stands in: (point [3], unit vector [3]). Lamps are the
    lamp meshes' own corner (the mean of their vertices more than 0.15 of the car's width towards that
    flank and within 0.4 m of the end), seen
    from ahead of (behind) the car turned up to 65 degrees towards the flank; a wheel is one of its wheels'
    hubs, seen from the flank within 40 degrees of square on.

    Raises:
        ValueError: ``part`` is not a detail part or ``sign`` not +-1, or the lamp has nothing on that flank.
    """
    if part not in DETAIL_PARTS:
        raise ValueError(f"part must be one of {DETAIL_PARTS}, got {part!r}")
    if sign not in (1.0, -1.0):
        raise ValueError(f"sign must be +1 or -1, got {sign}")
    s = car.shape
    if part == "wheel":
        wx = float(s.wheel_x[int(rng.integers(len(s.wheel_x)))])
        a = math.radians(float(rng.uniform(-40.0, 40.0)))
        return np.array([wx, sign * (s.width / 2 - 0.08), s.wheel_r]), np.array([math.sin(a), sign * math.cos(a), 0.0])
    # the whole lamp: a tail lamp's red section alone can sit on one side only (its clear and amber sections
    # cut from the rest), which once left a flank with no vertex to aim at and rendered a black photo
    verts = car.lamp_vertices("front" if part == "headlight" else "rear")
    end = 1.0 if part == "headlight" else -1.0
    x = verts[:, 0] * end
    corner = verts[(verts[:, 1] * sign > 0.15 * s.width) & (x > x.max() - 0.4)]
    pool = corner if len(corner) else verts[verts[:, 1] * sign > 0]
    if not len(pool):
        raise ValueError(f"no place for a {part} close-up on this car: its lamp has nothing on the "
                         f"{'left' if sign > 0 else 'right'} flank")
    point = pool.mean(axis=0).astype(np.float64)
    a = math.radians(float(rng.uniform(0.0, 65.0)))
    return point, np.array([end * math.cos(a), sign * math.sin(a), 0.0])


def place_detail_camera(part: str, car: CarMesh, rng: np.random.Generator, size: tuple[int, int]) -> Camera:
    """A close-up of ``part`` on a random flank (:func:`detail_anchor`) with a :data:`LENS_DEG` lens, as far
    from it as frames :data:`DETAIL_FRAME_M` of the scene there (at least :data:`MIN_DETAIL_DISTANCE_M`); a
    lamp seen from a little below it to half the distance above, a wheel from 0.35-1.1 m high; aimed near
    the part."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    point, direction = detail_anchor(car, part, sign, rng)
    fov = float(rng.uniform(*LENS_DEG))
    frame = math.exp(rng.uniform(*np.log(DETAIL_FRAME_M[part])))
    distance = max(MIN_DETAIL_DISTANCE_M, frame / (2 * math.tan(math.radians(fov) / 2)))
    origin = point + direction * distance
    rise = float(rng.uniform(-0.15, 0.5)) * distance
    origin[2] = float(rng.uniform(0.35, 1.1)) if part == "wheel" else max(0.25, point[2] + rise)
    target = point + rng.normal(0.0, 0.03 * distance, 3)
    if not (np.isfinite(origin).all() and np.isfinite(target).all()):
        raise ValueError(f"no place for a {part} close-up on this car: camera {origin} aimed at {target}")
    return Camera(origin, target, fov, size)


PLATE_FACING_CLEAR = 0.35
"""A plate is labelled (its box) when the camera is at least this far in front of it: the cosine between the
plate's normal and the way to the camera (0.35: within about 70 degrees of square on) ..."""
PLATE_FACING_SEEN = 0.2
"""... and is still in view, a slanted sliver, down to this cosine (about 78 degrees): between the two the
label is *unsure*."""
PLATE_IN_FRAME_CLEAR = 0.5
"""A labelled plate has at least this share of its area in the frame ..."""
PLATE_IN_FRAME_SEEN = 0.05
"""... and a plate with at least this share in the frame, but less than the above, is *unsure*."""


@dataclass(frozen=True)
class PlateView:
    """What a photo shows of the main car's plates: its plate label.

    Attributes:
        box: (x0, y0, x1, y1) normalised and clipped, of the plate that faces the camera clearly enough to
            read (:data:`PLATE_FACING_CLEAR`) with at least :data:`PLATE_IN_FRAME_CLEAR` of it in the frame;
            None otherwise.
        unsure: No box, but a plate is partly in view: seen at a slant (:data:`PLATE_FACING_SEEN` up to
            :data:`PLATE_FACING_CLEAR`) or only partly in the frame (:data:`PLATE_IN_FRAME_SEEN` up to
            :data:`PLATE_IN_FRAME_CLEAR`). Neither "a plate here" nor "no plate" is right for such a photo,
            and "no plate" taught the plate head that a plainly visible plate is none (a lamp's close-up with
            the plate at its edge, a 3/4 view with the plate cut by the frame): the training row says
            *unknown* (``plate_present`` -1), which no plate loss reads.
    """

    box: tuple[float, float, float, float] | None
    unsure: bool = False


def plate_view(car: CarMesh, camera: Camera, plate_m: tuple[float, float]) -> PlateView:
    """The main car's plate label in ``camera``'s photo (:class:`PlateView`): the box of the plate that faces
    the camera best among those clearly in view; else whether any plate is partly in view. Plates are not
    tested for being hidden (by the car's own body or a neighbour): the cameras see a car's end from the
    front half-space of its plate."""
    best = None
    unsure = False
    for end in car.plate_mounts:
        sgn = 1.0 if end == "front" else -1.0
        centre = car.plate_centre(end)
        to_camera = camera.origin - centre
        facing = sgn * to_camera[0] / np.linalg.norm(to_camera)
        if facing < PLATE_FACING_SEEN:
            continue
        w, h = plate_m
        corners = centre + np.array([[0, -w / 2, -h / 2], [0, w / 2, -h / 2], [0, w / 2, h / 2], [0, -w / 2, h / 2]])
        uv = camera.project(corners)
        if np.isnan(uv).any():
            continue
        x0, y0 = uv.min(0)
        x1, y1 = uv.max(0)
        area = (x1 - x0) * (y1 - y0)
        cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, 1.0), min(y1, 1.0)
        if area <= 0 or cx1 <= cx0 or cy1 <= cy0:
            continue
        in_frame = (cx1 - cx0) * (cy1 - cy0) / area
        if in_frame < PLATE_IN_FRAME_SEEN:
            continue
        if facing < PLATE_FACING_CLEAR or in_frame < PLATE_IN_FRAME_CLEAR:
            unsure = True
            continue
        if best is None or facing > best[0]:
            best = (facing, (float(cx0), float(cy0), float(cx1), float(cy1)))
    return PlateView(best[1], False) if best is not None else PlateView(None, unsure)
