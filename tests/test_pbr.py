"""Path-traced exteriors: the procedural car meshes, the camera's projection, a real Mitsuba render and
the training rows that use them (no Spark)."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fleetvision.synth.car_geometry import (
    BODY_SHAPES,
    CLASS_YAW_JITTER,
    SHAPE_VARIANTS,
    VIEW_YAW,
    VIEW_YAW_JITTER,
    car_shape,
)
from fleetvision.synth.pbr_cabin import CABIN_PARTS
from fleetvision.synth.pbr_camera import (
    CAMERA_HEIGHT_M,
    CAMERA_RANGE_M,
    DETAIL_FRAME_M,
    DETAIL_PARTS,
    MIN_DETAIL_DISTANCE_M,
    PLATE_FACING_CLEAR,
    PLATE_FACING_SEEN,
    SIDED_FAMILIES,
    Camera,
    PlateView,
    detail_anchor,
    place_camera,
    place_detail_camera,
    plate_view,
)
from fleetvision.synth.pbr_car import MIN_ROOF_M, PARTS, REAR_PROFILE, car_mesh, pbr_shape, smooth_max, smooth_min
from fleetvision.synth.pbr_kit import pbr_available
from fleetvision.synth.pbr_scene import render_detail, render_exterior
from fleetvision.synth.training_set import plate_label, row_plans, traced_plate, training_rows
from fleetvision.taxonomy import load_taxonomy


@pytest.mark.parametrize("body_type", sorted(BODY_SHAPES))
def test_a_car_mesh_fills_its_body_shape_and_no_more(body_type: str) -> None:
    car = car_mesh(body_type, 0, 1)
    s = car_shape(body_type, 0)
    paint = car.parts["paint"][0]
    lo, hi = paint.min(0), paint.max(0)
    assert hi[0] - lo[0] == pytest.approx(s.length, abs=0.12)
    lower = paint[paint[:, 2] < s.belt_z]  # below the painted mirrors, which stand out from the flanks
    assert np.ptp(lower[:, 1]) == pytest.approx(s.width, abs=0.12)
    assert hi[2] == pytest.approx(s.roof_z, abs=0.1)
    assert lo[2] == pytest.approx(s.clearance, abs=0.1)
    assert set(car.parts) <= set(PARTS) and {"paint", "glass", "head", "tail", "grille"} <= set(car.parts)
    for name, (verts, faces) in car.parts.items():
        assert len(faces) > 20, name
        assert faces.max() < len(verts) and verts.dtype == np.float32
    # glass sits inside the paint's outline, lights at their ends
    glass = car.parts["glass"][0]
    assert glass[:, 2].min() > s.belt_z - 0.1 and np.abs(glass[:, 1]).max() < s.width / 2
    assert car.parts["head"][0][:, 0].min() > 0 > car.parts["tail"][0][:, 0].max()
    # plates are mounted on the end faces, within the body's height
    assert set(car.plate_mounts) == {"front", "rear"}
    assert car.plate_mounts["front"][0] == pytest.approx(s.length / 2, abs=0.15)
    assert car.plate_mounts["rear"][0] == pytest.approx(-s.length / 2, abs=0.15)
    tyres, rims = car.wheels
    assert len(tyres) == 4 and len(rims) == 8


def test_rear_screens_lie_as_the_body_type_s_do_and_every_car_meshes_with_lamps() -> None:
    """A sedan's screen lies back over a boot, a hatch's is raked at the tail, a wagon's and a van's stand
    nearly upright: the rake and the deck behind the screen's foot, over every proportion variant."""

    def rear(body_type: str, variant: int, look: int) -> tuple[float, float, bool]:
        s = pbr_shape(body_type, variant, np.random.default_rng([variant, look]))
        rise = s.roof_z - s.belt_z
        roof = s.cabin_roof[1] - s.cabin_roof[0]
        assert roof >= MIN_ROOF_M - 1e-9
        rake = float(np.degrees(np.arctan2(s.cabin_roof[0] - s.cabin_base[0], rise)))
        return s.cabin_base[0] + s.length / 2, rake, roof < MIN_ROOF_M + 1e-9

    for body_type, ((deck_lo, deck_hi), (rake_lo, rake_hi)) in REAR_PROFILE.items():
        for variant in range(SHAPE_VARIANTS):
            deck, rake, shortest_roof = rear(body_type, variant, 0)
            assert deck_lo - 1e-9 <= deck <= deck_hi + 1e-9, (body_type, variant)
            # within the type's rake, or steeper where the roof would be shorter than MIN_ROOF_M
            assert rake <= rake_hi + 1e-6 and (rake >= rake_lo - 1e-6 or shortest_roof), (body_type, variant, rake)
    variants = range(SHAPE_VARIANTS)
    assert min(rear("sedan", v, 0)[0] for v in variants) > max(rear("hatch", v, 0)[0] for v in variants)
    assert min(rear("hatch", v, 0)[1] for v in variants) > max(rear("wagon", v, 0)[1] for v in variants)
    assert pbr_shape("ute", 3, np.random.default_rng(0)) == car_shape("ute", 3)
    for body_type in BODY_SHAPES:  # every layout of lamps finds the body's surface (a round tail once had none)
        for variant in range(SHAPE_VARIANTS):
            assert "tail" in car_mesh(body_type, variant, variant % 4).parts


