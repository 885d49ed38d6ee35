"""Path-traced interiors (fleetvision.synth.pbr_cabin): the cabin's geometry and cameras (pure numpy) and a
tiny render where Mitsuba is installed."""

from __future__ import annotations

import numpy as np
import pytest

from fleetvision.synth.car_geometry import BODY_SHAPES
from fleetvision.synth.pbr_cabin import (
    CABIN_PARTS,
    FLOOR_Z,
    cabin_geometry,
    cabin_scene,
    render_cabin,
)
from fleetvision.synth.pbr_kit import pbr_available
from fleetvision.synth.pbr_shapes import strap_mesh, superellipsoid_mesh, torus_mesh
from fleetvision.synth.rng import derive_rng
from fleetvision.taxonomy import load_taxonomy


def test_the_traced_cabin_parts_are_the_interior_classes_but_the_boot() -> None:
    interiors = {c.name for c in load_taxonomy().classes if c.group == "interior"}
    assert set(CABIN_PARTS) == interiors - {"boot"}


def test_the_shapes_keep_within_their_sizes() -> None:
    verts, faces = superellipsoid_mesh((1.0, 2.0, 3.0), (0.3, 0.2, 0.1), 0.35)
    top, bottom = np.array([1.3, 2.2, 3.1]), np.array([0.7, 1.8, 2.9])
    assert (verts.max(0) <= top + 1e-5).all() and (verts.min(0) >= bottom - 1e-5).all()
    assert (verts.max(0) >= top - 0.005).all() and (verts.min(0) <= bottom + 0.005).all()
    assert faces.max() < len(verts) and faces.min() >= 0
    # a rounded box fills more of its bounds than an ellipsoid
    box_like, _ = superellipsoid_mesh((0, 0, 0), (1, 1, 1), 0.2, segments=24)
    ball, _ = superellipsoid_mesh((0, 0, 0), (1, 1, 1), 1.0, segments=24)
    assert np.abs(box_like).sum(1).max() > np.abs(ball).sum(1).max() + 0.5
    ring, faces = torus_mesh(np.zeros(3), np.array([1.0, 0, 0]), 0.18, 0.02)
    radius = np.hypot(ring[:, 1], ring[:, 2])
    assert radius.min() > 0.159 and radius.max() < 0.201 and np.abs(ring[:, 0]).max() <= 0.0201
    strap, _ = strap_mesh((0, 0, 0), (0, 0, 1), 0.02)
    assert strap[:, 2].min() == pytest.approx(0, abs=1e-6) and strap[:, 2].max() == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize("driver_side", ["left", "right"])
def test_the_wheel_and_cluster_sit_on_the_markets_driver_side(driver_side: str) -> None:
    for seed in range(5):
        cabin = cabin_geometry("sedan", driver_side, derive_rng(seed, "t"))
        sign = 1.0 if driver_side == "left" else -1.0
        assert np.sign(cabin.driver_y) == sign
        assert np.sign(cabin.anchors["steering_wheel"][1]) == sign
        assert np.sign(cabin.anchors["instrument_cluster"][1]) == sign
        assert np.sign(cabin.anchors["passenger_seat"][1]) == -sign
        for verts, faces in cabin.parts.values():
            assert np.isfinite(verts).all() and faces.max() < len(verts)
            assert np.abs(verts[:, 1]).max() < BODY_SHAPES["sedan"].width / 2 + 0.1  # inside the car's width


@pytest.mark.parametrize("part", CABIN_PARTS)
def test_each_camera_stands_in_the_cabin_or_at_an_open_door_and_frames_its_part(part: str) -> None:
    for seed in range(12):
        for body in ("hatch", "suv", "van"):
            scene = cabin_scene(part, body, "right" if seed % 2 else "left", seed, (224, 168))
            cabin, camera = scene.cabin, scene.camera
            x, y, z = camera.origin
            assert FLOOR_Z < z < cabin.roof_z + 0.05
            if abs(y) > cabin.half_width:  # outside: only through a door that stands open
                assert np.sign(y) in cabin.open_sides
            else:
                assert -1.5 < x < 1.2
            # the camera looks at its part's anchor (or, for a door from outside, the door): in frame, ahead
            uv = camera.project(camera.target[None])[0]
            assert np.allclose(uv, 0.5, atol=1e-6)
            assert np.linalg.norm(camera.target - camera.origin) > 0.2
            assert 35 <= camera.fov_x_deg <= 85
    if part == "passenger_seat":  # always from the passenger's open door
        scene = cabin_scene(part, "sedan", "right", 3, (224, 168))
        assert scene.cabin.open_sides == (1.0,) and scene.camera.origin[1] > scene.cabin.half_width


def test_cabin_scenes_are_a_function_of_their_seed_and_refuse_what_they_cannot_draw() -> None:
    a = cabin_scene("dashboard", "wagon", "left", 7, (64, 48))
    b = cabin_scene("dashboard", "wagon", "left", 7, (64, 48))
    assert np.array_equal(a.camera.origin, b.camera.origin) and a.cabin.open_sides == b.cabin.open_sides
    with pytest.raises(ValueError, match="part"):
        cabin_scene("boot", "wagon", "left", 7, (64, 48))
    with pytest.raises(ValueError, match="body type"):
        cabin_scene("dashboard", "tank", "left", 7, (64, 48))
    with pytest.raises(ValueError, match="driver_side"):
        cabin_scene("dashboard", "wagon", "middle", 7, (64, 48))


def test_a_cabin_is_rendered_with_no_plate() -> None:
    if not pbr_available():
        pytest.skip("Mitsuba is not installed (the pbr extra)")
    image, plate = render_cabin("front_seats", "hatch", "right", 4, (64, 48), trim_rgb=(90, 80, 70), samples=2)
    assert image.size == (64, 48) and image.mode == "RGB"
    assert np.asarray(image).std() > 8  # a scene, not a blank frame
    assert plate.box is None and not plate.unsure
    with pytest.raises(ValueError, match="size"):
        render_cabin("front_seats", "hatch", "right", 4, (8, 8), trim_rgb=(90, 80, 70))


def test_the_steering_wheel_has_its_spokes_at_three_nine_and_six_o_clock() -> None:
    for seed in range(4):
        cabin = cabin_geometry("hatch", "right", derive_rng(seed, "t"))
        centre = cabin.anchors["steering_wheel"]
        dark = cabin.parts["dark"][0]
        rel = dark[np.linalg.norm(dark - centre, axis=1) < 0.2] - centre  # the hub, spokes, column's end
        outer = rel[np.linalg.norm(rel, axis=1) > 0.12]  # the spokes' outer ends
        assert (outer[:, 2] < 0.05).all()  # none at 12 o'clock
        assert (outer[:, 2] < -0.12).any()  # one at 6
        assert (outer[:, 1] > 0.15).any() and (outer[:, 1] < -0.15).any()  # one at 3 and one at 9
