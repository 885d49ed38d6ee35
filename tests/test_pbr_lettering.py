"""Lettering and dealers' stickers on the path-traced cars' tails (fleetvision.synth.pbr_lettering), and the
tail lamps' red, clear and amber sections (fleetvision.synth.pbr_car.tail_lamp_sections)."""

from __future__ import annotations

import numpy as np
import pytest

from fleetvision.synth.car_geometry import BODY_SHAPES
from fleetvision.synth.overlays import PLATE_SIZE_M
from fleetvision.synth.pbr_car import LOOKS, car_mesh
from fleetvision.synth.pbr_lettering import (
    LETTERING_PROUD_M,
    LetteringMount,
    lettering_mask,
    lettering_text,
    rear_lettering_mounts,
    word_shape,
)


def test_lettering_spots_sit_on_the_tail_between_the_lamps_clear_of_the_plate() -> None:
    """On the cars of one proportion variant of every body type (four looks each), every spot stands just
    behind the tail's skin, inside the car's width, above the rear plate's tallest style, one either side of
    the centre line; most cars have at least one. The same cars' tail lamps: always a red section, mostly a
    clear one, on some an amber one (one test, so the meshes are built once)."""
    plate_half_h = max(h for _, h in PLATE_SIZE_M.values()) / 2
    cars = [car_mesh(b, v, look) for b in sorted(BODY_SHAPES) for v in range(1) for look in range(LOOKS)]
    for car in cars:
        tail_x = car.parts["paint"][0][:, 0].min()
        sides = [np.sign(m.centre[1]) for m in car.lettering]
        assert len(sides) == len(set(sides)) <= 2
        for m in car.lettering:
            x, y, z = m.centre
            w, h = m.room
            assert w >= 0.06 and 0.02 <= h <= 0.06
            assert abs(y) + w / 2 < car.shape.width / 2
            assert abs(y) - w / 2 > 0.05  # clear of the badge on the centre line
            assert z - h / 2 > car.plate_mounts["rear"][1] + plate_half_h
            assert tail_x - 0.05 < x < tail_x + 0.35  # on the tail's face, not floating behind it
    assert np.mean([bool(c.lettering) for c in cars]) >= 0.7
    assert all(len(c.parts["tail"][1]) > 0 for c in cars)
    assert 0.5 <= np.mean(["tail_clear" in c.parts for c in cars]) <= 0.9
    assert 0.1 <= np.mean(["tail_amber" in c.parts for c in cars]) <= 0.5


def test_a_spot_is_left_bare_where_the_skin_curves_under_it() -> None:
    """A word is flat: over a tail that curves more than MAX_CURVE_M under the spot there is none, and
    over a flat one it stands LETTERING_PROUD_M behind the skin."""

    def flat(end: str, y: float, z: float) -> float:
        return -2.0

    def curved(end: str, y: float, z: float) -> float:
        return -2.0 + 2.0 * y * y

    plate = (-2.0, 0.5)
    assert rear_lettering_mounts(curved, 0.7, (0.7, 0.9), plate, np.random.default_rng(1)) == ()
    mounts = rear_lettering_mounts(flat, 0.7, (0.7, 0.9), plate, np.random.default_rng(1))
    assert len(mounts) == 2
    assert all(m.centre[0] == pytest.approx(-2.0 - LETTERING_PROUD_M) for m in mounts)
    # without room beside the badge (lamps meeting near the centre line), no spot
    assert rear_lettering_mounts(flat, 0.1, (0.7, 0.9), plate, np.random.default_rng(1)) == ()
    # nor on a face set back from the tail (a ute's cab behind its tray), nor without a rear plate mount
    assert rear_lettering_mounts(flat, 0.7, (0.7, 0.9), (-2.5, 0.5), np.random.default_rng(1)) == ()
    assert rear_lettering_mounts(flat, 0.7, (0.7, 0.9), None, np.random.default_rng(1)) == ()


def test_lettering_words_vary_and_repeat_from_their_seed() -> None:
    words = [lettering_text(np.random.default_rng([7, i])) for i in range(300)]
    assert words == [lettering_text(np.random.default_rng([7, i])) for i in range(300)]
    assert len(set(words)) > 100
    assert all(w and w.isprintable() and len(w) <= 14 for w in words)
    assert any(any(c.isdigit() for c in w) for w in words) and any(w.isalpha() for w in words)


def test_lettering_mask_is_the_ink_cropped() -> None:
    short, long = lettering_mask("C3"), lettering_mask("RAVELO 2.0")
    for mask in (short, long):
        assert mask.shape[0] == 48 and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() > 0.9
        assert mask[:, 0].max() > 0.2 and mask[:, -1].max() > 0.2  # cropped to the glyphs
    assert long.shape[1] > 2.5 * short.shape[1]