def test_smooth_union_and_intersection_bound_the_hard_ones() -> None:
    a, b = np.linspace(-1, 1, 41), np.linspace(1, -1, 41)
    assert np.all(smooth_max(a, b, 0.1) >= np.maximum(a, b) - 1e-12)
    assert np.all(smooth_min(a, b, 0.1) <= np.minimum(a, b) + 1e-12)
    far = np.abs(a - b) > 0.2
    assert np.allclose(smooth_max(a, b, 0.1)[far], np.maximum(a, b)[far])


def test_the_camera_projects_its_target_to_the_centre_and_the_car_s_nose_to_the_left_from_its_left() -> None:
    # standing at the car's left flank (+y), looking at it: its nose (+x) is on the left of the photo
    cam = Camera(np.array([0.0, 5.0, 1.0]), np.array([0.0, 0.0, 1.0]), 60.0, (200, 100))
    centre, nose, behind = cam.project(np.array([[0.0, 0.0, 1.0], [2.0, 0.0, 1.0], [0.0, 10.0, 1.0]]))
    assert centre == pytest.approx([0.5, 0.5])
    assert nose[0] < 0.5 and nose[1] == pytest.approx(0.5)
    assert np.isnan(behind).all()
    up = cam.project(np.array([[0.0, 0.0, 2.0]]))[0]
    assert up[1] < 0.5  # image y grows downwards
    # the horizontal field of view: a point at the edge of it lands on the photo's edge
    edge = cam.project(np.array([[5.0 * np.tan(np.radians(30)), 0.0, 1.0]]))[0]
    assert edge[0] == pytest.approx(0.0, abs=1e-9)


def test_only_a_plate_facing_the_camera_gets_a_box() -> None:
    car = car_mesh("sedan", 0, 0)
    behind = Camera(np.array([-6.0, 0.0, 1.2]), np.array([0.0, 0.0, 0.6]), 60.0, (160, 120))
    view = plate_view(car, behind, (0.52, 0.11))
    assert view.box is not None and not view.unsure
    x0, y0, x1, y1 = view.box
    assert 0 <= x0 < 0.5 < x1 <= 1 and 0 <= y0 < y1 <= 1
    assert (x1 - x0) / (y1 - y0) == pytest.approx(0.52 / 0.11 * 120 / 160, rel=0.1)
    side = Camera(np.array([0.0, 6.0, 1.2]), np.array([0.0, 0.0, 0.6]), 60.0, (160, 120))
    assert plate_view(car, side, (0.52, 0.11)) == PlateView(None, False)


