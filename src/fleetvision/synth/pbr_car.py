"""Smooth procedural cars for the physically based renderer (:mod:`fleetvision.synth.pbr_scene`).

The painter's cars (:mod:`fleetvision.synth.exterior`) are a few flat-shaded convex solids; real
cars are rounded panels, glass, tyres and rims, lights that wrap round the corners. Here a car is a
signed distance field built from the same proportions (:func:`fleetvision.synth.car_geometry.car_shape`):
a lower body rounded in plan and section, a cabin with tumblehome, wheel arches, a tray for utes;
window openings are cut from the paint and a glass skin sits just inside them; lights, the grille and
unpainted trim are thin shells on the surface. Marching cubes turns each field into a triangle mesh.

Pure numpy and scikit-image, no renderer: the meshes are tested on their own.

World frame (as in :mod:`fleetvision.synth.car_geometry`): ``x`` forward (the nose at ``+x``), ``y`` to
the car's left, ``z`` up, metres, the ground at ``z = 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from fleetvision.synth.car_geometry import BODY_SHAPES, SHAPE_VARIANTS, BodyShape, car_shape
from fleetvision.synth.overlays import PLATE_SIZE_M
from fleetvision.synth.pbr_details import Layout, car_details, grid_surface
from fleetvision.synth.pbr_lettering import LetteringMount, rear_lettering_mounts
from fleetvision.synth.pbr_shapes import merge

GRID_M = 0.035  # marching-cubes cell (metres): panels stay smooth, a car meshes in well under a second
LOOKS = 4  # light, grille and trim layouts per (body type, proportion variant)
PARTS = ("paint", "glass", "head", "tail", "tail_clear", "tail_amber", "grille", "trim", "chrome", "drl")

# The rear of the glasshouse by body type, from real cars' proportions: (deck behind the rear screen's
# foot, metres; rear-screen rake, degrees from vertical). A sedan's or coupe's screen lies back over a
# boot deck; a hatch's tailgate glass is raked (~35-50 deg, a Golf's ~40) right at the tail; wagons,
# SUVs and vans stand nearly upright at the tail. The painter's shapes draw hatches and SUVs with the
# wagon's near-vertical tail, which made path-traced hatches read as small wagons.
REAR_PROFILE: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "sedan": ((0.45, 0.70), (55.0, 65.0)),
    "coupe": ((0.35, 0.60), (62.0, 72.0)),
    "hatch": ((0.05, 0.14), (35.0, 50.0)),
    "wagon": ((0.03, 0.10), (12.0, 25.0)),
    "suv": ((0.03, 0.12), (15.0, 32.0)),
    "van": ((0.00, 0.05), (3.0, 12.0)),
}
SKIN_M = 0.012  # the lamp, grille and trim skin's half thickness, in field units
PLATE_PROUD_M = 0.015  # a plate stands this far out from its mount on the skin
MIN_ROOF_M = 0.6  # the roof never shorter than this (a steep rake on a short cabin keeps some roof)


@dataclass(frozen=True)
class CarMesh:
    """The meshes of one car and where its plates sit.

    Attributes:
        shape: The proportions the car was built from.
        parts: Part name (``PARTS``) -> (vertices float32 [V, 3], faces uint32 [F, 3]); ``trim``,
            ``chrome``, ``drl`` (a lit daytime-running lamp) and the tail lamps' ``tail_clear`` and
            ``tail_amber`` sections (:func:`tail_lamp_sections`) may be absent.
        plate_mounts: ``front``/``rear`` -> (x of the surface at y = 0, plate centre height z).
        wheels: (tyre meshes, rim meshes): lists of (vertices, faces); rims come as (kind, vertices,
            faces) with kind ``dark`` (the disc behind the spokes) or ``alloy``.
        lettering: Spots on the tail for a maker's or model's lettering
            (:func:`fleetvision.synth.pbr_lettering.rear_lettering_mounts`); each photo letters them or not.
    """

    shape: BodyShape
    parts: dict[str, tuple[np.ndarray, np.ndarray]]
    plate_mounts: dict[str, tuple[float, float]]
    wheels: tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[str, np.ndarray, np.ndarray]]]
    lettering: tuple[LetteringMount, ...] = ()

    def plate_centre(self, end: str) -> np.ndarray:
        """The centre of the plate at ``end`` (a key of ``plate_mounts``), in the car's frame: it stands
        ``PLATE_PROUD_M`` out from its mount, towards that end."""
        x_surface, zc = self.plate_mounts[end]
        return np.array([x_surface + (PLATE_PROUD_M if end == "front" else -PLATE_PROUD_M), 0.0, zc])

    def lamp_vertices(self, end: str) -> np.ndarray:
        """Every vertex [V, 3] of the lamps at ``end`` (``front``: the headlamps; ``rear``: the tail lamps,
        all their sections: red, clear and amber, :func:`tail_lamp_sections`).

        Raises:
            ValueError: ``end`` is neither ``front`` nor ``rear``.
        """
        if end not in ("front", "rear"):
            raise ValueError(f"end must be 'front' or 'rear', got {end!r}")
        names = ("head",) if end == "front" else ("tail", "tail_clear", "tail_amber")
        return np.concatenate([self.parts[n][0] for n in names if n in self.parts])


def smooth_max(a: np.ndarray, b: np.ndarray | float, r: float) -> np.ndarray:
    """Polynomial smooth maximum (intersection of two fields with a rounded edge of radius ~r)."""
    h = np.clip(0.5 - 0.5 * (b - a) / r, 0.0, 1.0)
    return a * h + b * (1 - h) + r * h * (1 - h)


def smooth_min(a: np.ndarray, b: np.ndarray | float, r: float) -> np.ndarray:
    """Polynomial smooth minimum (union with a fillet)."""
    return -smooth_max(-a, -np.asarray(b), r)


def _lerp(a: float | np.ndarray, b: float | np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t


def _box(x: np.ndarray, y: np.ndarray, z: np.ndarray, bounds: tuple[float, ...], r: float = 0.02) -> np.ndarray:
    x0, x1, y0, y1, z0, z1 = bounds
    return smooth_max(smooth_max(smooth_max(x0 - x, x - x1, r), smooth_max(y0 - y, y - y1, r), r),
                      smooth_max(z0 - z, z - z1, r), r)


def pbr_shape(body_type: str, variant: int, rng: np.random.Generator) -> BodyShape:
    """``car_shape(body_type, variant)`` with the rear screen's foot and rake drawn from ``REAR_PROFILE``
    (utes and unknown types keep the painter's cabin).

    Raises:
        KeyError: Unknown body type.
    """
    s = car_shape(body_type, variant)
    if body_type not in REAR_PROFILE:
        return s
    (deck_lo, deck_hi), (rake_lo, rake_hi) = REAR_PROFILE[body_type]
    foot = -s.length / 2 + float(rng.uniform(deck_lo, deck_hi))
    run = (s.roof_z - s.belt_z) * math.tan(math.radians(float(rng.uniform(rake_lo, rake_hi))))
    roof_rear = min(foot + run, s.cabin_roof[1] - MIN_ROOF_M)
    return replace(s, cabin_base=(foot, s.cabin_base[1]), cabin_roof=(roof_rear, s.cabin_roof[1]))


def cabin_profile(s: BodyShape, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(front x, rear x, half width) of the glasshouse at each point's height: the screens lean along
    the cabin's base-to-roof lines, the sides lean in (tumblehome) and the glasshouse narrows towards
    its rear in plan, as real cabins do."""
    t = np.clip((z - s.belt_z) / (s.roof_z - s.belt_z), 0.0, 1.0)
    front = _lerp(s.cabin_base[1], s.cabin_roof[1], t)
    rear = _lerp(s.cabin_base[0], s.cabin_roof[0], t)
    middle = (s.cabin_base[0] + s.cabin_base[1]) / 2
    towards_rear = np.clip((middle - x) / max(middle - s.cabin_base[0], 0.3), 0.0, 1.0)
    half = _lerp(0.47 * s.width, 0.39 * s.width, t) * (1.0 - 0.07 * towards_rear ** 2)
    return front, rear, half


def body_field(s: BodyShape, x: np.ndarray, y: np.ndarray, z: np.ndarray, tail_drop: float, plan_p: float
               ) -> np.ndarray:
    """Signed distance (approximate, negative inside) of the car's outer skin."""
    ax = s.length / 2
    # sides bow out between the sill and the shoulder (a flat-sided box reads as a toy)
    mid, half_h = (s.clearance + s.belt_z) / 2, (s.belt_z - s.clearance) / 2
    by = s.width / 2 * (1.0 - 0.05 * np.clip((z - mid) / half_h, -1.0, 1.0) ** 2)
    plan = ((np.abs(x / ax) ** plan_p + np.abs(y / by) ** plan_p) ** (1 / plan_p) - 1.0) * np.minimum(ax, by)
    # the top of the lower body along x: boot deck, belt line, bonnet falling to the nose
    knots_x = [-ax, s.cabin_base[0], s.cabin_base[1], ax - s.hood, ax]
    knots_z = [s.belt_z - tail_drop, s.belt_z, s.belt_z, s.belt_z - 0.02, s.nose_z]
    order = np.argsort(knots_x)
    top = np.interp(x, np.asarray(knots_x)[order], np.asarray(knots_z)[order])
    lower = smooth_max(plan, smooth_max(s.clearance - z, z - top, 0.06), 0.08)
    front, rear, half = cabin_profile(s, x, z)
    crown = s.roof_z - 0.05 * (np.abs(y) / (0.39 * s.width)) ** 2  # the roof falls towards its edges
    cabin = smooth_max(smooth_max(x - front, rear - x, 0.05),
                       smooth_max(np.abs(y) - half, smooth_max(s.belt_z - 0.1 - z, z - crown, 0.07), 0.07), 0.05)
    field = smooth_min(lower, cabin, 0.04)
    if s.tray:
        tray = np.maximum.reduce([x - (s.cabin_base[0] - 0.08), -ax + 0.12 - x, np.abs(y) - (by - 0.08),
                                  s.belt_z - 0.35 - z])
        field = np.maximum(field, -tray)
    for wx in s.wheel_x:  # wheel arches, cut from the outer part of the body only
        arch = np.sqrt((x - wx) ** 2 + (z - s.wheel_r) ** 2) - (s.wheel_r + 0.05)
        field = np.maximum(field, -np.maximum(arch, -(np.abs(y) - (by - 0.3))))
    return field


def _marching_cubes(field: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from skimage.measure import marching_cubes

    verts, faces, _, _ = marching_cubes(field, 0.0, spacing=(GRID_M, GRID_M, GRID_M))
    return (verts + origin).astype(np.float32), faces.astype(np.uint32)


def tail_lamp_sections(tail: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, nose: float, wrap: float,
                       tail_in: float, half_width: float, tail_z: tuple[float, float], rng: np.random.Generator
                       ) -> dict[str, np.ndarray]:
    """The tail lamps' shell field cut into the sections real tail lamps have: red (``tail``), a clear
    reversing lamp (``tail_clear``, chrome behind clear glass) and an amber indicator (``tail_amber``),
    each a field of its own with a clean edge. One car in five keeps its lamps all red; the others get a
    horizontal band (clear, at the bottom or the middle of the lamp; an amber band above it on 40%) or a
    clear inboard section (amber on the wrapped corner on 30%), never more than 0.35 of the lamp's height
    or width. A light bar between the lamps stays red. A section that misses the lamp is left out; the red
    one is always there (the whole shell, should the cuts leave nothing red).

    Args:
        tail: The lamps' shell (signed distance on the grid ``x, y, z``).
        nose, wrap: Half the car's length; how far the lamps wrap round the rear corners (metres).
        tail_in, half_width: The lamps' inner edge and the car's half width, |y|.
        tail_z: The lamps' bottom and top.
        rng: Draws the layout (the car's own stream).
    """
    lo, hi = tail_z
    x0, x1, ay = -nose - 0.2, -nose + wrap, np.abs(y)
    clear = amber = None
    kind = rng.random()
    if kind < 0.45:
        h = float(rng.uniform(0.22, 0.35)) * (hi - lo)
        base = lo if rng.random() < 0.5 else lo + (hi - lo - h) / 2
        clear = _box(x, ay, z, (x0, x1, tail_in - 0.03, half_width + 0.1, base, base + h), 0.005)
        if rng.random() < 0.4:
            top = base + h + float(rng.uniform(0.2, 0.3)) * (hi - lo)
            amber = _box(x, ay, z, (x0, x1, tail_in - 0.03, half_width + 0.1, base + h, top), 0.005)
    elif kind < 0.8:
        inboard = tail_in + float(rng.uniform(0.2, 0.35)) * (half_width - tail_in)
        clear = _box(x, ay, z, (x0, x1, tail_in - 0.03, inboard, lo - 0.05, hi + 0.05), 0.005)
        if rng.random() < 0.3:
            amber = _box(x, ay, z, (-nose + 0.08, x1 + 0.2, inboard, half_width + 0.1, lo - 0.05, hi + 0.05), 0.005)
    sections = {}
    cut = tail
    for name, box in (("tail_clear", clear), ("tail_amber", amber)):
        section = None if box is None else np.maximum(tail, box)
        if section is not None and section.min() < 0:  # a section that misses the lamp: none
            sections[name] = section
            cut = np.maximum(cut, -box)
    return {"tail": cut, **sections} if cut.min() < 0 else {"tail": tail}


# Every (body type, proportion variant, look): a training set's rows visit them in random order, so a smaller
# cache rebuilt most meshes again and again (0.19 s each; all 168 hold about 320 MB; session 35, measured).
MESH_CACHE_SIZE = len(BODY_SHAPES) * SHAPE_VARIANTS * LOOKS


@lru_cache(maxsize=MESH_CACHE_SIZE)
def car_mesh(body_type: str, variant: int, look: int) -> CarMesh:
    """The meshes of one car: proportions from ``pbr_shape(body_type, variant)``, details from ``look``.

    Raises:
        KeyError: Unknown body type.
    """
    rng = np.random.default_rng([variant, look, len(body_type)])
    s = pbr_shape(body_type, variant, rng)
    tail_drop, plan_p = float(rng.uniform(0.0, 0.08)), float(rng.uniform(4.0, 8.0))
    ax, by = s.length / 2 + 0.1, s.width / 2 + 0.1
    xs, ys, zs = np.arange(-ax, ax, GRID_M), np.arange(-by, by, GRID_M), np.arange(0.0, s.roof_z + 0.1, GRID_M)
    origin = np.array([xs[0], ys[0], zs[0]])
    x, y, z = np.meshgrid(xs, ys, zs, indexing="ij")
    body = body_field(s, x, y, z, tail_drop, plan_p)
    w = s.width
    # window openings: side glass between the pillars, windscreen and rear screen at the cabin's ends
    front, rear, half = cabin_profile(s, x, z)
    z_lo, z_hi = s.belt_z + 0.05, s.roof_z - float(rng.uniform(0.05, 0.09))
    a_pillar, c_pillar = float(rng.uniform(0.07, 0.12)), float(rng.uniform(0.1, 0.25))
    side_back = rear + c_pillar if s.rear_windows else (s.cabin_roof[0] + s.cabin_roof[1]) / 2 + 0.15
    band = smooth_max(z_lo - z, z - z_hi, 0.03)
    side = smooth_max(smooth_max(band, smooth_max(side_back - x, x - (front - a_pillar), 0.03), 0.03),
                      half - 0.15 - np.abs(y), 0.02)
    if s.doors >= 4 and s.rear_windows:
        side = smooth_max(side, 0.045 - np.abs(x - ((s.cabin_roof[0] + s.cabin_roof[1]) / 2 + 0.1)), 0.01)
    screens = smooth_max(smooth_max(band, np.abs(y) - (half - 0.07), 0.03),
                         -smooth_max(x - front + 0.2, rear + 0.2 - x, 0.02), 0.02)
    paint = smooth_max(body, -np.minimum(side, screens), 0.015)
    glass = smooth_max(body + 0.012, smooth_max(s.belt_z - 0.02 - z, z - s.roof_z + 0.02, 0.02), 0.02)
    parts = {"paint": _marching_cubes(paint, origin), "glass": _marching_cubes(glass, origin)}
    shell = np.abs(body) - SKIN_M  # a thin skin on the surface: lights, grille and trim are pieces of it
    nose = s.length / 2
    hl_hi = s.nose_z - float(rng.uniform(0.02, 0.06))
    hl_lo = hl_hi - float(rng.uniform(0.08, 0.18))
    head_in = float(rng.uniform(0.42, 0.6)) * w / 2
    head = smooth_max(shell, _box(x, np.abs(y), z, (nose - 0.3, nose + 0.2, head_in, w / 2, hl_lo, hl_hi), 0.03), 0.01)
    tl_hi = s.belt_z - tail_drop - float(rng.uniform(0.02, 0.08))  # below the deck at the tail
    tl_lo = tl_hi - float(rng.uniform(0.1, 0.24))
    tail_in = float(rng.uniform(0.5, 0.78)) * w / 2
    wrap = float(rng.uniform(0.12, 0.35))  # how far the tail lights wrap round the rear corners
    # inboard of the rounded corner's edge where the wrap ends, or a round plan leaves no lamp at all
    edge = w / 2 * (1 - ((nose - wrap) / nose) ** plan_p) ** (1 / plan_p)
    tail_in = min(tail_in, 0.85 * edge)
    tail = smooth_max(shell, _box(x, np.abs(y), z, (-nose - 0.2, -nose + wrap, tail_in, w / 2, tl_lo, tl_hi), 0.03),
                      0.01)
    if rng.random() < 0.3:  # a light bar across the tail
        bar = smooth_max(shell, _box(x, y, z, (-nose - 0.2, -nose + 0.1, -w / 2, w / 2, tl_hi - 0.04, tl_hi), 0.01),
                         0.01)
        tail = np.minimum(tail, bar)
    grille_half = float(rng.uniform(0.25, 0.45)) * w / 2
    grille_lo = s.clearance + float(rng.uniform(0.12, 0.25))
    grille = smooth_max(shell, _box(x, y, z, (nose - 0.3, nose + 0.2, -grille_half, grille_half, grille_lo,
                                              hl_hi - 0.03), 0.03), 0.01)
    parts["head"] = _marching_cubes(head, origin)
    # red, clear and amber sections, from their own stream: every car's other parts are as they were
    for part, field in tail_lamp_sections(tail, x, y, z, nose, wrap, tail_in, w / 2, (tl_lo, tl_hi),
                                          np.random.default_rng([variant, look, len(body_type), 3])).items():
        parts[part] = _marching_cubes(field, origin)
    parts["grille"] = _marching_cubes(grille, origin)
    offroad = body_type in ("suv", "ute")
    trims = []
    if rng.random() < (0.95 if offroad else 0.6):  # unpainted bumpers and sills; deeper on SUVs and utes
        sill = s.clearance + float(rng.uniform(0.12, 0.28) if offroad else rng.uniform(0.06, 0.16))
        trims.append(smooth_max(shell, z - sill, 0.01))
    if offroad and rng.random() < 0.75:  # black wheel-arch cladding
        for wx in s.wheel_x:
            trims.append(smooth_max(shell, np.sqrt((x - wx) ** 2 + (z - s.wheel_r) ** 2) - (s.wheel_r + 0.14), 0.01))
    if body_type in ("suv", "wagon") and rng.random() < 0.5:  # roof rails
        rail_y = 0.3 * w
        trims.append(_box(x, np.abs(y), z, (s.cabin_roof[0] + 0.1, s.cabin_roof[1] - 0.15, rail_y - 0.025,
                                            rail_y + 0.025, s.roof_z - 0.08, s.roof_z + 0.05), 0.015))
    if trims:
        parts["trim"] = _marching_cubes(np.minimum.reduce(trims), origin)
    # plates and small parts sit on the outside of the lamp and trim skin, which the field's shallow
    # gradient at the ends puts up to 3 cm in front of the paint: mounted on the paint, a plate was
    # hidden behind a black bumper while its label said it was in view
    surface = grid_surface(body - SKIN_M, xs, ys, zs)
    mounts: dict[str, tuple[float, float]] = {}
    front_z = grille_lo - 0.09 if grille_lo - 0.09 > s.clearance + 0.1 else s.clearance + 0.16
    for end, zc in (("front", front_z), ("rear", (s.clearance + tl_lo) / 2 + 0.05)):
        x_surface = surface.end_x(end, 0.0, zc)
        if x_surface is not None:
            mounts[end] = (x_surface, float(zc))
    layout = Layout(grille_z=(grille_lo, hl_hi - 0.03), grille_half=grille_half, head_z=(hl_lo, hl_hi),
                    head_in=head_in, tail_top_z=tl_hi,
                    front_plate_x=mounts["front"][0] if "front" in mounts else None)
    details = car_details(s, body_type, surface, np.random.default_rng([variant, look, len(body_type), 1]), layout)
    for part, meshes in details.items():
        parts[part] = merge([parts[part], *meshes] if part in parts else meshes)
    # its own stream, drawn last: every car's other parts are as they were before lettering (session 33)
    plate = None
    if "rear" in mounts:
        plate = (mounts["rear"][0], mounts["rear"][1] + max(h for _, h in PLATE_SIZE_M.values()) / 2)
    lettering = rear_lettering_mounts(surface.end_x, tail_in, (tl_lo, tl_hi), plate,
                                      np.random.default_rng([variant, look, len(body_type), 2]))
    return CarMesh(s, parts, mounts, wheel_meshes(s, rng), lettering)


def _ring(cx: float, y: float, cz: float, r: float, k: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, k, endpoint=False)
    return np.stack([cx + r * np.cos(a), np.full(k, y), cz + r * np.sin(a)], 1)


def _band(first: int, second: int, k: int) -> list[list[int]]:
    """Quads (as two triangles each) joining ring ``first..first+k`` to ring ``second..second+k``."""
    faces = []
    for i in range(k):
        j = (i + 1) % k
        faces += [[first + i, first + j, second + j], [first + i, second + j, second + i]]
    return faces


def wheel_meshes(s: BodyShape, rng: np.random.Generator, segments: int = 32
                 ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[str, np.ndarray, np.ndarray]]]:
    """Four tyres (tread and outer sidewall) and their rims (a dark disc and alloy spokes, lip and hub)."""
    k = segments
    n_spokes = int(rng.integers(4, 11))
    rim_r = s.wheel_r * float(rng.uniform(0.58, 0.72))
    spoke_w = rim_r * (0.12 if n_spokes > 6 else 0.2)
    phase = float(rng.uniform(0, 1))
    width = 0.21
    tyres: list[tuple[np.ndarray, np.ndarray]] = []
    rims: list[tuple[str, np.ndarray, np.ndarray]] = []
    for wx in s.wheel_x:
        for sgn in (1.0, -1.0):
            yc = sgn * (s.width / 2 - 0.12)
            y_out, y_in = yc + sgn * width / 2, yc - sgn * width / 2
            verts = np.concatenate([_ring(wx, y_out, s.wheel_r, s.wheel_r, k), _ring(wx, y_in, s.wheel_r, s.wheel_r, k),
                                    _ring(wx, y_out, s.wheel_r, rim_r, k)])
            tyres.append((verts.astype(np.float32), np.array(_band(0, k, k) + _band(2 * k, 0, k), np.uint32)))
            hub = np.array([wx, y_out - sgn * 0.03, s.wheel_r])
            disc = np.concatenate([hub[None], _ring(wx, y_out - sgn * 0.03, s.wheel_r, rim_r, k)])
            rims.append(("dark", disc.astype(np.float32),
                         np.array([[0, 1 + i, 1 + (i + 1) % k] for i in range(k)], np.uint32)))
            pts: list[np.ndarray] = []
            faces: list[list[int]] = []
            centre = hub + np.array([0, sgn * 0.01, 0])
            for m in range(n_spokes):
                th = 2 * np.pi * (m + phase) / n_spokes
                d, p = np.array([np.cos(th), 0, np.sin(th)]), np.array([-np.sin(th), 0, np.cos(th)])
                b = len(pts)
                pts += [centre + p * spoke_w * 0.6, centre - p * spoke_w * 0.6, centre + d * rim_r - p * spoke_w,
                        centre + d * rim_r + p * spoke_w]
                faces += [[b, b + 1, b + 2], [b, b + 2, b + 3]]
            b = len(pts)
            pts += list(_ring(wx, y_out + sgn * 0.012, s.wheel_r, rim_r, k))
            pts += list(_ring(wx, y_out + sgn * 0.012, s.wheel_r, 0.85 * rim_r, k))
            faces += _band(b, b + k, k)
            rims.append(("alloy", np.array(pts, np.float32), np.array(faces, np.uint32)))
    return tyres, rims
