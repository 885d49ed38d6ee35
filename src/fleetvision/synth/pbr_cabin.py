"""Car interiors path-traced by Mitsuba 3: a cabin with a dashboard, instrument cluster, screen, steering
wheel, console, seats and belts, lit by the sky through its glass.

Why: the painter draws interiors as flat 2D compositions (:mod:`fleetvision.synth.interiors`). A linear
probe on frozen ImageNet features trained on painted shots named the shot group (exterior, interior,
detail) of real photos 0.62 of the time (issue 10), and path-traced exteriors moved the same kind of probe's
view accuracy from 0.24 to 0.64 (docs/models.md, *Physically based exteriors*). A real interior photo is a
dim cabin of rounded, grained shapes under bright windows; a flat drawing is not.

The geometry (:func:`cabin_geometry`, :func:`place_cabin_camera`) is pure numpy and tested without a
renderer; :func:`render_cabin` path-traces it. Coordinates as the exteriors': x forward, y to the car's
left, z up, metres; the driver sits on the market's side (``driver_side``).

What varies per photo (domain randomisation): cabin size by body type, trim (the listing's trim colour,
leather or cloth, light or dark headliner), the cluster's and screen's drawings and whether they are lit,
doors open on the camera's side, the sky, the sun and the ground outside, the camera (place, aim, lens).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from fleetvision.synth.car_geometry import BODY_SHAPES
from fleetvision.synth.pbr_camera import Camera, PlateView
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
from fleetvision.synth.pbr_shapes import Mesh, box_mesh, merge, strap_mesh, superellipsoid_mesh, torus_mesh
from fleetvision.synth.rng import derive_rng

CABIN_PARTS = ("dashboard", "steering_wheel", "instrument_cluster", "centre_console", "infotainment_screen",
               "front_seats", "rear_seats", "passenger_seat", "door_trim")
"""The interior shots the path tracer draws (taxonomy class names); ``boot`` stays painted."""

FLOOR_Z = 0.25


@dataclass(frozen=True)
class Cabin:
    """A cabin's layout and meshes by material.

    Attributes:
        half_width: Inner half width (the door panels' inner face), m.
        belt_z: The window line (the dashboard's top).
        roof_z: The headliner.
        driver_y: The driver's seat centre (+ left-hand drive's left, - right-hand drive).
        parts: Material name -> mesh (``trim``, ``seat``, ``dark``, ``carpet``, ``headliner``, ``chrome``,
            ``belt``, ``glass``).
        anchors: Where each of :data:`CABIN_PARTS` is (the point a photo of it is aimed at).
        cluster, screen: (centre, width, height) of the instrument cluster's and screen's faces (facing -x).
        open_sides: The sides (+1 left, -1 right) whose doors are open (no panel, no glass).
    """

    half_width: float
    belt_z: float
    roof_z: float
    driver_y: float
    parts: dict[str, Mesh]
    anchors: dict[str, np.ndarray]
    cluster: tuple[np.ndarray, float, float]
    screen: tuple[np.ndarray, float, float]
    open_sides: tuple[float, ...] = field(default=())


def cabin_geometry(body_type: str, driver_side: str, rng: np.random.Generator,
                   open_sides: tuple[float, ...] = ()) -> Cabin:
    """The cabin of a car of ``body_type`` (its proportions from :data:`BODY_SHAPES`), the wheel on the
    ``driver_side`` (``left`` | ``right``); doors open on ``open_sides``.

    Raises:
        ValueError: Unknown body type or driver side.
    """
    if body_type not in BODY_SHAPES:
        raise ValueError(f"unknown body type {body_type!r}")
    if driver_side not in ("left", "right"):
        raise ValueError(f"driver_side must be 'left' or 'right', got {driver_side!r}")
    shape = BODY_SHAPES[body_type]
    w = shape.width / 2 - 0.15 + float(rng.uniform(-0.03, 0.03))
    belt = shape.belt_z + 0.05 + float(rng.uniform(-0.03, 0.05))
    roof = shape.roof_z - 0.08 + float(rng.uniform(-0.03, 0.02))
    dy = (1.0 if driver_side == "left" else -1.0) * float(rng.uniform(0.34, 0.40))
    seat_y = abs(dy)
    parts: dict[str, list[Mesh]] = {k: [] for k in ("trim", "seat", "dark", "carpet", "headliner", "chrome", "belt")}
    parts["carpet"].append(box_mesh((0.0, 0.0, FLOOR_Z - 0.03), (1.7, w + 0.05, 0.03)))
    parts["headliner"].append(box_mesh((-0.2, 0.0, roof + 0.03), (1.4, w + 0.08, 0.03)))
    for side in (1.0, -1.0):
        if side in open_sides:
            continue
        low = (FLOOR_Z + belt) / 2, (belt - FLOOR_Z) / 2  # below the window line: centre, half height
        parts["trim"].append(box_mesh((-0.1, side * (w + 0.04), low[0]), (1.3, 0.04, low[1])))
        parts["trim"].append(superellipsoid_mesh((0.35, side * (w - 0.02), 0.72), (0.28, 0.06, 0.035), 0.4))
        parts["trim"].append(superellipsoid_mesh((-0.7, side * (w - 0.02), 0.72), (0.25, 0.06, 0.035), 0.4))
        parts["dark"].append(superellipsoid_mesh((0.55, side * (w + 0.005), 0.45), (0.08, 0.02, 0.08), 0.8))
        parts["chrome"].append(box_mesh((0.6, side * (w - 0.005), 0.82), (0.05, 0.012, 0.012)))
        for x0 in (0.0, -1.15):  # B and C pillars
            parts["trim"].append(box_mesh((x0, side * (w + 0.02), (belt + roof) / 2), (0.06, 0.05, (roof - belt) / 2)))
    # the A pillars run up the windscreen's edges
    screen_base, screen_top = np.array([1.08, 0.0, belt + 0.02]), np.array([0.42, 0.0, roof])
    for side in (1.0, -1.0):
        across = np.array([0.0, side * (w - 0.02), 0.0])
        parts["trim"].append(strap_mesh(screen_base + across, screen_top + across, 0.05, 0.03))
    # dashboard: a rounded slab across the car, a hood over the cluster, vents, the centre stack
    parts["trim"].append(superellipsoid_mesh((1.3, 0.0, belt - 0.17), (0.36, w + 0.02, 0.19), 0.3))
    parts["dark"].append(superellipsoid_mesh((1.0, dy, belt + 0.01), (0.08, 0.2, 0.04), 0.5))
    for vy in (dy * 1.55, dy * 0.25, -dy * 0.25, -dy * 1.55):
        parts["dark"].append(box_mesh((0.955, vy, belt - 0.12), (0.01, 0.06, 0.03)))
    parts["trim"].append(box_mesh((0.9, 0.0, 0.55), (0.12, 0.13, 0.28)))
    low = (FLOOR_Z + belt) / 2, (belt - FLOOR_Z) / 2
    parts["carpet"].append(box_mesh((1.55, 0.0, low[0]), (0.05, w + 0.05, low[1])))  # the firewall
    cluster_c = np.array([0.93, dy, belt - 0.09])
    screen_w, screen_h = float(rng.uniform(0.2, 0.3)), float(rng.uniform(0.12, 0.17))
    screen_c = np.array([0.905 if rng.random() < 0.5 else 0.79, 0.0, belt - 0.16 if screen_h < 0.15 else belt - 0.05])
    # steering wheel: rim, hub, three spokes, column
    tilt = math.radians(float(rng.uniform(18, 30)))
    axis = np.array([-math.cos(tilt), 0.0, math.sin(tilt)])
    wheel_c = np.array([0.74, dy, belt - 0.1])
    r = float(rng.uniform(0.17, 0.19))
    parts["seat"].append(torus_mesh(wheel_c, axis, r, float(rng.uniform(0.014, 0.019))))
    hub = wheel_c + 0.02 * axis
    parts["dark"].append(superellipsoid_mesh(hub, (0.04, 0.08, 0.07), 0.6, pitch=-tilt))
    down = np.cross(axis, [0.0, 1.0, 0.0])  # in the rim's plane, towards 6 o'clock as the driver sees it
    down /= np.linalg.norm(down)
    side_dir = np.array([0.0, 1.0, 0.0])
    for d in (side_dir, -side_dir, down):  # spokes at 3, 9 and 6 o'clock
        parts["dark"].append(strap_mesh(hub, wheel_c + r * d, 0.025, 0.01))
    parts["dark"].append(strap_mesh(wheel_c - 0.02 * axis, wheel_c - 0.3 * axis, 0.035, 0.035))
    # console between the front seats, gear lever
    parts["trim"].append(box_mesh((0.3, 0.0, 0.45), (0.45, 0.11, 0.12)))
    parts["dark"].append(strap_mesh((0.62, 0.0, 0.57), (0.6, 0.0, 0.68), 0.01, 0.01))
    knob = superellipsoid_mesh((0.6, 0.0, 0.7), (0.03, 0.03, 0.035), 0.9)
    parts["chrome" if rng.random() < 0.3 else "seat"].append(knob)
    # front seats: cushion, back leaning back, headrest; belts from the B pillars
    lean = math.radians(float(rng.uniform(12, 22)))
    for y in (seat_y, -seat_y):
        parts["seat"].append(superellipsoid_mesh((0.25, y, 0.46), (0.26, 0.24, 0.08), 0.35))
        back_c = np.array([-0.05 - 0.33 * math.sin(lean), y, 0.58 + 0.33 * math.cos(lean)])
        parts["seat"].append(superellipsoid_mesh(back_c, (0.07, 0.25, 0.33), 0.35, pitch=-lean))
        head_c = back_c + np.array([-0.38 * math.sin(lean) - 0.03, 0.0, 0.38 * math.cos(lean) + 0.08])
        parts["seat"].append(superellipsoid_mesh(head_c, (0.05, 0.13, 0.09), 0.5))
        outer = math.copysign(w - 0.03, y)
        parts["belt"].append(strap_mesh((0.0, outer, belt + 0.2), (0.05, y * 0.3, 0.52), 0.024))
    # rear bench
    rear_x = -0.78 if shape.rear_windows else -0.65
    parts["seat"].append(superellipsoid_mesh((rear_x, 0.0, 0.47), (0.27, w - 0.06, 0.09), 0.35))
    back_c = np.array([rear_x - 0.32, 0.0, 0.8])
    parts["seat"].append(superellipsoid_mesh(back_c, (0.08, w - 0.06, 0.3), 0.35, pitch=-lean))
    for y in (0.0, seat_y, -seat_y) if rng.random() < 0.6 else (seat_y, -seat_y):
        parts["seat"].append(superellipsoid_mesh(back_c + np.array([-0.12, y, 0.38]), (0.05, 0.12, 0.08), 0.5))
    parts["trim"].append(box_mesh((rear_x - 0.55, 0.0, belt - 0.02), (0.12, w, 0.02)))  # the parcel shelf
    anchors = {
        "dashboard": np.array([1.05, 0.0, belt - 0.08]),
        "steering_wheel": wheel_c,
        "instrument_cluster": cluster_c,
        "centre_console": np.array([0.5, 0.0, 0.58]),
        "infotainment_screen": screen_c,
        "front_seats": np.array([0.05, 0.0, 0.8]),
        "rear_seats": np.array([rear_x - 0.1, 0.0, 0.65]),
        "passenger_seat": np.array([0.15, -dy, 0.7]),
        "door_trim": np.array([0.2, 0.0, 0.7]),
    }
    meshes = {k: merge(v) for k, v in parts.items() if v}
    return Cabin(w, belt, roof, dy, meshes, anchors, (cluster_c, 0.3, 0.12), (screen_c, screen_w, screen_h),
                 tuple(open_sides))


def cabin_open_sides(part: str, driver_side: str, rng: np.random.Generator) -> tuple[float, ...]:
    """The sides whose doors stand open for a photo of ``part``: where the photographer stands outside the
    car (the passenger's door for ``passenger_seat``, a rear door for half the ``rear_seats`` shots, the
    driver's for some ``steering_wheel`` and ``door_trim`` shots), else a door open for light at times."""
    driver = 1.0 if driver_side == "left" else -1.0
    if part == "passenger_seat":
        return (-driver,)
    if part in ("rear_seats", "steering_wheel", "door_trim") and rng.random() < 0.5:
        return (driver if part != "rear_seats" else float(rng.choice([-1.0, 1.0])),)
    return (float(rng.choice([-1.0, 1.0])),) if rng.random() < 0.25 else ()


def place_cabin_camera(part: str, cabin: Cabin, rng: np.random.Generator, size: tuple[int, int]) -> Camera:
    """Where the photographer of ``part`` stands: inside the cabin, or outside an open door, aimed near the
    part's anchor; a wide lens for the whole cabin, a narrower one for a close-up.

    Raises:
        ValueError: ``part`` is not one of :data:`CABIN_PARTS`.
    """
    if part not in CABIN_PARTS:
        raise ValueError(f"part must be one of {CABIN_PARTS}, got {part!r}")
    u = rng.uniform
    w, dy, a = cabin.half_width, cabin.driver_y, cabin.anchors[part]
    outside = cabin.open_sides[0] if cabin.open_sides else None
    if part == "dashboard":
        origin, fov = np.array([u(-0.55, 0.05), u(-0.2, 0.2), u(1.05, cabin.roof_z - 0.08)]), u(62, 80)
    elif part == "steering_wheel":
        origin = (np.array([u(0.3, 0.6), outside * (w + u(0.2, 0.5)), u(0.95, 1.2)]) if outside == np.sign(dy)
                  else np.array([u(0.05, 0.3), dy + u(-0.12, 0.12), u(1.0, 1.15)]))
        fov = u(45, 65)
    elif part == "instrument_cluster":  # over the wheel's hub, through its upper half
        origin, fov = a + np.array([-u(0.35, 0.45), u(-0.05, 0.05), u(0.15, 0.22)]), u(40, 55)
    elif part == "infotainment_screen":
        origin, fov = a + np.array([-u(0.32, 0.5), u(-0.12, 0.12), u(0.06, 0.18)]), u(42, 58)
    elif part == "centre_console":
        origin, fov = np.array([u(0.0, 0.25), u(-0.1, 0.1), u(1.05, 1.2)]), u(55, 72)
    elif part == "front_seats":
        origin, fov = np.array([u(-1.1, -0.75), u(-0.2, 0.2), u(1.0, min(1.25, cabin.roof_z - 0.05))]), u(62, 80)
    elif part == "rear_seats":
        origin = (np.array([a[0] + u(-0.1, 0.2), outside * (w + u(0.3, 0.7)), u(0.9, 1.15)]) if outside is not None
                  else np.array([u(0.05, 0.25), u(-0.15, 0.15), min(cabin.roof_z - 0.05, u(1.2, 1.3))]))
        fov = u(60, 80)
    elif part == "passenger_seat":
        side = -np.sign(dy)
        origin, fov = np.array([u(0.0, 0.4), side * (w + u(0.3, 0.8)), u(0.85, 1.15)]), u(55, 75)
    else:  # door_trim: the driver's door open from outside, or a door from inside
        side = outside if outside is not None else float(rng.choice([-1.0, 1.0]))
        if outside is not None:
            origin = np.array([u(-0.6, -0.2), side * (w + u(0.4, 0.8)), u(0.8, 1.1)])
            a = np.array([0.65, side * (w + 0.5), 0.7])  # the open door's panel swings out to about here
        else:
            origin = np.array([u(0.0, 0.4), -side * u(0.0, 0.2), u(0.9, 1.1)])
            a = np.array([u(0.1, 0.5), side * w, u(0.6, 0.8)])
        fov = u(55, 70)
    target = np.asarray(a, float) + rng.normal(0, 0.04, 3)
    return Camera(origin.astype(float), target, float(fov), size)


def open_door_panel(cabin: Cabin, side: float) -> Mesh:
    """The open door on ``side``: its panel swung out about 60 degrees on the front hinge, inner face to the
    camera (a door trim photo from outside shows it)."""
    hinge = np.array([0.95, side * (cabin.half_width + 0.04), (FLOOR_Z + cabin.belt_z) / 2])
    angle = side * math.radians(60)
    centre = hinge + 0.55 * np.array([-math.cos(angle), math.sin(angle) * side * side, 0.0])
    return box_mesh(centre, (0.55, 0.04, (cabin.belt_z - FLOOR_Z) / 2), -angle)


def cluster_texture(rng: np.random.Generator, odometer_km: int, size: tuple[int, int] = (240, 96)) -> Image.Image:
    """The instrument cluster's face: two dials with ticks and needles, a readout with the odometer."""
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 25, 3)))
    d = ImageDraw.Draw(img)
    lit = tuple(int(v) for v in (rng.choice([[240, 240, 240], [255, 150, 40], [120, 200, 255], [255, 60, 60]])))
    h = size[1]
    for cx in (h * 0.55, size[0] - h * 0.55):
        r = h * 0.42
        d.ellipse([cx - r, h / 2 - r, cx + r, h / 2 + r], outline=lit, width=2)
        for k in range(11):
            ang = math.radians(225 - 27 * k)
            d.line([cx + 0.8 * r * math.cos(ang), h / 2 - 0.8 * r * math.sin(ang),
                    cx + r * math.cos(ang), h / 2 - r * math.sin(ang)], fill=lit, width=1)
        ang = math.radians(225 - float(rng.uniform(0, 200)))
        tip = (cx + 0.85 * r * math.cos(ang), h / 2 - 0.85 * r * math.sin(ang))
        d.line([cx, h / 2, *tip], fill=(255, 40, 20), width=2)
    d.text((size[0] / 2 - 22, h * 0.6), f"{odometer_km:06d}", fill=lit)
    return img