def test_a_plate_seen_at_a_slant_is_unsure_between_clear_and_edge_on() -> None:
    """Walking round the rear plate at 5 m, aimed at it: a box while the camera is within ~70 degrees of square
    on, *unsure* on to ~78 degrees (a slanted plate is plainly a plate, and "no plate" would teach the head
    otherwise), then nothing (a sliver seen edge-on)."""
    car = car_mesh("sedan", 0, 0)
    centre = car.plate_centre("rear")
    states = []
    for deg in np.arange(0.0, 89.0, 1.0):
        a = np.radians(deg)
        camera = Camera(centre + 5.0 * np.array([-np.cos(a), np.sin(a), 0.05]), centre, 60.0, (160, 120))
        view = plate_view(car, camera, (0.52, 0.11))
        facing = np.cos(a) / np.linalg.norm([np.cos(a), np.sin(a), 0.05])
        expected = "box" if facing >= PLATE_FACING_CLEAR else ("unsure" if facing >= PLATE_FACING_SEEN else "none")
        states.append(expected)
        assert ("box" if view.box else ("unsure" if view.unsure else "none")) == expected, deg
        assert not (view.box and view.unsure)
    assert {"box", "unsure", "none"} <= set(states)


def test_a_plate_leaving_the_frame_goes_from_box_to_unsure_to_none() -> None:
    """Turning the camera away from the plate: a box while at least half of it is in the photo, *unsure* while
    some of it is (a lamp's close-up with part of the plate at its edge), then nothing."""
    car = car_mesh("sedan", 0, 0)
    centre = car.plate_centre("rear")
    origin = centre + np.array([-2.0, 0.0, 0.0])
    states = []
    for dy in np.linspace(0.0, 3.0, 121):
        view = plate_view(car, Camera(origin, centre + np.array([0.0, dy, 0.0]), 60.0, (160, 120)), (0.52, 0.11))
        states.append("box" if view.box else ("unsure" if view.unsure else "none"))
    first = {s: states.index(s) for s in ("box", "unsure", "none")}
    assert first["box"] == 0 < first["unsure"] < first["none"]
    # monotone: once unsure never a box again, once gone never back
    assert "box" not in states[first["unsure"]:] and "unsure" not in states[first["none"]:]


def test_plate_labels_become_training_columns() -> None:
    assert plate_label(PlateView((0.1, 0.2, 0.3, 0.4))) == {"plate_present": 1, "plate_box": [0.1, 0.2, 0.3, 0.4]}
    assert plate_label(PlateView(None, unsure=True)) == {"plate_present": -1, "plate_box": []}
    assert plate_label(PlateView(None)) == {"plate_present": 0, "plate_box": []}


@pytest.fixture(scope="module")
def tiny_render():
    if not pbr_available():
        pytest.skip("Mitsuba is not installed (the pbr extra)")
    return render_exterior("full_rear", None, "hatch", 3, (64, 48), paint_rgb=(200, 20, 20), plate_style="BR",
                           plate_seed=1, samples=2)


def test_mitsuba_renders_a_car_photo_with_its_labels(tiny_render) -> None:
    assert tiny_render.image.size == (64, 48) and tiny_render.image.mode == "RGB"
    pixels = np.asarray(tiny_render.image)
    assert pixels.std() > 10  # a scene, not a blank frame
    assert tiny_render.flank is None  # head-on
    if tiny_render.plate_box is not None:
        assert all(0.0 <= v <= 1.0 for v in tiny_render.plate_box)


def test_without_the_denoiser_the_same_photo_keeps_its_grain(tiny_render) -> None:
    raw = render_exterior("full_rear", None, "hatch", 3, (64, 48), paint_rgb=(200, 20, 20), plate_style="BR",
                          plate_seed=1, samples=2, denoise=False)
    assert raw.plate_box == tiny_render.plate_box and raw.image.size == tiny_render.image.size

    def grain(image) -> float:  # mean difference between horizontal neighbours
        return float(np.abs(np.diff(np.asarray(image, np.float32), axis=1)).mean())

    assert grain(raw.image) > grain(tiny_render.image)


def test_render_refuses_bad_arguments() -> None:
    kw = {"paint_rgb": (1, 2, 3), "plate_style": "BR", "plate_seed": 0, "samples": 1}
    with pytest.raises(ValueError, match="family"):
        render_exterior("roof", None, "sedan", 0, (64, 48), **kw)
    with pytest.raises(ValueError, match="flank"):
        render_exterior("side", "driver", "sedan", 0, (64, 48), **kw)
    with pytest.raises(ValueError, match="body type"):
        render_exterior("side", "left", "tank", 0, (64, 48), **kw)


