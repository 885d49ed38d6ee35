"""The painter's car: the faces and decals of a small 3D car, built from its body type's proportions.

The car is a few convex solids (lower body, cabin, wheels, mirrors) whose faces carry decals (lights,
grille, windows, plates); :mod:`fleetvision.synth.exterior` projects, paints and shades them. Proportions
come from :func:`fleetvision.synth.car_geometry.car_shape`, which the path tracer shares. World frame as
in :mod:`fleetvision.synth.car_geometry`: ``x`` forward, ``y`` to the car's left, ``z`` up, metres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial

import numpy as np

from fleetvision.synth.canvas import RGB, ellipse_points
from fleetvision.synth.car_geometry import BODY_SHAPES, car_shape
from fleetvision.synth.overlays import PLATE_SIZE_M, PlateLook

# ----------------------------------------------------------------------------------------- colours
GLASS: RGB = (52, 60, 70)  # what is seen through tinted glass; reflections are added when shading
TYRE: RGB = (36, 36, 38)
TRIM: RGB = (32, 32, 34)


# --------------------------------------------------------------------------------------------- faces
# A colour is either fixed RGB or a role in the car's palette with a shade factor: ("paint", 0.5).
Color = RGB | tuple[str, float]


@dataclass
class Decal:
    pts: np.ndarray
    color: Color
    kind: str = "poly"  # poly | plate | glass
    slot: str = ""  # for plates: front_plate | rear_plate


@dataclass
class Face:
    pts: np.ndarray
    color: Color
    normal: np.ndarray
    center: np.ndarray
    decals: list[Decal] = field(default_factory=list)
    shaded: bool = True
    name: str = ""


def _face(pts: Sequence[Sequence[float]], color: Color, solid_center: np.ndarray, name: str = "",
          shaded: bool = True) -> Face:
    p = np.asarray(pts, dtype=float)
    c = p.sum(axis=0) / len(p)
    # faces are planar and convex: the normal is the cross product of two spanning edges
    nrm = _cross(p[1] - p[0], p[-1] - p[0])
    if float(nrm @ nrm) < 1e-18:
        nrm = _cross(p[2] - p[1], p[0] - p[1])
    nrm = nrm / math.sqrt(float(nrm @ nrm))
    if (c - solid_center) @ nrm < 0:
        nrm = -nrm
    return Face(p, color, nrm, c, shaded=shaded, name=name)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _bilinear(q: np.ndarray, u: float, v: float) -> np.ndarray:
    """Point (u, v) on a quad given as (p00, p10, p11, p01)."""
    return (1 - u) * (1 - v) * q[0] + u * (1 - v) * q[1] + u * v * q[2] + (1 - u) * v * q[3]


def _quad_uv(q: np.ndarray, uv: Sequence[tuple[float, float]]) -> np.ndarray:
    return np.array([_bilinear(q, u, v) for u, v in uv])


def _ellipse_uv(cu: float, cv: float, ru: float, rv: float, a0: float = 0.0, a1: float = 2 * math.pi,
                n: int = 16) -> list[tuple[float, float]]:
    return ellipse_points(cu, cv, ru, rv, n, a0, a1)


# ------------------------------------------------------------------------------------------ the car
@dataclass(frozen=True)
class CarLook:
    """Everything that changes how one car looks (not where the camera is)."""

    body_type: str
    paint: RGB
    driver_side: str  # "left" | "right": the physical side the steering wheel is on
    rim: RGB = (176, 180, 186)
    spokes: int = 5  # rim spokes (5, 6, 7 or 10)
    variant: int = 0  # proportion variant (see ``car_shape``)
    plate_style: str | None = None  # plates mounted (their size); None: no plate holders at all
    front_plate: PlateLook | None = None  # what is painted on them; None: nothing painted
    rear_plate: PlateLook | None = None
    headlight: RGB = (225, 228, 232)
    taillight: RGB = (180, 20, 25)


CarFaces = tuple[list[Face], list[Face], list[list[Face]], list[list[Face]]]


def build_car(look: CarLook) -> CarFaces:
    """The car's faces in world coordinates (shared, read-only: colours are palette roles).

    Returns:
        (body faces, cabin faces, wheels as lists of faces, mirrors as lists of faces).

    Raises:
        ValueError: Unknown body type.
    """
    if look.body_type not in BODY_SHAPES:
        raise ValueError(f"unknown body type {look.body_type!r}; known: {', '.join(BODY_SHAPES)}")
    return _car_faces(look.body_type, look.driver_side, look.plate_style, look.plate_style, look.variant, look.spokes)


def palette(look: CarLook) -> dict[str, RGB]:
    """The colours the car's roles resolve to."""
    return {"paint": look.paint, "rim": look.rim, "headlight": look.headlight, "taillight": look.taillight}