def screen_texture(rng: np.random.Generator, size: tuple[int, int] = (200, 120)) -> Image.Image:
    """The screen: a map, a grid of app tiles or a media player."""
    kind = int(rng.integers(3))
    if kind == 0:
        img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(180, 240, 3)))
        d = ImageDraw.Draw(img)
        for _ in range(12):
            d.line([tuple(rng.integers(0, size[0], 1).tolist() + rng.integers(0, size[1], 1).tolist()),
                    tuple(rng.integers(0, size[0], 1).tolist() + rng.integers(0, size[1], 1).tolist())],
                   fill=(255, 255, 255) if rng.random() < 0.7 else (250, 200, 60), width=int(rng.integers(2, 6)))
        d.ellipse([size[0] / 2 - 5, size[1] / 2 - 5, size[0] / 2 + 5, size[1] / 2 + 5], fill=(30, 110, 255))
        return img
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 40, 3)))
    d = ImageDraw.Draw(img)
    if kind == 1:
        for i in range(4):
            for j in range(2):
                x, y = 14 + i * 46, 16 + j * 52
                d.rounded_rectangle([x, y, x + 34, y + 34], 6, fill=tuple(int(v) for v in rng.integers(40, 255, 3)))
    else:
        d.rectangle([12, 12, 92, 92], fill=tuple(int(v) for v in rng.integers(40, 255, 3)))
        for k in range(3):
            d.rectangle([104, 20 + k * 22, 104 + int(rng.integers(40, 85)), 30 + k * 22], fill=(220, 220, 220))
    return img