class _Market:
    driver_side = "right"
    plate_style = "AU"


@pytest.mark.parametrize("share", ["pbr_share", "pbr_detail_share", "pbr_cabin_share"])
def test_training_rows_path_trace_only_the_rows_asked_for_and_leave_the_others_as_they_were(share: str) -> None:
    """``pbr_share`` path-traces the exterior rows (their body labels kept), ``pbr_detail_share`` the
    headlight, tail-light and wheel rows (close-ups of a traced car's own part, no body label),
    ``pbr_cabin_share`` the interior rows but the boot (inside a traced cabin: no body label, no plate); each way
    every other row is as the painter drew it."""
    if not pbr_available():
        pytest.skip("Mitsuba is not installed (the pbr extra)")
    taxonomy = load_taxonomy()
    plain = list(training_rows(taxonomy, _Market(), 5, 1, "train", "t", 48))
    traced = list(training_rows(taxonomy, _Market(), 5, 1, "train", "t", 48, pbr_samples=1, **{share: 1.0}))
    assert [r["angle"] for r in plain] == [r["angle"] for r in traced]
    groups = {c.name: c.group for c in taxonomy.classes}
    wanted = {"pbr_share": {c.name for c in taxonomy.classes if c.group == "exterior"},
              "pbr_detail_share": set(DETAIL_PARTS), "pbr_cabin_share": set(CABIN_PARTS)}[share]
    assert any(r["angle"] in wanted for r in plain)
    for a, b in zip(plain, traced):
        if a["angle"] in wanted:
            assert a["content"] != b["content"] and b["has_banner"] == 0
            if groups[a["angle"]] == "exterior":
                assert b["body_type"] == a["body_type"] and b["body_index"] == a["body_index"]
            else:
                assert b["body_type"] is None and b["body_index"] == -1
            assert b["plate_present"] in (1, 0, -1) and (b["plate_present"] == 1) == bool(b["plate_box"])
            if share == "pbr_cabin_share":
                assert b["plate_present"] == 0 and groups[a["angle"]] == "interior"
            assert Image.open(io.BytesIO(b["content"])).size == Image.open(io.BytesIO(a["content"])).size
        else:
            assert a == b
    # the plans say which rows are traced, and a traced row's plate label comes from its geometry alone
    plans = list(row_plans(taxonomy, _Market(), 5, 1, "train", 48, **{share: 1.0}))
    assert [p.index for p in plans] == list(range(len(traced)))
    for plan, b in zip(plans, traced):
        assert plan.traced == (plan.cls.name in wanted) and plan.cls.name == b["angle"]
        if plan.traced:
            assert plate_label(traced_plate(plan.spec, taxonomy)) == {k: b[k] for k in ("plate_present", "plate_box")}
    with pytest.raises(ValueError, match=share):
        next(training_rows(taxonomy, _Market(), 5, 1, "train", "t", 48, **{share: 1.5}))


def test_a_detail_close_up_is_rendered_and_refuses_what_it_cannot_draw() -> None:
    if not pbr_available():
        pytest.skip("Mitsuba is not installed (the pbr extra)")
    kw = {"paint_rgb": (30, 60, 200), "plate_style": "DE", "plate_seed": 2, "samples": 2}
    photo = render_detail("tail_light", "wagon", 4, (64, 48), **kw)
    assert photo.image.size == (64, 48) and photo.flank is None
    assert np.asarray(photo.image).std() > 10
    with pytest.raises(ValueError, match="part"):
        render_detail("dashboard", "sedan", 0, (64, 48), **kw)
    with pytest.raises(ValueError, match="body type"):
        render_detail("wheel", "tank", 0, (64, 48), **kw)


