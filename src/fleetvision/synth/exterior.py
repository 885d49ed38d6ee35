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
from PIL import Image, ImageDraw, ImageFilter

from fleetvision.synth.canvas import RGB, Point, ellipse_points, shade, warp_onto
from fleetvision.synth.car_geometry import BODY_SHAPES, BodyShape, car_shape
from fleetvision.synth.overlays import PLATE_SIZE_M, PlateLook, plate_texture

# ----------------------------------------------------------------------------------------- colours
GLASS: RGB = (52, 60, 70)  # what is seen through tinted glass; reflections are added when shading
TYRE: RGB = (36, 36, 38)
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


# --------------------------------------------------------------------------------------- rendering
@dataclass(frozen=True)
class ExteriorView:
    """Where the camera is and what surrounds the car (all the per-photo randomness of an exterior)."""

    yaw: float  # degrees; see the module docstring
    pitch: float  # degrees above the horizontal
    distance: float  # metres from the car's centre
    fill: float  # share of the image width the car spans (above 1: a close-up, the car cut by the frame)
    shift: tuple[float, float]  # framing offset (fraction of width, height) in the canonical side
    roll: float  # degrees, canonical side
    light: tuple[float, float, float]  # (right, up, towards-camera) weights, canonical side
    background: str  # street | lot | showroom
    scene_seed: int  # background details
    occluder: float = 0.0  # 0 = none; else the share of the plate a post in front of it hides
    tall_fill: float = 0.8  # the most of the image height the car may span (above 1 for close-ups)


@dataclass
class ExteriorResult:
    """An exterior render: the image and where the plate ended up."""

    image: Image.Image
    plate_quad: np.ndarray | None = None  # 4x2 pixel corners of the plate in view
    plate_look: PlateLook | None = None
    occluders: list[list[Point]] = field(default_factory=list)  # polygons drawn over the plate


def mirror_sign(yaw: float) -> float:
    """+1 for views of the canonical side (and straight front/rear views), -1 for their mirrors."""
    return 1.0 if math.sin(math.radians(yaw)) >= 0 or math.isclose(abs(yaw) % 360, 180) else -1.0


_mirror_sign = mirror_sign


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
    focal = min(view.fill * w / max(x1 - x0, 1e-6), view.tall_fill * h / max(y1 - y0, 1e-6))
    cx = w / 2 + ms * view.shift[0] * w - focal * (x0 + x1) / 2
    cy = h * 0.55 + view.shift[1] * h - focal * (y0 + y1) / 2
    return Camera.looking_at(pos, target, focal, cx, cy, math.radians(ms * view.roll))


def _resolve(color: Color, colors: dict[str, RGB], k: float = 1.0) -> RGB:
    if isinstance(color[0], str):
        return shade(colors[color[0]], float(color[1]) * k)  # type: ignore[index]
    return shade(color, k)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ materials and shading
# Faces and decals are drawn flat in their albedo (PIL polygons), together with two buffers: which
# face each pixel shows (its plane) and its material. A numpy pass then lights every car pixel: the
# pixel's ray meets the face plane at a 3D point, the face normal is bent by where that point lies on
# the car (panels curve at their edges: smooth, vertex-normal-like gradients instead of one colour per
# face), and the point gets diffuse sun and sky light, a Fresnel reflection of the sky and the ground
# (the horizon line along the flanks) and a specular sun highlight.
MAT_NONE, MAT_PAINT, MAT_GLASS, MAT_RUBBER, MAT_METAL, MAT_LAMP, MAT_TAIL, MAT_TRIM, MAT_PLATE, MAT_HOLE = range(10)
# per material: ambient, ambient from above, diffuse, Fresnel F0, reflection weight, specular, shininess
_MATERIAL = np.array([
    # amb   up    kd    F0    env   ks    shin
    [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 1.0],  # none
    [0.30, 0.14, 0.58, 0.09, 1.00, 0.90, 70.0],  # paint: clear coat
    [0.80, 0.00, 0.15, 0.22, 1.00, 1.20, 160.0],  # glass
    [0.45, 0.15, 0.45, 0.02, 0.25, 0.06, 6.0],  # tyre rubber
    [0.30, 0.10, 0.45, 0.55, 0.80, 0.90, 40.0],  # rim metal, chrome
    [0.55, 0.05, 0.30, 0.10, 1.00, 1.20, 120.0],  # headlight lens
    [0.50, 0.05, 0.40, 0.07, 0.90, 1.00, 90.0],  # tail light lens
    [0.45, 0.15, 0.45, 0.03, 0.45, 0.25, 20.0],  # black plastic trim
    [0.78, 0.00, 0.28, 0.00, 0.00, 0.00, 1.0],  # plate (keeps its print legible)
    [0.60, 0.00, 0.20, 0.00, 0.00, 0.00, 1.0],  # openings, arches: deep shadow
], dtype=np.float32)