@pytest.mark.parametrize("kind", ["badge", "sticker"])
def test_a_word_faces_the_camera_behind_the_car_and_reads_left_to_right(kind: str) -> None:
    """Rendered from behind the car (the camera on -x looking forward), the word's ink lands where the
    mask has it, not mirrored: the glyphs of ``F`` (ink on its left) correlate with the render, their
    mirror image less (a sticker's backing is as dark as the wall behind it, so only its ink shows)."""
    mi = pytest.importorskip("mitsuba")
    mi.set_variant("scalar_rgb")
    from PIL import Image

    mask = lettering_mask("F")
    mount = LetteringMount((-2.0, 0.0, 0.0), (1.0, 0.2))
    if kind == "badge":
        word = word_shape(mi, mount, mi.ScalarTransform4f(), mask,
                          material={"type": "diffuse", "reflectance": {"type": "rgb", "value": [1.0, 1.0, 1.0]}})
    else:
        word = word_shape(mi, mount, mi.ScalarTransform4f(), mask, backing=(np.full(3, 0.02), np.full(3, 0.9)))
    t = mi.ScalarTransform4f
    scene = mi.load_dict({
        "type": "scene", "integrator": {"type": "direct"},
        "light": {"type": "constant", "radiance": {"type": "rgb", "value": [1.0, 1.0, 1.0]}},
        "back": {"type": "rectangle", "to_world": t().translate([-1.9, 0, 0]).rotate([0, 1, 0], -90).scale([3, 3, 1]),
                 "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.02, 0.02, 0.02]}}},
        "word": word,
        "sensor": {"type": "orthographic",
                   "to_world": t().look_at(origin=[-5, 0, 0], target=[0, 0, 0], up=[0, 0, 1]).scale([0.2, 0.2, 1]),
                   "film": {"type": "hdrfilm", "width": 96, "height": 96, "rfilter": {"type": "box"}}},
    })
    image = np.asarray(mi.render(scene, spp=8), np.float32).mean(axis=2)
    ys, xs = np.nonzero(image > 0.3)
    assert len(ys) > 50
    crop = image[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    expected = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).resize(crop.shape[::-1]), np.float32) / 255
    straight = np.corrcoef(crop.ravel(), expected.ravel())[0, 1]
    mirrored = np.corrcoef(crop.ravel(), expected[:, ::-1].ravel())[0, 1]
    assert straight > 0.5 and straight > mirrored + 0.2


def _toy_tail() -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Two lamps at |y| 0.5-0.9 m, z 0.7-0.9 m on a 2 cm grid, joined by a light bar along their tops."""
    from fleetvision.synth.pbr_car import _box

    xs, ys, zs = np.arange(-2.3, -1.7, 0.02), np.arange(-1.0, 1.0, 0.02), np.arange(0.6, 1.0, 0.02)
    x, y, z = np.meshgrid(xs, ys, zs, indexing="ij")
    lamps = _box(x, np.abs(y), z, (-2.2, -1.9, 0.5, 0.9, 0.7, 0.9), 0.01)
    bar = _box(x, y, z, (-2.2, -2.1, -0.5, 0.5, 0.86, 0.9), 0.01)
    return np.minimum(lamps, bar), (x, y, z)


def test_tail_lamp_sections_split_the_lamp_and_keep_the_light_bar_red() -> None:
    """Every voxel of the lamp is in exactly one section (nothing lost, nothing added away from the cuts),
    clear and amber stay out of the bar between the lamps, the clear section is never most of the lamp,
    and about one car in five keeps all-red lamps."""
    from fleetvision.synth.pbr_car import tail_lamp_sections

    tail, (x, y, z) = _toy_tail()
    inside = tail < 0
    bar = inside & (np.abs(y) < 0.45)
    all_red = 0
    for seed in range(60):
        sections = tail_lamp_sections(tail, x, y, z, 2.2, 0.3, 0.5, 0.9, (0.7, 0.9), np.random.default_rng(seed))
        again = tail_lamp_sections(tail, x, y, z, 2.2, 0.3, 0.5, 0.9, (0.7, 0.9), np.random.default_rng(seed))
        assert sections.keys() == again.keys() and all(np.array_equal(sections[k], again[k]) for k in sections)
        assert "tail" in sections and set(sections) <= {"tail", "tail_clear", "tail_amber"}
        all_red += len(sections) == 1
        count = sum((f < 0).astype(int) for f in sections.values())
        assert not (count[~inside] > 0).any()  # nothing outside the lamp
        assert (count[inside] <= 1).all()  # never in two sections
        assert (count[inside] == 1).mean() > 0.9  # only the cuts' seams lost
        for name in ("tail_clear", "tail_amber"):
            if name in sections:
                assert not (sections[name][bar] < 0).any()
        if "tail_clear" in sections:
            assert (sections["tail_clear"] < 0).sum() < 0.45 * inside.sum()
    assert 6 <= all_red <= 20