def _end_rect(x: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """A rectangle on the car's front (``x`` = half the length) or rear (``-x``) face: y across, z up."""
    return np.array([(x, y0, z0), (x, y1, z0), (x, y1, z1), (x, y0, z1)])


@lru_cache(maxsize=512)
def _car_faces(body_type: str, driver_side: str, front_style: str | None, rear_style: str | None, variant: int = 0,
               spokes: int = 5) -> CarFaces:
    s = car_shape(body_type, variant)
    half_l, half_w = s.length / 2, s.width / 2
    zb, zn, zt = s.clearance, s.nose_z, s.belt_z
    rear_top = zt - (0.05 if s.tray else 0.12)
    # rounded corners: a chin and a nose chamfer at the front, a tail chamfer at the rear
    profile = [(-half_l + 0.07, zb), (half_l - 0.07, zb), (half_l, zb + 0.07), (half_l, zn - 0.04),
               (half_l - 0.11, zn + 0.015), (half_l - s.hood, zt), (-half_l + 0.12, zt), (-half_l, rear_top),
               (-half_l, zb + 0.07)]
    center = np.array([0.0, 0.0, (zb + zt) / 2])
    paint: Color = ("paint", 1.0)
    body: list[Face] = []
    for side in (1, -1):
        body.append(_face([(x, side * half_w, z) for x, z in profile], paint, center, name=f"side{side:+d}"))
    edge_names = ["bottom", "chin", "front", "nose", "hood", "top", "bevel", "rear", "tailchin"]
    for i, name in enumerate(edge_names):
        (x0, z0), (x1, z1) = profile[i], profile[(i + 1) % len(profile)]
        pts = [(x0, -half_w, z0), (x1, -half_w, z1), (x1, half_w, z1), (x0, half_w, z0)]
        body.append(_face(pts, paint, center, name=name))
    faces = {f.name: f for f in body}
    driver_y = -1 if driver_side == "right" else 1  # +y is the car's left

    # front: headlights, grille, intake, plate
    f = faces["front"]
    x = half_l
    hz = zn - zb
    plate_zc = zb + 0.30 * hz

    front_rect = partial(_end_rect, x)

    for side in (1, -1):
        y_in, y_out = side * (half_w - 0.45), side * (half_w - 0.05)
        f.decals.append(Decal(front_rect(y_in, y_out, zn - 0.17, zn - 0.035), ("headlight", 0.85)))
        f.decals.append(Decal(front_rect(y_in + side * 0.08, y_out - side * 0.03, zn - 0.13, zn - 0.07),
                              ("headlight", 1.0)))
    f.decals.append(Decal(front_rect(-0.38, 0.38, plate_zc + 0.11, zn - 0.05), (28, 29, 31)))
    for k in range(3):
        zz = plate_zc + 0.14 + k * (zn - 0.08 - plate_zc - 0.14) / 3
        f.decals.append(Decal(front_rect(-0.36, 0.36, zz, zz + 0.012), (120, 122, 126)))
    f.decals.append(Decal(front_rect(-0.55, 0.55, zb + 0.02, plate_zc - 0.09), (30, 30, 32)))
    if front_style is not None:
        pw, ph = PLATE_SIZE_M[front_style]
        f.decals.append(Decal(front_rect(-pw / 2, pw / 2, plate_zc - ph / 2, plate_zc + ph / 2), (0, 0, 0),
                              kind="plate", slot="front_plate"))

    # rear: tail lights, plate, bumper
    r = faces["rear"]
    x = -half_l
    rz = rear_top - zb
    rplate_zc = zb + 0.42 * rz

    rear_rect = partial(_end_rect, x)

    for side in (1, -1):
        y_in, y_out = side * (half_w - 0.42), side * (half_w - 0.03)
        r.decals.append(Decal(rear_rect(y_in, y_out, rear_top - 0.2, rear_top - 0.04), ("taillight", 1.0)))
        r.decals.append(Decal(rear_rect(y_in + side * 0.25, y_out, rear_top - 0.2, rear_top - 0.13),
                              (235, 150, 60)))
    r.decals.append(Decal(rear_rect(-half_w + 0.02, half_w - 0.02, zb + 0.02, zb + 0.09), (34, 34, 36)))
    if rear_style is not None:
        pw, ph = PLATE_SIZE_M[rear_style]
        r.decals.append(Decal(rear_rect(pw / 2, -pw / 2, rplate_zc - ph / 2, rplate_zc + ph / 2), (0, 0, 0),
                              kind="plate", slot="rear_plate"))
    if s.tray:
        t = faces["top"]
        cab_r = s.cabin_base[0]
        t.decals.append(Decal(np.array([(-half_l + 0.15, -half_w + 0.08, zt), (cab_r - 0.08, -half_w + 0.08, zt),
                                        (cab_r - 0.08, half_w - 0.08, zt), (-half_l + 0.15, half_w - 0.08, zt)]),
                              (40, 40, 42)))

    # sides: wheel wells, door seams, handles, fuel cap (driver side)
    cab_r, cab_f = s.cabin_base
    for side in (1, -1):
        sf = faces[f"side{side:+d}"]
        y = side * half_w
        for wx in s.wheel_x:
            rr = s.wheel_r + 0.06
            pts = [(wx + rr * math.cos(t), y, s.wheel_r + rr * math.sin(t)) for t in np.linspace(0, math.pi, 12)]
            pts += [(wx - rr, y, zb), (wx + rr, y, zb)]
            sf.decals.append(Decal(np.array(pts), (16, 16, 18)))
        seams = [cab_f - 0.02, (cab_r + cab_f) / 2 + 0.1] if s.doors == 4 else [cab_f - 0.02]
        if s.doors == 4:
            seams.append(cab_r + 0.15)
        else:
            seams.append(cab_r + 0.55)
        for sx in seams:
            sf.decals.append(Decal(np.array([(sx, y, zb + 0.08), (sx + 0.018, y, zb + 0.08), (sx + 0.018, y, zt),
                                             (sx, y, zt)]), ("paint", 0.45)))
        for sx in seams[1:]:
            hx = sx + 0.08
            sf.decals.append(Decal(np.array([(hx, y, zt - 0.14), (hx + 0.16, y, zt - 0.14),
                                             (hx + 0.16, y, zt - 0.10), (hx, y, zt - 0.10)]), ("paint", 0.55)))
        if side == driver_y:
            fx, fz = s.wheel_x[0] + 0.05, zt - 0.13
            sf.decals.append(Decal(np.array([(fx + 0.075 * math.cos(t), y, fz + 0.075 * math.sin(t))
                                             for t in np.linspace(0, 2 * math.pi, 12, endpoint=False)]),
                                   ("paint", 0.6)))

    # cabin: a prism narrower at the roof; glass as decals
    rr_, rf_ = s.cabin_roof
    wb, wr = half_w - 0.05, half_w - 0.19
    ccenter = np.array([(cab_r + cab_f + rr_ + rf_) / 4, 0.0, (zt + s.roof_z) / 2])
    cabin: list[Face] = []
    for side in (1, -1):
        q = np.array([(cab_r, side * wb, zt), (cab_f, side * wb, zt), (rf_, side * wr, s.roof_z),
                      (rr_, side * wr, s.roof_z)])
        cf = _face(q, paint, ccenter, name=f"cside{side:+d}")
        if s.rear_windows:
            split = 0.52 if s.doors == 4 else 0.25
            cf.decals.append(Decal(_quad_uv(q, [(split + 0.03, 0.1), (0.93, 0.1), (0.93, 0.88), (split + 0.03, 0.88)]),
                                   GLASS, kind="glass"))
            cf.decals.append(Decal(_quad_uv(q, [(0.07, 0.1), (split - 0.03, 0.1), (split - 0.03, 0.88),
                                                (0.07, 0.88)]), GLASS, kind="glass"))
        else:
            cf.decals.append(Decal(_quad_uv(q, [(0.74, 0.1), (0.94, 0.1), (0.94, 0.88), (0.74, 0.88)]),
                                   GLASS, kind="glass"))
        head_u = 0.62 if s.doors == 4 else 0.45
        uv = _ellipse_uv(head_u if s.rear_windows else 0.84, 0.38, 0.045, 0.12, n=12)
        cf.decals.append(Decal(_quad_uv(q, uv), (20, 22, 26)))
        if side == driver_y:
            wheel_u = 0.85 if s.rear_windows else 0.9
            ring = ellipse_points(wheel_u, 0.1, 0.09, 0.32, 10, 0, math.pi)
            inner = ellipse_points(wheel_u, 0.1, 0.065, 0.24, 10, 0, math.pi)
            cf.decals.append(Decal(_quad_uv(q, ring + inner[::-1]), (12, 12, 14)))
        cabin.append(cf)
    ws = np.array([(cab_f, -wb, zt), (cab_f, wb, zt), (rf_, wr, s.roof_z), (rf_, -wr, s.roof_z)])
    wf = _face(ws, paint, ccenter, name="windshield")
    wf.decals.append(Decal(_quad_uv(ws, [(0.05, 0.06), (0.95, 0.06), (0.95, 0.92), (0.05, 0.92)]), GLASS, "glass"))
    wf.decals.append(Decal(_quad_uv(ws, [(0.05, 0.06), (0.95, 0.06), (0.95, 0.13), (0.05, 0.13)]), (20, 20, 22)))
    du = 0.27 if driver_y < 0 else 0.73
    ring = ellipse_points(du, 0.1, 0.12, 0.2, 12, 0, math.pi)
    inner = ellipse_points(du, 0.1, 0.1, 0.15, 12, 0, math.pi)
    wf.decals.append(Decal(_quad_uv(ws, ring + inner[::-1]), (10, 10, 12)))
    cabin.append(wf)
    rw = np.array([(cab_r, -wb, zt), (cab_r, wb, zt), (rr_, wr, s.roof_z), (rr_, -wr, s.roof_z)])
    rf = _face(rw, paint, ccenter, name="rearwindow")
    rf.decals.append(Decal(_quad_uv(rw, [(0.06, 0.08), (0.94, 0.08), (0.94, 0.9), (0.06, 0.9)]), GLASS, "glass"))
    rf.decals.append(Decal(_quad_uv(rw, [(0.42, 0.91), (0.58, 0.91), (0.58, 0.96), (0.42, 0.96)]), (190, 20, 25)))
    if not s.rear_windows:  # van: twin rear doors with windows
        rf.decals = [Decal(_quad_uv(rw, [(0.06, 0.45), (0.48, 0.45), (0.48, 0.9), (0.06, 0.9)]), GLASS, "glass"),
                     Decal(_quad_uv(rw, [(0.52, 0.45), (0.94, 0.45), (0.94, 0.9), (0.52, 0.9)]), GLASS, "glass"),
                     Decal(_quad_uv(rw, [(0.495, 0.0), (0.505, 0.0), (0.505, 1.0), (0.495, 1.0)]),
                           ("paint", 0.5))]
    cabin.append(rf)
    roof = np.array([(rr_, -wr, s.roof_z), (rf_, -wr, s.roof_z), (rf_, wr, s.roof_z), (rr_, wr, s.roof_z)])
    cabin.append(_face(roof, paint, ccenter, name="roof"))

    # wheels: 14-sided prisms, the outer disc carrying the rim
    wheels: list[list[Face]] = []
    n = 14
    ts = np.linspace(0, 2 * math.pi, n, endpoint=False)
    for wx in s.wheel_x:
        for side in (1, -1):
            y_out, y_in = side * (half_w + 0.015), side * (half_w - 0.2)
            wc = np.array([wx, (y_out + y_in) / 2, s.wheel_r])
            ring_out = [(wx + s.wheel_r * math.cos(t), y_out, s.wheel_r + s.wheel_r * math.sin(t)) for t in ts]
            ring_in = [(wx + s.wheel_r * math.cos(t), y_in, s.wheel_r + s.wheel_r * math.sin(t)) for t in ts]
            faces_w = []
            for i in range(n):
                j = (i + 1) % n
                faces_w.append(_face([ring_out[i], ring_out[j], ring_in[j], ring_in[i]], TYRE, wc, name="tread"))
            disc = _face(ring_out, TYRE, wc, name="disc")
            rim_r = s.wheel_r * 0.64
            yo = y_out
            rim = [(wx + rim_r * math.cos(t), yo, s.wheel_r + rim_r * math.sin(t))
                   for t in np.linspace(0, 2 * math.pi, 18, endpoint=False)]
            disc.decals.append(Decal(np.array(rim), ("rim", 1.0)))
            gap = 2 * math.pi / spokes
            for k in range(spokes):  # the openings between the spokes (the brake disc shows through)
                a0 = k * gap + 0.05 + 0.18 * gap
                a1 = a0 + gap * 0.64
                sec = ellipse_points(0, 0, rim_r * 0.9, rim_r * 0.9, 5, a0, a1)
                sec += ellipse_points(0, 0, rim_r * 0.32, rim_r * 0.32, 3, a0, a1)[::-1]
                disc.decals.append(Decal(np.array([(wx + a, yo, s.wheel_r + b) for a, b in sec]), (44, 44, 47)))
            disc.decals.append(Decal(np.array([(wx + 0.05 * math.cos(t), yo, s.wheel_r + 0.05 * math.sin(t))
                                               for t in np.linspace(0, 2 * math.pi, 8, endpoint=False)]),
                                     ("rim", 0.7)))
            faces_w.append(disc)
            wheels.append(faces_w)

    mirrors: list[list[Face]] = []
    for side in (1, -1):
        mx, my, mz = cab_f - 0.12, side * (half_w + 0.1), zt + 0.09
        dx, dy, dz = 0.07, 0.11, 0.07
        mcenter = np.array([mx, my, mz])
        box = []
        corners = {(i, j, k): (mx + i * dx, my + j * dy, mz + k * dz)
                   for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)}
        quads = [[(-1, -1, -1), (-1, 1, -1), (-1, 1, 1), (-1, -1, 1)],
                 [(1, -1, -1), (1, 1, -1), (1, 1, 1), (1, -1, 1)],
                 [(-1, -1, -1), (1, -1, -1), (1, -1, 1), (-1, -1, 1)],
                 [(-1, 1, -1), (1, 1, -1), (1, 1, 1), (-1, 1, 1)],
                 [(-1, -1, 1), (1, -1, 1), (1, 1, 1), (-1, 1, 1)],
                 [(-1, -1, -1), (1, -1, -1), (1, 1, -1), (-1, 1, -1)]]
        for qd in quads:
            box.append(_face([corners[c] for c in qd], paint, mcenter, name="mirror"))
        box[0].color = (30, 30, 32)  # the glass faces backwards
        mirrors.append(box)
    return body, cabin, wheels, mirrors