@dataclass(frozen=True)
class Environment:
    """What the car reflects: sky at the zenith and at the horizon, the ground, and the sun's colour."""

    zenith: RGB
    horizon: RGB
    ground: RGB
    sun: tuple[float, float, float] = (1.0, 0.97, 0.9)
    # the surroundings' outline above the horizon (buildings, trees, showroom walls) as the sine of its
    # elevation in evenly spaced azimuth bins around the camera (canonical side), and their colour
    skyline: tuple[float, ...] = ()
    scenery: RGB = (70, 78, 70)


def _material(color: Color, kind: str) -> int:
    if kind == "glass":
        return MAT_GLASS
    if kind == "plate":
        return MAT_PLATE
    if isinstance(color[0], str):
        return {"paint": MAT_PAINT, "rim": MAT_METAL, "headlight": MAT_LAMP, "taillight": MAT_TAIL}[color[0]]
    r, g, b = color  # type: ignore[misc]
    if (r, g, b) == TYRE:
        return MAT_RUBBER
    if r > 150 and g < 60:
        return MAT_TAIL
    if r > 200 and g > 120 and b < 100:
        return MAT_LAMP  # indicators
    if max(r, g, b) < 30:
        return MAT_HOLE
    if max(r, g, b) < 50:
        return MAT_TRIM if (r, g, b) != (44, 44, 47) else MAT_HOLE
    return MAT_METAL if abs(r - b) < 12 else MAT_TRIM


class _GBuffer:
    """Per-pixel face planes and materials, drawn alongside the albedo."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.fid = Image.new("L", size, 0)
        self.mat = Image.new("L", size, 0)
        self.fdraw = ImageDraw.Draw(self.fid)
        self.mdraw = ImageDraw.Draw(self.mat)
        self.normals: list[np.ndarray] = [np.array([0.0, 0.0, 1.0])]
        self.offsets: list[float] = [0.0]

    def add_face(self, face: Face) -> int:
        if len(self.normals) >= 255:  # never reached by one car (about 100 faces face the camera at most)
            return 255
        self.normals.append(face.normal)
        self.offsets.append(float(face.normal @ face.center))
        return len(self.normals) - 1

    def polygon(self, xy: list[Point], fid: int, material: int) -> None:
        self.fdraw.polygon(xy, fill=fid)
        self.mdraw.polygon(xy, fill=material)


def _draw_faces(draw: ImageDraw.ImageDraw, image: Image.Image, cam: Camera, faces: list[Face], gb: _GBuffer,
                result: ExteriorResult, after_plate: list[list[Point]], look: CarLook,
                colors: dict[str, RGB]) -> None:
    for face in faces:
        if not cam.facing(face.center, face.normal):
            continue
        # one projection per face, its decals included
        parts = [face.pts, *(d.pts for d in face.decals)]
        flat = cam.project(np.concatenate(parts) if len(parts) > 1 else face.pts).tolist()
        xy = [tuple(p) for p in flat[: len(face.pts)]]
        start = len(face.pts)
        fid = gb.add_face(face)
        draw.polygon(xy, fill=_resolve(face.color, colors))
        gb.polygon(xy, fid, _material(face.color, "poly"))
        if result.plate_quad is not None:
            after_plate.append(xy)
        for d in face.decals:
            dxy = [tuple(p) for p in flat[start : start + len(d.pts)]]
            start += len(d.pts)
            gb.polygon(dxy, fid, _cabin_material(d) if face.name in _CABIN_FACES else _material(d.color, d.kind))
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
            draw.polygon(dxy, fill=_resolve(d.color, colors))
            if result.plate_quad is not None:
                after_plate.append(dxy)


_CABIN_FACES = frozenset({"cside+1", "cside-1", "windshield", "rearwindow"})


def _cabin_material(d: Decal) -> int:
    """Decals on the cabin: what is seen through the glass (seats, steering wheel) is behind the glass."""
    m = _material(d.color, d.kind)
    return MAT_GLASS if m in (MAT_HOLE, MAT_TRIM) else m


def _ray_dirs(cam: Camera, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Unit world directions of the rays through pixel centres ``(xs, ys)``."""
    px = xs.astype(np.float32) - np.float32(cam.cx)
    py = ys.astype(np.float32) - np.float32(cam.cy)
    if cam.roll:
        c, s = math.cos(cam.roll), math.sin(cam.roll)
        px, py = px * c + py * s, -px * s + py * c
    d = (px / cam.focal)[:, None] * cam.right.astype(np.float32) - (py / cam.focal)[:, None] * \
        cam.up.astype(np.float32) + cam.fwd.astype(np.float32)
    return d / np.sqrt(np.einsum("ij,ij->i", d, d))[:, None]


