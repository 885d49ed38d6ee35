"""Exterior shots: a small 3D car seen through a pinhole camera.

The car is a few convex solids (lower body, cabin, wheels, mirrors) whose faces carry decals
(lights, grille, windows, plates). The camera orbits the car at the shot's yaw and pitch; faces are
back-face culled and painted far to near. Because the car is symmetric about its long axis (apart
from the driver-side cues: steering wheel through the glass, fuel cap) and every other asymmetric
choice (light, background, framing offset, roll) is mirrored with the camera side, a shot at
yaw ``-a`` is the mirror image of the shot at ``+a``: driver and passenger views are true mirrors.

World frame: ``x`` forward (the nose at ``+x``), ``y`` to the car's left, ``z`` up, metres, the
ground at ``z = 0``. Yaw 0 looks at the nose, +90 at the car's left side, 180 at the tail.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from fleetvision.synth.canvas import RGB, Point, ellipse_points, mix, shade, warp_onto
from fleetvision.synth.overlays import PLATE_SIZE_M, PlateLook, plate_texture


# ------------------------------------------------------------------------------------------- shapes
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

GLASS: RGB = (38, 48, 60)
TYRE: RGB = (24, 24, 26)
TRIM: RGB = (32, 32, 34)


def _n(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


# ------------------------------------------------------------------------------------------- camera
@dataclass(frozen=True)
class Camera:
    """A pinhole camera: position, orthonormal axes, focal length (px), principal point and roll."""

    pos: np.ndarray
    right: np.ndarray
    up: np.ndarray
    fwd: np.ndarray
    focal: float
    cx: float
    cy: float
    roll: float = 0.0

    @staticmethod
    def looking_at(pos: np.ndarray, target: np.ndarray, focal: float = 1.0, cx: float = 0.0, cy: float = 0.0,
                   roll: float = 0.0) -> Camera:
        fwd = _n(target - pos)
        right = _n(np.cross(fwd, np.array([0.0, 0.0, 1.0])))
        up = np.cross(right, fwd)
        return Camera(pos, right, up, fwd, focal, cx, cy, roll)

    def depth(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.pos) @ self.fwd

    def project(self, pts: np.ndarray) -> np.ndarray:
        """Pixel coordinates ``[N, 2]`` of world points ``[N, 3]`` (in front of the camera)."""
        cam = (pts - self.pos) @ self._basis
        z = np.maximum(cam[:, 2], 1e-3)
        x = self.focal * cam[:, 0] / z
        y = -self.focal * cam[:, 1] / z
        if self.roll:
            c, s = math.cos(self.roll), math.sin(self.roll)
            x, y = x * c - y * s, x * s + y * c
        out = np.empty((len(pts), 2))
        out[:, 0] = x + self.cx
        out[:, 1] = y + self.cy
        return out

    @property
    def _basis(self) -> np.ndarray:
        return np.stack([self.right, self.up, self.fwd], axis=1)

    def facing(self, center: np.ndarray, normal: np.ndarray) -> bool:
        return float((self.pos - center) @ normal) > 0.0


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
    return _car_faces(look.body_type, look.driver_side, look.plate_style, look.plate_style)


def palette(look: CarLook) -> dict[str, RGB]:
    """The colours the car's roles resolve to."""
    return {"paint": look.paint, "rim": look.rim, "headlight": look.headlight, "taillight": look.taillight}


