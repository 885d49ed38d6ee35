"""Exterior shots: a small 3D car seen through a pinhole camera.

The car is a few convex solids (lower body, cabin, wheels, mirrors) whose faces carry decals
(lights, grille, windows, plates: :mod:`fleetvision.synth.painter_car`); this module projects, paints
and shades them. The camera orbits the car at the shot's yaw and pitch; faces are
back-face culled and painted far to near. Because the car is symmetric about its long axis (apart
from the driver-side cues: steering wheel through the glass, fuel cap) and every other asymmetric
choice (light, background, framing offset, roll) is mirrored with the camera side, a shot at
yaw ``-a`` is the mirror image of the shot at ``+a``: driver and passenger views are true mirrors.

World frame: ``x`` forward (the nose at ``+x``), ``y`` to the car's left, ``z`` up, metres, the
ground at ``z = 0``. Yaw 0 looks at the nose, +90 at the car's left side, 180 at the tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fleetvision.synth.canvas import RGB, Point, shade, warp_onto
from fleetvision.synth.car_geometry import BodyShape, car_shape
from fleetvision.synth.overlays import PlateLook, plate_texture
from fleetvision.synth.painter_car import TYRE, CarLook, Color, Decal, Face, build_car, palette


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