SHADE_SIZE = 384  # lighting is computed at most this many pixels across, then scaled up (albedo stays sharp)


def _shade_car(image: Image.Image, gb: _GBuffer, cam: Camera, light: np.ndarray, env: Environment,
               shape: BodyShape) -> Image.Image:
    """Light the car's pixels (see the section comment); returns the shaded image.

    Operating limit: the lighting is smooth, so above ``SHADE_SIZE`` pixels it is computed on a
    subsampled grid and scaled up (cost in proportion to the grid, not the photo); the albedo (decals,
    plate print, edges) stays at full resolution.
    """
    w, h = image.size
    mat_full = np.asarray(gb.mat)
    ys, xs = np.nonzero(mat_full)
    if ys.size == 0:
        return image
    arr = np.array(image)
    alb = arr[ys, xs].astype(np.float32) * np.float32(1 / 255)
    k = max(1, math.ceil(max(w, h) / SHADE_SIZE))
    if k == 1:
        gain, add = _lighting(alb, mat_full[ys, xs], np.asarray(gb.fid)[ys, xs], xs, ys, gb, cam, light, env, shape)
    else:
        wl, hl = math.ceil(w / k), math.ceil(h / k)
        mat_lo = np.asarray(gb.mat.resize((wl, hl), Image.Resampling.NEAREST))
        yl, xl = np.nonzero(mat_lo)
        alb_lo = np.asarray(image.resize((wl, hl), Image.Resampling.NEAREST))[yl, xl].astype(np.float32) / 255
        fid_lo = np.asarray(gb.fid.resize((wl, hl), Image.Resampling.NEAREST))[yl, xl]
        g, a = _lighting(alb_lo, mat_lo[yl, xl], fid_lo, (xl + 0.5) * (w / wl) - 0.5, (yl + 0.5) * (h / hl) - 0.5,
                         gb, cam, light, env, shape)
        # scaled up as 8-bit images (fast bilinear): gain in [0, 2), added light in [0, 1]
        gain_lo = np.full((hl, wl), 128, np.uint8)
        gain_lo[yl, xl] = np.clip(g * 128.0 + 0.5, 0, 255).astype(np.uint8)
        add_lo = np.zeros((hl, wl, 3), np.uint8)
        add_lo[yl, xl] = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
        gain = np.asarray(Image.fromarray(gain_lo, "L").resize((w, h), Image.Resampling.BILINEAR))[ys, xs]
        add = np.asarray(Image.fromarray(add_lo, "RGB").resize((w, h), Image.Resampling.BILINEAR))[ys, xs]
        gain, add = gain.astype(np.float32) / 128.0, add.astype(np.float32) / 255.0
    out = alb * gain[:, None] + add
    arr[ys, xs] = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def _lighting(alb: np.ndarray, mat: np.ndarray, ids: np.ndarray, xs: np.ndarray, ys: np.ndarray, gb: _GBuffer,
              cam: Camera, light: np.ndarray, env: Environment, shape: BodyShape) -> tuple[np.ndarray, np.ndarray]:
    """Per car pixel: the factor on its albedo and the light added on top (reflections, highlights)."""
    normals = np.asarray(gb.normals, dtype=np.float32)
    n = normals[ids]
    k = np.asarray(gb.offsets, dtype=np.float32)[ids]
    d = _ray_dirs(cam, xs, ys)
    pos = cam.pos.astype(np.float32)
    denom = np.einsum("ij,ij->i", n, d)
    denom = np.where(np.abs(denom) < 1e-4, -1e-4, denom)
    t = (k - np.einsum("ij,j->i", n, pos)) / denom  # einsum, not @: no BLAS threads on a shared core
    p = pos + t[:, None] * d
    # bend the normals: panels roll off towards their edges, as on a real car
    hl, hw = shape.length / 2, shape.width / 2
    z = p[:, 2]
    body = z < shape.belt_z + 0.01
    zc = np.where(body, (z - (shape.clearance + shape.belt_z) / 2) / max(shape.belt_z - shape.clearance, 0.1),
                  (z - (shape.belt_z + shape.roof_z) / 2) / max(shape.roof_z - shape.belt_z, 0.1))
    yc = np.clip(p[:, 1] / hw, -1.2, 1.2)
    xc = np.clip((np.abs(p[:, 0]) - (hl - 0.45)) / 0.45, 0.0, 1.0) * np.sign(p[:, 0])
    bend = np.zeros_like(n)
    bend[:, 0] = 0.4 * xc * xc * np.sign(xc) * (1 - np.abs(n[:, 0]))
    bend[:, 1] = 0.55 * yc * yc * yc * (1 - np.abs(n[:, 1]))
    bend[:, 2] = 1.2 * zc * (1 - np.abs(n[:, 2]))
    # wheels: the tyre's sidewall and the rim bulge outwards from the hub
    wheel = (mat == MAT_RUBBER) | (mat == MAT_METAL) | (mat == MAT_HOLE)
    if wheel.any():
        wx = np.asarray(shape.wheel_x, dtype=np.float32)
        near = wx[np.argmin(np.abs(p[:, 0:1] - wx[None, :]), axis=1)]
        rx, rz = (p[:, 0] - near) / shape.wheel_r, (z - shape.wheel_r) / shape.wheel_r
        hub = wheel & (rx * rx + rz * rz < 1.1) & (np.abs(n[:, 1]) > 0.9)
        bend[hub, 0] = 0.6 * rx[hub]
        bend[hub, 2] = 0.6 * rz[hub]
        bend[hub, 1] = 0.0
    flat = (mat == MAT_PLATE) | (mat == MAT_HOLE)
    bend[flat] = 0.0
    nb = n + bend
    nb /= np.sqrt(np.einsum("ij,ij->i", nb, nb))[:, None]
    prm = _MATERIAL[mat]
    amb, up, kd, f0, envw, ks, shin = (prm[:, i] for i in range(7))
    lt = light.astype(np.float32)
    diff = np.clip(np.einsum("ij,j->i", nb, lt), 0.0, 1.0)
    ndv = np.clip(-np.einsum("ij,ij->i", nb, d), 0.0, 1.0)
    r = d - 2.0 * np.einsum("ij,ij->i", d, nb)[:, None] * nb
    rz = r[:, 2]
    zen, hor, gnd = (np.asarray(c, dtype=np.float32) / 255 for c in (env.zenith, env.horizon, env.ground))
    sky = hor + (zen - hor) * np.sqrt(np.clip(rz, 0.0, 1.0))[:, None]
    s = np.clip(rz * 7.0 + 0.35, 0.0, 1.0)[:, None]  # a crisp horizon line in the reflection
    envc = gnd * (0.55 + 0.45 * np.clip(1 + rz * 3, 0, 1))[:, None] * (1 - s) + sky * s
    if env.skyline:  # trees and buildings reflected in the paint and the glass
        ms = mirror_sign(math.degrees(math.atan2(float(cam.pos[1]), float(cam.pos[0]))))
        phi = np.arctan2(ms * np.einsum("ij,j->i", r, cam.right.astype(np.float32)),
                         np.einsum("ij,j->i", r, cam.fwd.astype(np.float32)))
        grid = np.linspace(-math.pi, math.pi, len(env.skyline), endpoint=False)
        elev = np.interp(phi, grid, np.asarray(env.skyline), period=2 * math.pi).astype(np.float32)
        inside = (rz > -0.01) & (rz < elev)
        scn = np.asarray(env.scenery, dtype=np.float32) / 255
        envc[inside] = scn * (0.8 + 0.4 * np.clip(rz[inside] / np.maximum(elev[inside], 1e-3), 0, 1))[:, None]
    fres = (f0 + (1 - f0) * (1 - ndv) ** 5) * envw
    metal = mat == MAT_METAL
    if metal.any():  # metals tint what they reflect
        envc[metal] *= 0.45 + 0.55 * alb[metal] / np.maximum(alb[metal].mean(axis=1, keepdims=True), 0.05)
    # ambient occlusion: darker towards the sills and under the car
    ao = np.where(body & (mat == MAT_PAINT), np.clip(0.62 + (z - shape.clearance) / 0.35, 0.62, 1.0), 1.0)
    spec = ks * np.clip(np.einsum("ij,j->i", r, lt), 0.0, 1.0) ** shin
    gain = (amb + up * np.clip(nb[:, 2], -0.5, 1.0) + kd * diff) * ao * (1 - fres)
    return gain, envc * fres[:, None] + spec[:, None] * np.asarray(env.sun, np.float32)