def test_a_tail_light_close_up_aims_at_the_whole_lamp_whatever_its_sections() -> None:
    """A tail lamp cut into sections can keep its red section on one side only (this car's does); the
    close-up aims at the whole lamp on either flank. Aiming at the red section alone once left one flank
    with nothing to aim at: a camera at NaN, and a black training photo labelled ``tail_light``."""
    car = car_mesh("sedan", 4, 1)
    red = car.parts["tail"][0]
    assert (red[:, 1] > 0).all() or (red[:, 1] < 0).all()
    lamp = car.lamp_vertices("rear")
    assert len(lamp) > len(red) and len(car.lamp_vertices("front")) == len(car.parts["head"][0])
    for sign in (1.0, -1.0):
        point, _ = detail_anchor(car, "tail_light", sign, np.random.default_rng(0))
        assert np.isfinite(point).all() and point[1] * sign > 0.15 * car.shape.width
        assert np.linalg.norm(lamp - point, axis=1).min() < 0.2
    with pytest.raises(ValueError, match="front"):
        car.lamp_vertices("roof")
    # a lamp with nothing on one flank gets no camera there: a clear error, not a photo of nothing
    red_only = {k: v for k, v in car.parts.items() if k not in ("tail_clear", "tail_amber")}
    one_sided = dataclasses.replace(car, parts=red_only)
    errors = 0
    for seed in range(12):
        try:
            place_detail_camera("tail_light", one_sided, np.random.default_rng(seed), (64, 48))
        except ValueError as e:
            assert "no place for a tail_light close-up" in str(e)
            errors += 1
    assert 0 < errors < 12  # the flank with the red section still gets its close-up


@pytest.mark.parametrize("part", DETAIL_PARTS)
def test_a_detail_camera_stands_outside_the_car_close_to_its_part_and_frames_it(part: str) -> None:
    """Lamps: the lamp mesh's own corner, near the car's end, seen from ahead of (behind) it; wheels: a hub,
    seen from the flank. Whichever flank is drawn, the part is on it, in front of the camera, near the middle
    of the photo, and the camera is outside the body, as far from the part as its lens frames
    :data:`DETAIL_FRAME_M` there."""
    sides = set()
    for body_type in sorted(BODY_SHAPES):
        car = car_mesh(body_type, 0, 0)
        s = car.shape
        for seed in range(6):
            cam = place_detail_camera(part, car, np.random.default_rng(seed), (256, 192))
            rng = np.random.default_rng(seed)  # the camera's own draws: its flank, then the part's anchor
            point, direction = detail_anchor(car, part, 1.0 if rng.random() < 0.5 else -1.0, rng)
            sides.add(bool(cam.origin[1] > 0))
            assert np.sign(point[1]) == np.sign(cam.origin[1]), (body_type, seed)
            assert abs(float(np.linalg.norm(direction)) - 1.0) < 1e-9 and direction[2] == 0.0
            u, v = cam.project(point[None, :])[0]
            assert 0.2 < u < 0.8 and 0.2 < v < 0.8, (body_type, seed, u, v)
            outside = abs(cam.origin[0]) > s.length / 2 or abs(cam.origin[1]) > s.width / 2
            assert outside, (body_type, seed, cam.origin)
            lo, hi = DETAIL_FRAME_M[part]
            distance = np.hypot(*(cam.origin[:2] - point[:2]))
            spans = 2 * distance * np.tan(np.radians(cam.fov_x_deg) / 2)  # the width the lens frames there
            assert distance >= MIN_DETAIL_DISTANCE_M - 1e-9
            assert lo - 1e-6 < spans < hi + 1e-6 or distance == pytest.approx(MIN_DETAIL_DISTANCE_M)
            if part == "headlight":
                assert point[0] > s.length / 2 - 0.5 and cam.origin[0] > point[0]
            elif part == "tail_light":
                assert point[0] < -s.length / 2 + 0.5 and cam.origin[0] < point[0]
            else:
                assert min(abs(point[0] - wx) for wx in s.wheel_x) < 1e-9 and point[2] == s.wheel_r
    assert sides == {True, False}
    with pytest.raises(ValueError, match="part"):
        detail_anchor(car_mesh("sedan", 0, 0), "badge", 1.0, np.random.default_rng(0))