@lru_cache(maxsize=128)
def _car_faces(body_type: str, driver_side: str, front_style: str | None, rear_style: str | None) -> CarFaces:
    s = BODY_SHAPES[body_type]
    half_l, half_w = s.length / 2, s.width / 2
    zb, zn, zt = s.clearance, s.nose_z, s.belt_z
    rear_top = zt - (0.05 if s.tray else 0.12)
    profile = [(-half_l, zb), (half_l, zb), (half_l, zn), (half_l - s.hood, zt), (-half_l + 0.12, zt),
               (-half_l, rear_top)]
    center = np.array([0.0, 0.0, (zb + zt) / 2])
    paint: Color = ("paint", 1.0)
    body: list[Face] = []
    for side in (1, -1):
        body.append(_face([(x, side * half_w, z) for x, z in profile], paint, center, name=f"side{side:+d}"))
    edge_names = ["bottom", "front", "hood", "top", "bevel", "rear"]
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

    def front_rect(y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
        return np.array([(x, y0, z0), (x, y1, z0), (x, y1, z1), (x, y0, z1)])

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

    def rear_rect(y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
        return np.array([(x, y0, z0), (x, y1, z0), (x, y1, z1), (x, y0, z1)])

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
            for k in range(5):
                a0 = k * 2 * math.pi / 5 + 0.25
                a1 = a0 + 2 * math.pi / 5 - 0.5
                sec = ellipse_points(0, 0, rim_r * 0.9, rim_r * 0.9, 5, a0, a1)
                sec += ellipse_points(0, 0, rim_r * 0.3, rim_r * 0.3, 3, a0, a1)[::-1]
                disc.decals.append(Decal(np.array([(wx + a, yo, s.wheel_r + b) for a, b in sec]), (40, 40, 44)))
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


# --------------------------------------------------------------------------------------- rendering
@dataclass(frozen=True)
class ExteriorView:
    """Where the camera is and what surrounds the car (all the per-photo randomness of an exterior)."""

    yaw: float  # degrees; see the module docstring
    pitch: float  # degrees above the horizontal
    distance: float  # metres from the car's centre
    fill: float  # share of the image width the car spans
    shift: tuple[float, float]  # framing offset (fraction of width, height) in the canonical side
    roll: float  # degrees, canonical side
    light: tuple[float, float, float]  # (right, up, towards-camera) weights, canonical side
    background: str  # street | lot | showroom
    scene_seed: int  # background details
    occluder: float = 0.0  # 0 = none; else the share of the plate a post in front of it hides


@dataclass
class ExteriorResult:
    """An exterior render: the image and where the plate ended up."""

    image: Image.Image
    plate_quad: np.ndarray | None = None  # 4x2 pixel corners of the plate in view
    plate_look: PlateLook | None = None
    occluders: list[list[Point]] = field(default_factory=list)  # polygons drawn over the plate


def _mirror_sign(yaw: float) -> float:
    return 1.0 if math.sin(math.radians(yaw)) >= 0 or math.isclose(abs(yaw) % 360, 180) else -1.0


def make_camera(view: ExteriorView, shape: BodyShape, size: tuple[int, int]) -> Camera:
    """The camera for ``view``: orbit at yaw/pitch, then focal and principal point that frame the car."""
    w, h = size
    ms = _mirror_sign(view.yaw)
    yaw, pitch = math.radians(view.yaw), math.radians(view.pitch)
    target = np.array([0.0, 0.0, shape.roof_z * 0.45])
    pos = target + view.distance * np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw),
                                             math.sin(pitch)])
    probe = Camera.looking_at(pos, target)
    hl, hw = shape.length / 2, shape.width / 2 + 0.1
    pts = np.array([(x, y, z) for x in (-hl, hl) for y in (-hw, hw) for z in (0.0, shape.roof_z)])
    xy = probe.project(pts)
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    focal = min(view.fill * w / max(x1 - x0, 1e-6), 0.8 * h / max(y1 - y0, 1e-6))
    cx = w / 2 + ms * view.shift[0] * w - focal * (x0 + x1) / 2
    cy = h * 0.55 + view.shift[1] * h - focal * (y0 + y1) / 2
    return Camera.looking_at(pos, target, focal, cx, cy, math.radians(ms * view.roll))


def _resolve(color: Color, colors: dict[str, RGB], k: float = 1.0) -> RGB:
    if isinstance(color[0], str):
        return shade(colors[color[0]], float(color[1]) * k)  # type: ignore[index]
    return shade(color, k)  # type: ignore[arg-type]


def _draw_faces(draw: ImageDraw.ImageDraw, image: Image.Image, cam: Camera, faces: list[Face], light: np.ndarray,
                result: ExteriorResult, after_plate: list[list[Point]], sky: RGB, look: CarLook,
                colors: dict[str, RGB]) -> None:
    for face in faces:
        if not cam.facing(face.center, face.normal):
            continue
        # one projection per face, its decals included
        parts = [face.pts, *(d.pts for d in face.decals)]
        flat = cam.project(np.concatenate(parts) if len(parts) > 1 else face.pts).tolist()
        xy = [tuple(p) for p in flat[: len(face.pts)]]
        start = len(face.pts)
        k = 0.5 + 0.62 * max(0.0, float(face.normal @ light)) if face.shaded else 1.0
        draw.polygon(xy, fill=_resolve(face.color, colors, k))
        if result.plate_quad is not None:
            after_plate.append(xy)
        for d in face.decals:
            dxy = [tuple(p) for p in flat[start : start + len(d.pts)]]
            start += len(d.pts)
            if d.kind == "plate":
                plook = look.front_plate if d.slot == "front_plate" else look.rear_plate
                quad = np.asarray(dxy)
                hpx = float(np.hypot(*(quad[3] - quad[0])))
                if plook is not None and hpx >= 1.5:
                    tex = plate_texture(plook, min(96, max(10, int(hpx * 1.5))))
                    # texture corners TL, TR, BR, BL = decal corners 3, 2, 1, 0 (z up on the face)
                    warp_onto(image, tex, [dxy[3], dxy[2], dxy[1], dxy[0]])
                result.plate_quad = quad
                result.plate_look = plook
                continue
            if d.kind == "glass":
                up = float(face.normal[2])
                draw.polygon(dxy, fill=mix(GLASS, sky, 0.15 + 0.35 * max(0.0, up)))
                if len(dxy) == 4:  # a streak of reflected sky
                    a, b, c, e = (np.asarray(p) for p in dxy)
                    streak = [tuple(a + (b - a) * 0.25), tuple(a + (b - a) * 0.4), tuple(e + (c - e) * 0.3),
                              tuple(e + (c - e) * 0.15)]
                    draw.polygon(streak, fill=mix(GLASS, sky, 0.45))
            else:
                draw.polygon(dxy, fill=_resolve(d.color, colors, k))
            if result.plate_quad is not None:
                after_plate.append(dxy)


