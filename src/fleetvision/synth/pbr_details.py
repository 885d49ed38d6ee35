"""The small parts of a path-traced car (:mod:`fleetvision.synth.pbr_car`) as explicit meshes.

A car's skin is a signed distance field meshed on a 3.5 cm grid, too coarse for the parts that tell a
real car's front from its rear and one body type from another at a glance: wing mirrors, wipers and
the black cowl under the windscreen, a spoiler and rear wiper on a tailgate, the lower intake and fog
lamps in a front bumper, reflectors, a diffuser and exhausts at the rear, door handles, badges. Here
they are boxes and ellipsoids placed on the field's surface and shaded with the car's own materials
(``paint``, ``trim``, ``chrome``, ``head``: lamp glass, ``tail``: red lamp glass, ``drl``: a lit strip).

Pure numpy, tested without a renderer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fleetvision.synth.car_geometry import BodyShape
from fleetvision.synth.pbr_shapes import Mesh, box_mesh, ellipsoid_mesh

# Where a tailgate carries a spoiler and a rear wiper (share of cars), by body type.
SPOILER_SHARE = {"hatch": 0.75, "suv": 0.5, "wagon": 0.5, "van": 0.0, "sedan": 0.2, "coupe": 0.4, "ute": 0.0}
REAR_WIPER_SHARE = {"hatch": 0.6, "suv": 0.6, "wagon": 0.6, "van": 0.5}



@dataclass(frozen=True)
class Surface:
    """Where the car's skin is: ``end_x(end, y, z)`` (the front or rear face's x at ``(y, z)``) and
    ``side_y(x, z)`` (the left flank's y at ``(x, z)``; the right one mirrors it), None where the line
    misses the body."""

    end_x: Callable[[str, float, float], float | None]
    side_y: Callable[[float, float], float | None]


def grid_surface(field: np.ndarray, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> Surface:
    """The surface of a field sampled on the grid ``xs`` x ``ys`` x ``zs`` (negative inside), found along
    grid lines and placed between the last sample inside and the first outside by linear interpolation."""
    def nearest(axis: np.ndarray, v: float) -> int:
        return int(np.clip(round((v - axis[0]) / (axis[1] - axis[0])), 0, len(axis) - 1))

    def crossing(line: np.ndarray, axis: np.ndarray, last: bool) -> float | None:
        inside = np.nonzero(line < 0)[0]
        if not len(inside):
            return None
        i = int(inside[-1] if last else inside[0])
        j = i + 1 if last else i - 1
        if not 0 <= j < len(line):
            return float(axis[i])
        frac = line[i] / (line[i] - line[j])
        return float(axis[i] + frac * (axis[j] - axis[i]))

    def end_x(end: str, y: float, z: float) -> float | None:
        return crossing(field[:, nearest(ys, y), nearest(zs, z)], xs, last=end == "front")

    def side_y(x: float, z: float) -> float | None:
        return crossing(field[nearest(xs, x), :, nearest(zs, z)], ys, last=True)

    return Surface(end_x, side_y)


@dataclass(frozen=True)
class Layout:
    """Where the car's field put its lamps, grille and front plate (metres), for the parts placed on them."""

    grille_z: tuple[float, float]  # bottom, top
    grille_half: float  # half width
    head_z: tuple[float, float]  # the headlamps' bottom, top
    head_in: float  # the headlamps' inner edge, |y|
    tail_top_z: float  # the tail lamps' top (the rear badge sits above it)
    front_plate_x: float | None  # the front plate's mount (x of the skin): the intake stays behind it


def _screen(base: tuple[float, float], roof: tuple[float, float], t: float, out: float
            ) -> tuple[float, float, float]:
    """(x, z, pitch) of a point ``t`` of the way up a screen from its foot ``base`` to its top ``roof``
    (each (x, z)), ``out`` metres off the glass along its outward normal; pitch lays a part flat on it."""
    dx, dz = roof[0] - base[0], roof[1] - base[1]
    length = math.hypot(dx, dz)
    # outward: forward and up off a windscreen (dx < 0), backward and up off a rear screen
    nx, nz = -math.copysign(dz, dx) / length, abs(dx) / length
    return base[0] + t * dx + out * nx, base[1] + t * dz + out * nz, math.atan2(dz, -dx)


def _along_front(surface: Surface, y0: float, y1: float, z: float, half: tuple[float, float], out: float
                 ) -> list[Mesh]:
    """A bar on the car's front face from ``|y| = y0`` to ``y1`` at height ``z``, following the face's curve in
    plan, ``out`` metres proud of it; one on each side. ``half``: (depth, height) half sizes."""
    xa, xb = surface.end_x("front", y0, z), surface.end_x("front", y1, z)
    if xa is None or xb is None:
        return []
    length = math.hypot(xb - xa, y1 - y0)
    meshes = []
    for sgn in (1.0, -1.0):
        yaw = math.atan2(-(xb - xa), sgn * (y1 - y0))
        centre = ((xa + xb) / 2 + out, sgn * (y0 + y1) / 2, z)
        meshes.append(box_mesh(centre, (half[0], length / 2, half[1]), yaw=yaw))
    return meshes


class _Parts:
    """The parts of one car as they are drawn: meshes by material, and the generator that draws them."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.meshes: dict[str, list[Mesh]] = {"paint": [], "trim": [], "chrome": [], "head": [], "tail": [], "drl": []}

    def colour(self, paint_share: float, chrome_share: float = 0.0) -> str:
        """Paint, chrome or black trim, drawn with these shares."""
        u = self.rng.random()
        return "paint" if u < paint_share else "chrome" if u < paint_share + chrome_share else "trim"


def _mirrors(p: _Parts, s: BodyShape, surface: Surface) -> None:
    """Wing mirrors: a housing on a short stalk at the foot of each A-pillar."""
    rng, belt = p.rng, s.belt_z
    x_m = s.cabin_base[1] - float(rng.uniform(0.05, 0.2))
    y_side = surface.side_y(x_m, belt - 0.05)
    if y_side is not None:
        mirror = p.colour(0.65)
        radii = (float(rng.uniform(0.05, 0.07)), float(rng.uniform(0.09, 0.12)), float(rng.uniform(0.055, 0.075)))
        for sgn in (1.0, -1.0):
            p.meshes[mirror].append(ellipsoid_mesh((x_m, sgn * (y_side + 0.02 + radii[1]), belt + 0.09), radii))
            p.meshes["trim"].append(box_mesh((x_m + 0.02, sgn * (y_side - 0.02), belt + 0.05), (0.05, 0.06, 0.04)))


def _windscreen(p: _Parts, s: BodyShape) -> None:
    """The windscreen's foot: a black cowl across it and two wipers parked on the glass."""
    rng, w = p.rng, s.width
    base, roof = (s.cabin_base[1], s.belt_z), (s.cabin_roof[1], s.roof_z)
    x_c, z_c, pitch = _screen(base, roof, 0.02, 0.01)
    p.meshes["trim"].append(box_mesh((x_c, 0.0, z_c), (0.06, 0.43 * w, 0.012), pitch=pitch))
    wiper_len = float(rng.uniform(0.22, 0.28)) * w
    for y_w, turn in ((-0.3 * w, 0.1), (0.08 * w, 0.06)):
        x_w, z_w, pitch = _screen(base, roof, float(rng.uniform(0.06, 0.1)), 0.018)
        p.meshes["trim"].append(box_mesh((x_w, y_w + wiper_len / 2, z_w), (0.012, wiper_len / 2, 0.01),
                                         yaw=turn, pitch=pitch))


def _tailgate(p: _Parts, s: BodyShape, body_type: str) -> None:
    """A spoiler over the rear screen with a brake light under it, a rear wiper on the glass."""
    rng, w = p.rng, s.width
    if rng.random() < SPOILER_SHARE.get(body_type, 0.0) and s.rear_windows and not s.tray:
        spoiler = p.colour(0.6)
        x_s = s.cabin_roof[0] - 0.06
        p.meshes[spoiler].append(box_mesh((x_s, 0.0, s.roof_z - 0.035), (0.1, 0.36 * w, 0.022), pitch=-0.08))
        p.meshes["tail"].append(box_mesh((x_s - 0.08, 0.0, s.roof_z - 0.06), (0.012, 0.14, 0.01)))
    if rng.random() < REAR_WIPER_SHARE.get(body_type, 0.0) and s.rear_windows:
        base_r, roof_r = (s.cabin_base[0], s.belt_z), (s.cabin_roof[0], s.roof_z)
        x_r, z_r, pitch = _screen(base_r, roof_r, float(rng.uniform(0.08, 0.14)), 0.018)
        length = float(rng.uniform(0.3, 0.4))
        p.meshes["trim"].append(box_mesh((x_r, length / 2 * 0.8, z_r), (0.012, length / 2, 0.01), pitch=pitch))


def _front_end(p: _Parts, s: BodyShape, surface: Surface, layout: Layout) -> None:
    """The front bumper's lower intake, fog lamps and grille badge; the grille's bars; a lit strip along
    each headlamp."""
    rng, w = p.rng, s.width
    z_i = s.clearance + float(rng.uniform(0.06, 0.11))
    intake_half = float(rng.uniform(0.22, 0.4)) * w
    x_i = surface.end_x("front", 0.0, z_i)
    if x_i is not None:
        # its face level with the bumper's and behind the plate's mount, so a plate over it stays in front
        face = x_i if layout.front_plate_x is None else min(x_i, layout.front_plate_x - 0.005)
        p.meshes["trim"].append(box_mesh((face - 0.03, 0.0, z_i), (0.03, intake_half, float(rng.uniform(0.03, 0.055)))))
    if rng.random() < 0.4:
        for sgn in (1.0, -1.0):
            x_f = surface.end_x("front", sgn * 0.37 * w, z_i + 0.02)
            if x_f is not None:
                p.meshes["head"].append(ellipsoid_mesh((x_f - 0.01, sgn * 0.37 * w, z_i + 0.02), (0.025, 0.045, 0.03)))
    grille_mid_z = sum(layout.grille_z) / 2
    x_b = surface.end_x("front", 0.0, grille_mid_z)
    if x_b is not None and rng.random() < 0.85:
        p.meshes["chrome"].append(ellipsoid_mesh((x_b + 0.01, 0.0, grille_mid_z), (0.015, 0.06, 0.04)))
    if rng.random() < 0.6:
        bars = p.colour(0.2, 0.4)
        lo, hi = layout.grille_z
        n = int(rng.integers(2, 6))
        for z_g in np.linspace(lo + 0.02, hi - 0.02, n) if hi - lo > 0.06 else ():
            x_g = surface.end_x("front", 0.0, float(z_g))
            if x_g is not None:
                p.meshes[bars].append(box_mesh((x_g, 0.0, float(z_g)), (0.012, 0.95 * layout.grille_half,
                                                                       float(rng.uniform(0.006, 0.014)))))
    if rng.random() < 0.55:
        lo, hi = layout.head_z
        z_d = lo + 0.015 if rng.random() < 0.5 else hi - 0.015
        p.meshes["drl"] += _along_front(surface, layout.head_in + 0.03, 0.46 * w, z_d, (0.01, 0.008), 0.005)


def _rear_end(p: _Parts, s: BodyShape, surface: Surface, layout: Layout) -> None:
    """A badge above the rear plate, reflectors at the bumper's corners, a diffuser, exhausts."""
    rng, w = p.rng, s.width
    x_rb = surface.end_x("rear", 0.0, layout.tail_top_z + 0.03)
    if x_rb is not None and rng.random() < 0.85:
        p.meshes["chrome"].append(ellipsoid_mesh((x_rb - 0.01, 0.0, layout.tail_top_z + 0.03), (0.015, 0.055, 0.035)))
    z_low = s.clearance + float(rng.uniform(0.05, 0.1))
    if rng.random() < 0.5:
        for sgn in (1.0, -1.0):
            x_q = surface.end_x("rear", sgn * 0.4 * w, z_low + 0.06)
            if x_q is not None:
                p.meshes["tail"].append(box_mesh((x_q + 0.005, sgn * 0.4 * w, z_low + 0.06), (0.02, 0.06, 0.015)))
    x_d = surface.end_x("rear", 0.0, z_low)
    if x_d is not None and rng.random() < 0.45:
        p.meshes["trim"].append(box_mesh((x_d + 0.02, 0.0, z_low), (0.035, 0.36 * w, 0.04)))
    if rng.random() < 0.35:
        ends = (1.0, -1.0) if rng.random() < 0.4 else (1.0 if rng.random() < 0.5 else -1.0,)
        for sgn in ends:
            x_e = surface.end_x("rear", sgn * 0.3 * w, s.clearance + 0.03)
            if x_e is not None:
                p.meshes["chrome"].append(ellipsoid_mesh((x_e - 0.01, sgn * 0.3 * w, s.clearance + 0.03),
                                                         (0.06, 0.04, 0.03)))


def _door_handles(p: _Parts, s: BodyShape, surface: Surface) -> None:
    """Door handles just under the belt line, on every door."""
    rng = p.rng
    if rng.random() < 0.85:
        handle = p.colour(0.5, 0.2)
        z_h = s.belt_z - float(rng.uniform(0.06, 0.12))
        doors = [s.cabin_base[1] - 0.5]
        if s.doors >= 4 and s.rear_windows:
            doors.append((s.cabin_roof[0] + s.cabin_roof[1]) / 2 - 0.25)
        for x_h in doors:
            y_h = surface.side_y(x_h, z_h)
            if y_h is not None:
                for sgn in (1.0, -1.0):
                    p.meshes[handle].append(box_mesh((x_h, sgn * y_h, z_h), (0.08, 0.015, 0.018)))


def car_details(s: BodyShape, body_type: str, surface: Surface, rng: np.random.Generator, layout: Layout
                ) -> dict[str, list[Mesh]]:
    """The small parts of one car, by the material that shades them (``paint``, ``trim``, ``chrome``,
    ``head``: lamp glass, ``tail``: red lamp glass, ``drl``: a lit daytime-running lamp).

    Args:
        s: The car's proportions (the shape its field was built from).
        surface: Its skin (:func:`grid_surface`).
        rng: Draws which parts the car has and how they look. The groups below draw from it in this
            order; reordering them (or a draw inside one) changes every path-traced car.
        layout: Where its lamps, grille and front plate are.
    """
    p = _Parts(rng)
    _mirrors(p, s, surface)
    _windscreen(p, s)
    _tailgate(p, s, body_type)
    _front_end(p, s, surface, layout)
    _rear_end(p, s, surface, layout)
    _door_handles(p, s, surface)
    return {k: v for k, v in p.meshes.items() if v}