def test_mitsuba_imported_after_tensorflow_lets_the_process_exit_cleanly() -> None:
    """TensorFlow first, then Mitsuba, in one process (a one-process pytest run, a benchmark): the
    interpreter aborted at exit (rc 134, ``free(): invalid pointer``) after all its work was done."""
    code = (
        "import os, tensorflow\n"
        "from fleetvision.synth.pbr_kit import mitsuba\nfrom fleetvision.synth.pbr_scene import render_exterior\n"
        "mitsuba()\n"
        "assert 'DRJIT_LIBLLVM_PATH' not in os.environ, 'the variable leaks to spawned workers'\n"
        "photo = render_exterior('full_rear', None, 'hatch', 3, (40, 30), paint_rgb=(180, 20, 20),"
        " plate_style='DE', plate_seed=3)\n"
        "print('rendered', photo.image.size)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DRJIT_LIBLLVM_PATH"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rendered (40, 30)" in run.stdout


def test_the_camera_stands_on_the_seen_flank_at_a_photographers_height() -> None:
    """Crouching to chest high (0.6-1.3 m: from higher up the renders looked less like cars to ImageNet,
    docs/models.md *A lower camera*), 1.3-5 m from the car, on the flank the class names."""
    shape = car_shape("sedan", 0)
    heights = []
    for seed in range(30):
        for family in VIEW_YAW:
            for flank in ("left", "right"):
                cam = place_camera(family, flank, shape, np.random.default_rng(seed), (256, 192))
                heights.append(cam.origin[2])
                assert 0.6 <= cam.origin[2] <= 1.3
                assert np.hypot(*cam.origin[:2]) > min(shape.length, shape.width) / 2 + CAMERA_RANGE_M[0] - 0.01
                assert np.hypot(*cam.origin[:2]) < np.hypot(shape.length, shape.width) / 2 + CAMERA_RANGE_M[1]
                if family in SIDED_FAMILIES:
                    assert (cam.origin[1] > 0) == (flank == "left"), (family, flank, seed)
                if family == "full_front":
                    assert cam.origin[0] > shape.length / 2
                if family == "full_rear":
                    assert cam.origin[0] < -shape.length / 2
    assert min(heights) < CAMERA_HEIGHT_M[0] + 0.1 and max(heights) > CAMERA_HEIGHT_M[1] - 0.1


def test_the_class_yaw_band_moves_the_camera_over_the_views_whole_band() -> None:
    """The yaw bands (``car_geometry.YAW_BANDS``) hold for the path tracer too: ``narrow`` keeps to the
    middle of the view's band, ``class`` reaches its edges; the other draws (height, lens) stay."""
    shape = car_shape("hatch", 0)
    for family in VIEW_YAW:
        offsets: dict[str, list[float]] = {"narrow": [], "class": []}
        for seed in range(60):
            cams = {band: place_camera(family, "right", shape, np.random.default_rng(seed), (256, 192), band)
                    for band in offsets}
            for band, cam in cams.items():
                yaw = abs(np.degrees(np.arctan2(cam.origin[1], cam.origin[0])))
                offsets[band].append(abs(yaw - VIEW_YAW[family]))
            narrow, wide = cams["narrow"], cams["class"]
            assert narrow.origin[2] == wide.origin[2] and narrow.fov_x_deg == wide.fov_x_deg
        assert max(offsets["narrow"]) <= VIEW_YAW_JITTER[family] + 1e-6
        assert CLASS_YAW_JITTER[family] - 3.0 < max(offsets["class"]) <= CLASS_YAW_JITTER[family] + 1e-6
    with pytest.raises(ValueError, match="yaw_band"):
        render_exterior("side", "left", "sedan", 1, (32, 24), paint_rgb=(9, 9, 9), plate_style="AU", plate_seed=1,
                        yaw_band="wide")


def test_sets_with_traced_rows_are_named_outside_the_default_prefix() -> None:
    """The default training and eval datasets (prefix ``synthetic``) never take in a set with path-traced rows."""
    from fleetvision.synth.job import training_set_name

    assert training_set_name("train", 7) == "synthetic-train-s7"
    assert training_set_name("eval", 1001, 1.0) == "synthpbr100-eval-s1001"
    assert training_set_name("train", 7, 0.0, 1.0) == "synthpbr0d100-train-s7"
    assert training_set_name("train", 26, 0.5, 0.25) == "synthpbr50d25-train-s26"
    assert training_set_name("train", 9, 0.0, 0.0, 1.0) == "synthpbr0d0c100-train-s9"