def render_exterior(look: CarLook, view: ExteriorView, size: tuple[int, int]) -> ExteriorResult:
    """Render one exterior photo.

    Args:
        look: The car (body type, paint, plates, driver side).
        view: Camera and surroundings.
        size: (width, height) in pixels.

    Returns:
        The image and the plate's projected corners (None when no plate faces the camera).
    """
    from fleetvision.synth.backdrops import draw_backdrop  # local: backdrops imports this module

    w, h = size
    shape = BODY_SHAPES[look.body_type]
    cam = make_camera(view, shape, size)
    ms = _mirror_sign(view.yaw)
    image = Image.new("RGB", size)
    sky = draw_backdrop(image, cam, view, ms)
    draw = ImageDraw.Draw(image)
    lr, lu, lc = view.light
    light = _n(lr * ms * cam.right + lu * np.array([0.0, 0.0, 1.0]) + lc * (-cam.fwd) + 1e-9)

    # soft ground shadow
    hl, hw = shape.length / 2 + 0.15, shape.width / 2 + 0.2
    shadow = np.array([(hl * math.cos(t) * 1.05, hw * math.sin(t) * 1.1, 0.0)
                       for t in np.linspace(0, 2 * math.pi, 24, endpoint=False)])
    shadow = np.clip(shadow, [-hl, -hw, 0], [hl, hw, 0])
    draw.polygon([tuple(p) for p in cam.project(shadow).tolist()], fill=(28, 28, 30))

    body, cabin, wheels, mirrors = build_car(look)
    colors = palette(look)
    result = ExteriorResult(image)
    after: list[list[Point]] = []
    cam_y = float(cam.pos[1])
    beside = shape.width / 2 + 0.25  # the camera is beside a mirror once it is outside its plane
    near = [m for m, side in zip(mirrors, (1, -1)) if side * cam_y > beside]
    far = [m for m, side in zip(mirrors, (1, -1)) if side * cam_y <= beside]
    for m in far:
        _draw_faces(draw, image, cam, m, light, result, after, sky, look, colors)
    treads = [f for wf in wheels for f in wf if f.name == "tread" and cam.facing(f.center, f.normal)]
    treads.sort(key=lambda f: -float(cam.depth(f.center[None, :])[0]))
    _draw_faces(draw, image, cam, treads, light, result, after, sky, look, colors)
    below_belt = float(cam.pos[2]) < shape.belt_z
    for piece in ([cabin, body] if below_belt else [body, cabin]):
        _draw_faces(draw, image, cam, piece, light, result, after, sky, look, colors)
    for m in near:
        _draw_faces(draw, image, cam, m, light, result, after, sky, look, colors)
    discs = [f for wf in wheels for f in wf if f.name == "disc" and cam.facing(f.center, f.normal)]
    discs.sort(key=lambda f: -float(cam.depth(f.center[None, :])[0]))
    _draw_faces(draw, image, cam, discs, light, result, after, sky, look, colors)

    if result.plate_quad is not None and view.occluder > 0:
        q = result.plate_quad
        x0, x1 = float(q[:, 0].min()), float(q[:, 0].max())
        top = float(q[:, 1].min())
        cover = view.occluder * (x1 - x0)
        left_side = (view.scene_seed % 2 == 0) == (ms > 0)
        ox0, ox1 = (x0 - cover * 0.4, x0 + cover) if left_side else (x1 - cover, x1 + cover * 0.4)
        oy0 = top - (x1 - x0) * 0.6
        post = [(ox0, oy0), (ox1, oy0), (ox1, float(h)), (ox0, float(h))]
        color = ((230, 190, 30), (120, 120, 125), (210, 90, 20))[view.scene_seed % 3]
        draw.polygon(post, fill=color)
        draw.polygon([(ox0, oy0 + (x1 - x0) * 0.15), (ox1, oy0 + (x1 - x0) * 0.15), (ox1, oy0 + (x1 - x0) * 0.3),
                      (ox0, oy0 + (x1 - x0) * 0.3)], fill=(30, 30, 30))
        after.append(post)
    result.occluders = after
    del w
    return result