_SHADOW_LUT = [v // 5 for v in range(256)] * 3


def _contact_shadow(image: Image.Image, cam: Camera, shape: BodyShape, strength: float) -> None:
    """A soft shadow under the car, darkest under the sills and the tyres (in place)."""
    w, h = image.size
    hl, hw = shape.length / 2, shape.width / 2
    scale = max(1, round(max(w, h) / 320))  # drawn small and blurred: a soft edge at any size
    sw, sh = max(1, w // scale), max(1, h // scale)
    mask = Image.new("L", (sw, sh), 0)
    d = ImageDraw.Draw(mask)

    def poly(pts: np.ndarray, value: int) -> None:
        if (cam.depth(pts) < 0.3).any():
            return
        d.polygon([(x / scale, y / scale) for x, y in cam.project(pts).tolist()], fill=value)

    ts = np.linspace(0, 2 * math.pi, 28, endpoint=False)
    ring = np.stack([np.clip(1.2 * np.cos(ts), -1, 1) * (hl + 0.25), np.clip(1.25 * np.sin(ts), -1, 1) * (hw + 0.3),
                     np.zeros_like(ts)], axis=1)
    poly(ring, int(110 * strength))
    core = ring * np.array([0.93, 0.88, 0.0])
    poly(core, int(170 * strength))
    for wx in shape.wheel_x:
        for side in (1, -1):
            c = np.array([wx, side * (hw - 0.1), 0.0])
            blob = c + np.stack([0.4 * np.cos(ts), 0.17 * np.sin(ts), np.zeros_like(ts)], axis=1)
            poly(blob, int(235 * strength))
    radius = max(1.0, min(sw, sh) / 60)
    mask = mask.filter(ImageFilter.GaussianBlur(radius))
    if scale > 1:
        mask = mask.resize((w, h), Image.Resampling.BILINEAR)
    dark = image.point(_SHADOW_LUT)
    image.paste(dark, (0, 0), mask)


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
    shape = car_shape(look.body_type, look.variant)
    cam = make_camera(view, shape, size)
    ms = _mirror_sign(view.yaw)
    image = Image.new("RGB", size)
    env = draw_backdrop(image, cam, view, ms)
    lr, lu, lc = view.light
    light = _n(lr * ms * cam.right + lu * np.array([0.0, 0.0, 1.0]) + lc * (-cam.fwd) + 1e-9)
    _contact_shadow(image, cam, shape, 0.75 + 0.25 * (1.0 - lu))
    draw = ImageDraw.Draw(image)

    body, cabin, wheels, mirrors = build_car(look)
    colors = palette(look)
    result = ExteriorResult(image)
    gb = _GBuffer(size)
    after: list[list[Point]] = []
    cam_y = float(cam.pos[1])
    beside = shape.width / 2 + 0.25  # the camera is beside a mirror once it is outside its plane
    near = [m for m, side in zip(mirrors, (1, -1)) if side * cam_y > beside]
    far = [m for m, side in zip(mirrors, (1, -1)) if side * cam_y <= beside]
    for m in far:
        _draw_faces(draw, image, cam, m, gb, result, after, look, colors)
    treads = [f for wf in wheels for f in wf if f.name == "tread" and cam.facing(f.center, f.normal)]
    treads.sort(key=lambda f: -float(cam.depth(f.center[None, :])[0]))
    _draw_faces(draw, image, cam, treads, gb, result, after, look, colors)
    below_belt = float(cam.pos[2]) < shape.belt_z
    for piece in ([cabin, body] if below_belt else [body, cabin]):
        _draw_faces(draw, image, cam, piece, gb, result, after, look, colors)
    for m in near:
        _draw_faces(draw, image, cam, m, gb, result, after, look, colors)
    discs = [f for wf in wheels for f in wf if f.name == "disc" and cam.facing(f.center, f.normal)]
    discs.sort(key=lambda f: -float(cam.depth(f.center[None, :])[0]))
    _draw_faces(draw, image, cam, discs, gb, result, after, look, colors)
    image = _shade_car(image, gb, cam, light, env, shape)
    result.image = image
    draw = ImageDraw.Draw(image)

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
