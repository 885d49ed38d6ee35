"""Mesh primitives for the path-traced scenes: boxes, ellipsoids and rounded boxes, straps and rings, and
one mesh of several. Each is (vertices float32 [V, 3], faces uint32 [F, 3]), outward faces; pure numpy.
The car's small parts (:mod:`fleetvision.synth.pbr_details`) and the cabin (:mod:`fleetvision.synth.pbr_cabin`)
are built from them.
"""

from __future__ import annotations

import math

import numpy as np

Mesh = tuple[np.ndarray, np.ndarray]
"""(vertices float32 [V, 3], faces uint32 [F, 3])."""

_BOX_FACES = np.array([[0, 1, 2], [0, 2, 3]], np.uint32)
# the unit cube's 6 faces, 4 corners each counter-clockwise seen from outside (own vertices: flat shading)
_CUBE = np.array([
    [[1, -1, -1], [1, 1, -1], [1, 1, 1], [1, -1, 1]], [[-1, 1, -1], [-1, -1, -1], [-1, -1, 1], [-1, 1, 1]],
    [[1, 1, -1], [-1, 1, -1], [-1, 1, 1], [1, 1, 1]], [[-1, -1, -1], [1, -1, -1], [1, -1, 1], [-1, -1, 1]],
    [[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], [[-1, 1, -1], [1, 1, -1], [1, -1, -1], [-1, -1, -1]],
], float)


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    """Rotation by ``pitch`` about y (nose down for positive), then ``yaw`` about z (radians)."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    about_z = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    about_y = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    return about_z @ about_y


def box_mesh(centre: np.ndarray | tuple[float, float, float], half: tuple[float, float, float],
             yaw: float = 0.0, pitch: float = 0.0) -> Mesh:
    """A box of half sizes ``half`` (x, y, z) turned by ``pitch`` then ``yaw`` (radians) about its centre;
    each face has its own 4 vertices, so a renderer shades it flat."""
    corners = _CUBE.reshape(-1, 3) * np.asarray(half, float)
    verts = corners @ _rotation(yaw, pitch).T + np.asarray(centre, float)
    faces = np.concatenate([_BOX_FACES + 4 * k for k in range(6)])
    return verts.astype(np.float32), faces


def ellipsoid_mesh(centre: np.ndarray | tuple[float, float, float], radii: tuple[float, float, float],
                   segments: int = 12) -> Mesh:
    """A closed ellipsoid (a UV sphere scaled by ``radii``), outward faces."""
    rings, k = segments // 2, segments
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, k, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    unit = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0.0, 0.0, 1.0]], unit, [[0.0, 0.0, -1.0]]]) * np.asarray(radii, float)
    return (verts + np.asarray(centre, float)).astype(np.float32), sphere_faces(rings, k)


def sphere_faces(rings: int, k: int) -> np.ndarray:
    """The faces (uint32 [F, 3], outward) of a UV sphere's vertices laid out as :func:`ellipsoid_mesh` lays
    them: the top pole, ``rings - 1`` rings of ``k`` vertices from the top down, the bottom pole."""
    faces: list[list[int]] = []
    bottom = 1 + (rings - 1) * k
    for j in range(k):
        faces.append([0, 1 + j, 1 + (j + 1) % k])
        faces.append([bottom, 1 + (rings - 2) * k + (j + 1) % k, 1 + (rings - 2) * k + j])
    for i in range(rings - 2):
        for j in range(k):
            a, b = 1 + i * k + j, 1 + i * k + (j + 1) % k
            faces += [[a, a + k, b + k], [a, b + k, b]]
    return np.asarray(faces, np.uint32)


def merge(meshes: list[Mesh]) -> Mesh:
    """One mesh of several (faces renumbered)."""
    verts, faces, offset = [], [], 0
    for v, f in meshes:
        verts.append(np.asarray(v, np.float32))
        faces.append(np.asarray(f, np.uint32) + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(faces).astype(np.uint32)


def superellipsoid_mesh(centre: tuple[float, float, float] | np.ndarray, radii: tuple[float, float, float],
                        roundness: float = 0.35, segments: int = 16, pitch: float = 0.0) -> Mesh:
    """A rounded box: a superellipsoid of half sizes ``radii`` (``roundness`` 1 an ellipsoid, towards 0 a
    box), pitched by ``pitch`` radians about y (its top leaning back for positive), outward faces."""
    rings, k = segments // 2 + 1, segments
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, k, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")

    def sp(v: np.ndarray) -> np.ndarray:
        return np.sign(v) * np.abs(v) ** roundness

    unit = np.stack([sp(np.sin(t)) * sp(np.cos(p)), sp(np.sin(t)) * sp(np.sin(p)), sp(np.cos(t))], -1).reshape(-1, 3)
    verts = np.concatenate([[[0.0, 0.0, 1.0]], unit, [[0.0, 0.0, -1.0]]]) * np.asarray(radii, float)
    c, s = math.cos(pitch), math.sin(pitch)
    verts = verts @ np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]]).T
    return (verts + np.asarray(centre, float)).astype(np.float32), sphere_faces(rings, k)


def strap_mesh(start: np.ndarray | tuple[float, ...], end: np.ndarray | tuple[float, ...],
               half_width: float, half_thickness: float = 0.004) -> Mesh:
    """A flat strap (a seat belt, a steering wheel's spoke) from ``start`` to ``end``: a box along the segment."""
    a, b = np.asarray(start, float), np.asarray(end, float)
    d = b - a
    length = float(np.linalg.norm(d))
    yaw = math.atan2(d[1], d[0])
    pitch = -math.atan2(d[2], math.hypot(d[0], d[1]))
    return box_mesh((a + b) / 2, (length / 2, half_width, half_thickness), yaw, pitch)


def torus_mesh(centre: np.ndarray, axis: np.ndarray, radius: float, tube: float, k: int = 32, m: int = 8) -> Mesh:
    """A ring (a steering wheel's rim) around the unit ``axis`` through ``centre``."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    u = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    a = np.linspace(0, 2 * np.pi, k, endpoint=False)[:, None]
    b = np.linspace(0, 2 * np.pi, m, endpoint=False)[None, :]
    ring = np.cos(a)[..., None] * u + np.sin(a)[..., None] * v  # [k, 1, 3]
    verts = centre + (radius + tube * np.cos(b))[..., None] * ring + (tube * np.sin(b))[..., None] * axis
    verts = verts.reshape(-1, 3)
    faces = []
    for i in range(k):
        for j in range(m):
            p, q = i * m + j, ((i + 1) % k) * m + j
            p2, q2 = i * m + (j + 1) % m, ((i + 1) % k) * m + (j + 1) % m
            faces += [[p, q, q2], [p, q2, p2]]
    return verts.astype(np.float32), np.asarray(faces, np.uint32)