@dataclass(frozen=True)
class CabinScene:
    """Everything :func:`render_cabin` draws, before drawing it."""

    cabin: Cabin
    camera: Camera
    rng: np.random.Generator


def cabin_scene(part: str, body_type: str, driver_side: str, seed: int, size: tuple[int, int]) -> CabinScene:
    """The cabin and camera of :func:`render_cabin`'s photo of ``part``, and the random stream that goes on."""
    if part not in CABIN_PARTS:
        raise ValueError(f"part must be one of {CABIN_PARTS}, got {part!r}")
    rng = derive_rng(seed, "pbr-cabin")
    cabin = cabin_geometry(body_type, driver_side, rng, cabin_open_sides(part, driver_side, rng))
    return CabinScene(cabin, place_cabin_camera(part, cabin, rng, size), rng)


def render_cabin(part: str, body_type: str, driver_side: str, seed: int, size: tuple[int, int], *,
                 trim_rgb: tuple[int, int, int], odometer_km: int = 84213, samples: int = 24,
                 denoise: bool = True) -> tuple[Image.Image, PlateView]:
    """Path-trace an interior photo of ``part`` (one of :data:`CABIN_PARTS`).

    Returns:
        The photo and its plate label (never a plate: a cabin holds none; the cluster's odometer is the
        plate model's hard negative).

    Raises:
        ValueError: Unknown part, body type or driver side, bad size.
        PbrUnavailableError: Mitsuba is not installed.
    """
    if min(size) < 16:
        raise ValueError(f"size must be at least 16 x 16, got {size}")
    scene = cabin_scene(part, body_type, driver_side, seed, size)
    cabin, camera, rng = scene.cabin, scene.camera, scene.rng
    mi = mitsuba()
    t = mi.ScalarTransform4f
    trim = srgb_to_linear(trim_rgb)
    leather = rng.random() < 0.5
    seat_rgb = trim * float(rng.uniform(0.6, 1.2)) if rng.random() < 0.7 else srgb_to_linear(
        tuple(int(v) for v in rng.integers(10, 200, 3)))
    bsdfs = {
        "trim": principled(trim * float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.35, 0.7)), 0.0, 0.4),
        "seat": principled(np.clip(seat_rgb, 0, 1), 0.3 if leather else 0.85, 0.0, 0.5 if leather else 0.2),
        "dark": principled((0.02, 0.02, 0.022), float(rng.uniform(0.3, 0.6)), 0.0, 0.4),
        "carpet": principled([float(rng.uniform(0.01, 0.06))] * 3, 0.95, 0.0, 0.1),
        "headliner": principled([float(rng.uniform(0.04, 0.5))] * 3, 0.9, 0.0, 0.1),
        "chrome": principled((0.75, 0.75, 0.75), 0.1, 1.0, 0.5),
        "belt": principled([float(rng.uniform(0.01, 0.05))] * 3, 0.7, 0.0, 0.3),
    }
    with tempfile.TemporaryDirectory(prefix="fv-cabin-") as folder:
        b = SceneBuilder(folder)
        b.scene["integrator"] = {"type": "path", "max_depth": 4}
        identity = t()
        for name, (verts, faces) in cabin.parts.items():
            b.mesh(f"cabin-{name}", verts, faces, two_sided(bsdfs[name]), identity)
        for side in cabin.open_sides:
            verts, faces = open_door_panel(cabin, side)
            b.mesh(f"door{int(side)}", verts, faces, two_sided(bsdfs["trim"]), identity)
        for name, (centre, width, height), image in (
                ("cluster", cabin.cluster, cluster_texture(rng, odometer_km)),
                ("screen", cabin.screen, screen_texture(rng))):
            # the rectangle's v axis runs upwards: the rows flipped, the drawing reads the right way up
            pixels = np.ascontiguousarray(np.asarray(image, np.float32)[::-1]) / 255.0
            bitmap = mi.Bitmap(pixels)
            face = {"type": "rectangle",
                    "to_world": t().translate([float(v) for v in centre]).rotate([0, 0, 1], -90).rotate([1, 0, 0], 90)
                    .scale([width / 2, height / 2, 1]),
                    "bsdf": {"type": "principled", "roughness": 0.15,
                             "base_color": {"type": "bitmap", "bitmap": bitmap}}}
            if rng.random() < 0.7:  # switched on
                glow = mi.Bitmap(pixels * float(rng.uniform(0.5, 2.0)))
                face["emitter"] = {"type": "area", "radiance": {"type": "bitmap", "bitmap": glow}}
            b.scene[name] = face
        glass = {"type": "thindielectric"}
        w, belt, roof = cabin.half_width, cabin.belt_z, cabin.roof_z
        b.scene["windscreen"] = {"type": "rectangle", "bsdf": glass, "to_world": t().translate(
            [0.75, 0.0, (belt + roof) / 2]).rotate([0, 1, 0], math.degrees(math.atan2(roof - belt, 0.66)))
            .scale([(roof - belt) / 2 / math.sin(math.atan2(roof - belt, 0.66)), w, 1])}
        for side in (1.0, -1.0):
            if side not in cabin.open_sides:
                place = t().translate([-0.15, side * (w + 0.04), (belt + roof) / 2]).rotate([1, 0, 0], 90)
                b.scene[f"window{int(side)}"] = {"type": "rectangle", "bsdf": glass,
                                                 "to_world": place.scale([1.2, (roof - belt) / 2, 1])}
        add_outdoor_light(b, mi, rng, sky_scale=True)
        b.scene["sensor"] = sensor(mi, camera, samples, seed, near_clip=0.02)
        image = develop(mi, b.scene, samples, denoise, rng)
    return image, PlateView(None)
