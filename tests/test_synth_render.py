"""Tier 1: the synthetic photo renderer, files and training rows (no Spark)."""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageOps

from fleetvision.config import MarketConfig
from fleetvision.synth.car_geometry import CLASS_YAW_JITTER, VIEW_YAW, VIEW_YAW_JITTER
from fleetvision.synth.files import FileSpec, encode_photo, sample_file_spec
from fleetvision.synth.overlays import PLATE_SIZE_M, PLATE_STYLES, plate_look, plate_text, plate_texture
from fleetvision.synth.photo_spec import PhotoSpec, mirrored_spec, sample_spec
from fleetvision.synth.render import exterior_view, plate_visibility, render_photo
from fleetvision.synth.rng import derive_rng, derive_seed
from fleetvision.synth.training_set import training_rows
from fleetvision.taxonomy import load_taxonomy

TAX = load_taxonomy()
MARKET = MarketConfig()


def _spec(shot: str, seed: int = 0, size: tuple[int, int] = (200, 150), **kw: object) -> PhotoSpec:
    return sample_spec(derive_rng(seed, "test", shot), TAX, shot, driver_side=kw.pop("driver_side", "right"),
                       plate_style=kw.pop("plate_style", "AU"), size=size, **kw)  # type: ignore[arg-type]


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def test_derive_rng_is_stable_and_keyed() -> None:
    assert derive_seed(7, "photo", "L1") == derive_seed(7, "photo", "L1")
    assert derive_seed(7, "photo", "L1") != derive_seed(7, "photo", "L2")
    assert derive_seed(7, "a") != derive_seed(8, "a")
    with pytest.raises(TypeError, match="seed must be an int"):
        derive_seed("7", "a")  # type: ignore[arg-type]


@pytest.mark.parametrize("shot", TAX.names)
def test_every_class_renders_a_non_blank_photo_of_the_requested_size(shot: str) -> None:
    photo = render_photo(_spec(shot, size=(160, 120), banner=False))
    arr = _arr(photo.image)
    assert photo.image.size == (160, 120)
    assert arr.std() > 15, f"{shot} looks blank"
    assert (photo.body_type is not None) == (TAX[shot].group == "exterior")
    if not TAX[shot].plate_visible:
        assert not photo.plate_present and photo.plate_box is None


def test_classes_look_different_from_each_other() -> None:
    # the mean image of each class (over a few scenes) differs from every other class's
    means = {}
    for shot in TAX.names:
        imgs = [_arr(render_photo(replace(_spec(shot, seed=s, size=(64, 48), banner=False), noise=0)).image)
                for s in range(3)]
        means[shot] = np.mean(imgs, axis=0)
    names = list(means)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if TAX[a].mirror == b:
                continue
            assert np.abs(means[a] - means[b]).mean() > 4, f"{a} and {b} look alike"


def test_same_spec_same_pixels_and_bytes() -> None:
    spec = _spec("front_3q_driver", banner="strip")
    a, b = render_photo(spec), render_photo(spec)
    assert a.image.tobytes() == b.image.tobytes()
    fs = FileSpec((400, 300), "JPEG", 85)
    assert encode_photo(a.image, fs) == encode_photo(b.image, fs)


@pytest.mark.parametrize("driver_side", ["left", "right"])
@pytest.mark.parametrize("pair", TAX.mirror_pairs)
def test_mirror_pairs_are_mirror_images(pair: tuple[str, str], driver_side: str) -> None:
    for seed in range(3):
        # uncropped: a tight crop may cut the driver-side cues out of the frame (crops: see below)
        spec = replace(_spec(pair[0], seed=seed, banner=False, driver_side=driver_side), noise=0, crop=1.0)
        driver = _arr(render_photo(spec).image)
        passenger = _arr(render_photo(mirrored_spec(spec, TAX)).image)
        flipped = driver[:, ::-1]
        big = (np.abs(flipped - passenger).max(axis=2) > 40).mean()
        assert np.abs(flipped - passenger).mean() < 1.5, pair
        # what may differ: steering wheel, fuel cap, and plate text (which reads the right way in both)
        assert big < 0.02, f"{pair}: {big:.3%} of pixels differ after flipping"
        assert big > 0, f"{pair}: no driver-side cue (steering wheel, fuel cap) at all"
        assert np.abs(driver - passenger).mean() > 4 * np.abs(flipped - passenger).mean() + 2


def test_driver_side_decides_the_yaw_sign() -> None:
    right = _arr(render_photo(replace(_spec("side_driver", driver_side="right", banner=False), noise=0)).image)
    left = _arr(render_photo(replace(_spec("side_driver", driver_side="left", banner=False), noise=0)).image)
    # a right-hand-drive car's driver side is the left-hand-drive car's passenger side: mirrored views
    assert np.abs(right[:, ::-1] - left).mean() < 1.5


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("shot", ["full_front", "full_rear", "front_3q_passenger", "rear_3q_driver"])
@pytest.mark.parametrize("mode", ["normal", "small", "steep", "hidden"])
def test_plate_box_lies_on_the_plate_pixels(shot: str, mode: str) -> None:
    labelled = 0
    for seed in range(3):
        spec = _spec(shot, seed=seed, size=(320, 240), banner=False, plate_modes={mode: 1.0})
        # blur, shake and the rescaling of a crop smear the plate a pixel beyond its geometric box, and a
        # random foreground occluder may hide it: pinned here, checked in test_crops_and_occluders_*
        spec = replace(spec, noise=0, blur=0.0, motion_blur=0.0, crop=1.0, occluder=None)
        with_plate = render_photo(spec)
        blank = render_photo(spec, draw_plate=False)
        assert not blank.plate_present
        # the plate's own pixels: what changes when only the plate is painted
        diff = np.abs(_arr(with_plate.image) - _arr(blank.image)).max(axis=2) > 20
        if not with_plate.plate_present:
            # a close-up (the car overflowing the frame) may leave the plate outside it
            close = exterior_view(spec).fill > 1.0
            assert mode in ("small", "hidden") or close, f"{shot}/{mode}: a plate in plain view was not labelled"
            continue
        labelled += 1
        w, h = with_plate.image.size
        x0, y0, x1, y1 = with_plate.plate_box  # type: ignore[misc]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        box = np.zeros_like(diff)
        box[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)] = True
        assert diff[~box].sum() <= 0.03 * diff.sum() + 2, f"{shot}/{mode}: plate pixels outside the box"
        px = _bbox(diff)
        iou = _iou((px[0] / w, px[1] / h, px[2] / w, px[3] / h), (x0, y0, x1, y1))
        assert iou > 0.6, f"{shot}/{mode}: box and plate pixels disagree (IoU {iou:.2f})"
        assert with_plate.plate_text
    assert labelled >= (1 if mode in ("small", "hidden") else 2)


def test_plate_visibility_subtracts_occluders_banners_and_the_frame() -> None:
    quad = np.array([[40.0, 50.0], [80.0, 50.0], [80.0, 60.0], [40.0, 60.0]])  # 40 x 10 px plate
    share, box = plate_visibility(quad, [], None, (100, 100))
    assert share > 0.95 and box == (40, 50, 81, 61)
    mask = Image.new("L", (100, 100), 0)
    mask.paste(255, (0, 56, 100, 100))  # a banner over the lower part of the plate
    share, box = plate_visibility(quad, [], mask, (100, 100))
    assert 0.4 < share < 0.65 and box == (40, 50, 81, 56)
    post = [(60.0, 0.0), (100.0, 0.0), (100.0, 100.0), (60.0, 100.0)]  # a post over its right half
    share, box = plate_visibility(quad, [post], None, (100, 100))
    assert 0.4 < share < 0.6 and box[0] == 40 and box[2] <= 61
    share, box = plate_visibility(quad + np.array([40.0, 0.0]), [], None, (100, 100))  # half out of frame
    assert share < 0.8 and box is not None and box[2] == 100


def test_banner_coverage_matches_the_drawn_overlay() -> None:
    for kind in ("strip", "corner", "frame", "sticker"):
        spec = replace(_spec("dashboard", banner=kind, size=(300, 200)), noise=0)
        photo = render_photo(spec)
        plain = render_photo(replace(spec, banner=None))
        changed = (np.abs(_arr(photo.image) - _arr(plain.image)).max(axis=2) > 0).mean()
        assert photo.has_banner and photo.banner_kind == kind
        assert 0.005 < photo.banner_coverage < 0.5
        # the overlay changes (almost) exactly the pixels it covers; same-coloured pixels may not change
        assert changed <= photo.banner_coverage + 1e-9
        assert changed > 0.7 * photo.banner_coverage


def test_hard_negatives() -> None:
    assert render_photo(_spec("instrument_cluster", banner=False)).hard_negative == "odometer"
    assert render_photo(_spec("wheel", banner="strip")).hard_negative == "price_text"
    assert render_photo(_spec("wheel", banner=False)).hard_negative is None


def test_bad_spec_arguments_fail_with_named_messages() -> None:
    rng = derive_rng(0)
    with pytest.raises(ValueError, match="driver_side"):
        sample_spec(rng, TAX, "boot", driver_side="middle", plate_style="AU", size=(64, 48))
    with pytest.raises(ValueError, match="plate_style"):
        sample_spec(rng, TAX, "boot", driver_side="left", plate_style="XX", size=(64, 48))
    with pytest.raises(ValueError, match="banner"):
        sample_spec(rng, TAX, "boot", driver_side="left", plate_style="AU", size=(64, 48), banner="flag")
    with pytest.raises(KeyError, match="unknown shot class"):
        sample_spec(rng, TAX, "roof", driver_side="left", plate_style="AU", size=(64, 48))


# ------------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_gives_back_the_upright_photo(orientation: int) -> None:
    upright = render_photo(replace(_spec("full_front", size=(240, 160), banner=False), noise=0)).image
    data = encode_photo(upright, FileSpec((240, 160), "JPEG", 95, orientation))
    stored = Image.open(io.BytesIO(data))
    assert stored.getexif().get(0x0112) == orientation
    shown = ImageOps.exif_transpose(stored)
    assert shown.size == (240, 160)
    assert np.abs(_arr(shown) - _arr(upright)).mean() < 6
    if orientation in (6, 8):
        assert stored.size == (160, 240)


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "RGB"), ("WEBP", "RGB"), ("JPEG", "L"), ("JPEG", "CMYK")])
def test_formats_and_colour_modes(fmt: str, mode: str) -> None:
    img = render_photo(_spec("badge", banner=False)).image
    data = encode_photo(img, FileSpec((200, 150), fmt, 85 if fmt != "PNG" else 0, 1, mode))
    opened = Image.open(io.BytesIO(data))
    assert opened.format == fmt and opened.mode == mode and opened.size == (200, 150)


def test_cmyk_is_jpeg_only() -> None:
    with pytest.raises(ValueError, match="CMYK"):
        encode_photo(Image.new("RGB", (8, 8)), FileSpec((8, 8), "PNG", 0, 1, "CMYK"))


def test_file_mix_is_realistic() -> None:
    specs = [sample_file_spec(derive_rng(1, i)) for i in range(3000)]
    fmts = Counter(s.fmt for s in specs)
    assert 0.8 < fmts["JPEG"] / 3000 < 0.92 and fmts["PNG"] > 100 and fmts["WEBP"] > 150
    portrait = sum(s.size[1] > s.size[0] for s in specs) / 3000
    assert 0.06 < portrait < 0.14
    assert min(max(s.size) for s in specs) == 640
    assert sum(max(s.size) > 1600 for s in specs) > 60  # a few larger than 1600x1200
    assert sum(s.orientation != 1 for s in specs) > 60
    assert {s.color_mode for s in specs} == {"RGB", "L", "CMYK"}
    assert len({s.quality for s in specs if s.fmt == "JPEG"}) > 20


# -------------------------------------------------------------------------------------- training set
def test_training_rows_are_balanced_labelled_and_deterministic() -> None:
    rows = list(training_rows(TAX, MARKET, seed=3, per_class=4, split="train", dataset="t", image_size=96))
    assert len(rows) == 4 * TAX.num_classes
    assert set(Counter(r["angle"] for r in rows).values()) == {4}
    # any prefix of whole rounds is balanced too
    assert set(Counter(r["angle"] for r in rows[: TAX.num_classes]).values()) == {1}
    banner_rate = np.mean([r["has_banner"] for r in rows])
    assert 0.25 < banner_rate < 0.55
    for r in rows:
        cls = TAX[r["angle"]]
        assert r["angle_index"] == cls.index and r["source"] == "synthetic" and r["dataset"] == "t"
        img = Image.open(io.BytesIO(r["content"]))
        assert img.format == "JPEG" and max(img.size) == 96
        if cls.group == "exterior":
            assert r["body_type"] in TAX.body_types and r["body_index"] == TAX.body_index(r["body_type"])
        else:
            assert r["body_type"] is None and r["body_index"] == -1
        if r["plate_present"]:
            assert cls.plate_visible and len(r["plate_box"]) == 4
        else:
            assert r["plate_box"] == []
    plate_shots = [r for r in rows if TAX[r["angle"]].plate_visible]
    # some plates absent, hidden, cut off by a close-up's frame or too small to read at 96 px
    assert 0.35 < np.mean([r["plate_present"] for r in plate_shots]) < 0.95
    again = list(training_rows(TAX, MARKET, seed=3, per_class=4, split="train", dataset="t", image_size=96,
                               start=30, stop=40))
    assert [r["content"] for r in again] == [r["content"] for r in rows[30:40]]
    other = list(training_rows(TAX, MARKET, seed=4, per_class=1, split="train", dataset="t", image_size=96))
    assert other[0]["content"] != rows[0]["content"]


def test_training_rows_weight_exteriors_and_draw_body_types_uniformly() -> None:
    exterior = {c.name for c in TAX.classes if c.group == "exterior"}
    n_slots = TAX.num_classes + 2 * len(exterior)
    rows = list(training_rows(TAX, MARKET, seed=5, per_class=20, split="train", dataset="t", image_size=48,
                              exterior_weight=3, body_mix="uniform"))
    assert len(rows) == 20 * n_slots
    counts = Counter(r["angle"] for r in rows)
    assert {counts[c] for c in exterior} == {60} and {n for c, n in counts.items() if c not in exterior} == {20}
    # every round holds each exterior class 3 times, the others once
    first = Counter(r["angle"] for r in rows[:n_slots])
    assert {first[c] for c in exterior} == {3}
    bodies = Counter(r["body_type"] for r in rows if r["body_type"])
    assert set(bodies) == set(TAX.body_types)
    expected = sum(bodies.values()) / len(TAX.body_types)  # 480 exterior photos, ~69 per type
    assert all(abs(n - expected) < 0.4 * expected for n in bodies.values()), bodies
    # the market mix (the eval set's) keeps rare types rare, and weight 1 leaves the set as it was
    market = list(training_rows(TAX, MARKET, seed=5, per_class=20, split="eval", dataset="t", image_size=48))
    plain = list(training_rows(TAX, MARKET, seed=5, per_class=20, split="eval", dataset="t", image_size=48,
                               exterior_weight=1, body_mix="market"))
    assert [r["content"] for r in market] == [r["content"] for r in plain]
    market_bodies = Counter(r["body_type"] for r in market if r["body_type"])
    assert market_bodies.most_common(1)[0][1] > 2 * min(market_bodies.get(b, 0) for b in TAX.body_types)
    with pytest.raises(ValueError, match="body_mix"):
        next(training_rows(TAX, MARKET, 1, 1, "train", "t", body_mix="even"))
    with pytest.raises(ValueError, match="exterior_weight"):
        next(training_rows(TAX, MARKET, 1, 1, "train", "t", exterior_weight=0))


@pytest.mark.parametrize("style", PLATE_STYLES)
def test_every_plate_style_renders_legible_plates_of_its_real_shape(style: str) -> None:
    spec = _spec("full_rear", seed=3, size=(480, 360), banner=False, plate_modes={"normal": 1.0}, plate_style=style)
    photo = render_photo(replace(spec, crop=1.0, occluder=None))
    assert photo.plate_present and photo.plate_text
    x0, y0, x1, y1 = photo.plate_box  # type: ignore[misc]
    w_m, h_m = PLATE_SIZE_M[style]
    # a head-on rear plate keeps roughly its physical aspect (4:3 photo: normalised width x 4/3)
    aspect = (x1 - x0) * 480 / ((y1 - y0) * 360)
    assert 0.6 * w_m / h_m < aspect < 1.3 * w_m / h_m, (style, aspect)
    texture = plate_texture(plate_look(derive_rng(1, "p"), style, plate_text(derive_rng(1, "t"), style)), 40)
    assert texture.size[1] == 40 and abs(texture.size[0] / 40 - w_m / h_m) < 0.1


def test_close_ups_overflow_the_frame_and_carry_big_plates() -> None:
    views = [exterior_view(_spec("full_front", seed=i, plate_modes={"normal": 1.0})) for i in range(300)]
    close = [v for v in views if v.fill > 1.0]
    assert 0.15 < len(close) / len(views) < 0.35 and all(v.fill <= 1.5 for v in views)
    assert all(v.tall_fill > 0.8 for v in close)
    spec = next(s for i in range(300) if exterior_view(s := _spec("full_front", seed=i, size=(400, 300),
                                                                banner=False, plate_modes={"normal": 1.0},
                                                                plate_style="DE")).fill > 1.2)
    photo = render_photo(replace(spec, crop=1.0, occluder=None))
    if photo.plate_present:  # a very close frame may cut the plate off; otherwise it is a big one
        assert photo.plate_box[2] - photo.plate_box[0] > 0.15  # type: ignore[index]


def test_training_rows_draw_plate_styles_from_every_market_without_moving_the_rest() -> None:
    kw = {"seed": 5, "per_class": 6, "split": "train", "dataset": "t", "image_size": 64}
    market = list(training_rows(TAX, MARKET, **kw))  # type: ignore[arg-type]
    mixed = list(training_rows(TAX, MARKET, plate_styles=PLATE_STYLES, **kw))  # type: ignore[arg-type]
    assert [r["angle"] for r in market] == [r["angle"] for r in mixed]
    assert [r["body_type"] for r in market] == [r["body_type"] for r in mixed]
    assert [r["content"] for r in market] != [r["content"] for r in mixed]
    with pytest.raises(ValueError, match="plate_styles"):
        next(training_rows(TAX, MARKET, 1, 1, "train", "t", plate_styles=("XX",)))


@pytest.mark.parametrize("shot", ["full_front", "front_3q_driver", "side_passenger", "rear_3q_passenger", "full_rear"])
def test_the_class_yaw_band_spreads_a_view_over_its_whole_label_with_the_same_draws(shot: str) -> None:
    """``class`` reaches the edges of the band the view's label covers (head-on and side +-20, three-quarters
    +-25 about 45 / 135), where ``narrow`` keeps to its middle; it scales the same draw, so everything else
    about the photo stays."""
    family = shot.removesuffix("_driver").removesuffix("_passenger")
    spread: dict[str, list[float]] = {"narrow": [], "class": []}
    for seed in range(150):
        views = {band: exterior_view(_spec(shot, seed=seed, plate_modes={"normal": 1.0}, yaw_band=band))
                 for band in spread}
        for band, view in views.items():
            spread[band].append(abs(view.yaw) - VIEW_YAW[family])
        assert np.sign(views["narrow"].yaw) == np.sign(views["class"].yaw) or family == "full_front"
        assert replace(views["narrow"], yaw=0.0) == replace(views["class"], yaw=0.0)
    narrow, wide = np.abs(spread["narrow"]), np.abs(spread["class"])
    assert narrow.max() <= VIEW_YAW_JITTER[family] + 1e-9 and wide.max() <= CLASS_YAW_JITTER[family] + 1e-9
    assert wide.max() > CLASS_YAW_JITTER[family] - 2.0 > VIEW_YAW_JITTER[family]
    np.testing.assert_allclose(wide, narrow * CLASS_YAW_JITTER[family] / VIEW_YAW_JITTER[family], atol=1e-9)


def test_the_yaw_band_moves_only_exterior_rows_and_unknown_bands_are_refused() -> None:
    kw = {"seed": 9, "per_class": 2, "split": "train", "dataset": "t", "image_size": 64}
    narrow = list(training_rows(TAX, MARKET, **kw))  # type: ignore[arg-type]
    wide = list(training_rows(TAX, MARKET, yaw_band="class", **kw))  # type: ignore[arg-type]
    assert [r["angle"] for r in narrow] == [r["angle"] for r in wide]
    exterior = [TAX[r["angle"]].group == "exterior" for r in narrow]
    same = [a["content"] == b["content"] for a, b in zip(narrow, wide)]
    assert all(same[i] for i, ext in enumerate(exterior) if not ext)
    assert sum(not same[i] for i, ext in enumerate(exterior) if ext) > 0.8 * sum(exterior)
    with pytest.raises(ValueError, match="yaw_band"):
        _spec("side_driver", yaw_band="wide")


def test_training_rows_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="per_class"):
        next(training_rows(TAX, MARKET, 1, 0, "train", "t"))
    with pytest.raises(ValueError, match="image_size"):
        next(training_rows(TAX, MARKET, 1, 1, "train", "t", image_size=8))


# ---------------------------------------------------------------------------- photographic randomisation
def test_photographic_draws_cover_their_ranges_and_only_exteriors_get_occluders() -> None:
    specs = [_spec(TAX.names[i % TAX.num_classes], seed=i) for i in range(400)]
    ext = [s for s in specs if s.group == "exterior"]
    assert all(s.occluder is None for s in specs if s.group != "exterior")
    assert 0.1 < np.mean([s.occluder is not None for s in ext]) < 0.45
    assert {s.occluder for s in ext} >= {"person", "pole", "car", "foliage"}
    assert 0.4 < np.mean([s.watermark is not None for s in specs]) < 0.7
    assert 0.25 < np.mean([s.crop > 1 for s in specs]) < 0.45 and all(1.0 <= s.crop <= 1.6 for s in specs)
    assert 0.05 < np.mean([s.motion_blur > 0 for s in specs]) < 0.2
    assert all(0.6 <= s.saturation <= 1.3 and 0.7 < s.white_balance[0] < 1.3 for s in specs)
    assert all(s.blur > 0 for s in specs)  # every photo is a little soft, a quarter visibly out of focus


def test_watermark_is_not_a_banner_and_marks_only_a_small_area() -> None:
    for i, shot in enumerate(("full_front", "dashboard", "side_driver", "keys")):
        spec = replace(_spec(shot, seed=i, size=(320, 240), banner=False), noise=0)
        marked = render_photo(replace(spec, watermark="drivemarket.com"))
        plain = render_photo(replace(spec, watermark=None))
        assert not marked.has_banner and marked.banner_kind is None and marked.banner_coverage == 0.0
        changed = (np.abs(_arr(marked.image) - _arr(plain.image)).max(axis=2) > 0).mean()
        assert 0.0005 < changed < 0.08, f"{shot}: watermark changed {changed:.2%} of pixels"
        assert marked.plate_present == plain.plate_present and marked.plate_box == plain.plate_box


def test_randomised_photos_are_deterministic() -> None:
    spec = replace(_spec("rear_3q_passenger", seed=4, banner="corner"), crop=1.3, occluder="person",
                   watermark="carhub", motion_blur=0.01, vignette=0.3, saturation=1.2)
    a, b = render_photo(spec), render_photo(spec)
    assert a.image.tobytes() == b.image.tobytes() and a.plate_box == b.plate_box
    rows = list(training_rows(TAX, MARKET, seed=9, per_class=1, split="train", dataset="t", image_size=64))
    again = list(training_rows(TAX, MARKET, seed=9, per_class=1, split="train", dataset="t", image_size=64))
    assert [r["content"] for r in rows] == [r["content"] for r in again]


@pytest.mark.parametrize("pair", TAX.mirror_pairs)
def test_mirror_pairs_stay_mirrors_with_crops_occluders_and_shake(pair: tuple[str, str]) -> None:
    for seed, occluder in enumerate(("person", "pole", "car")):
        spec = replace(_spec(pair[0], seed=seed, banner=False), noise=0, crop=1.3, occluder=occluder,
                       motion_blur=0.01, vignette=0.3)
        driver = _arr(render_photo(spec).image)
        passenger = _arr(render_photo(mirrored_spec(spec, TAX)).image)
        assert np.abs(driver[:, ::-1] - passenger).mean() < 1.5, (pair, occluder)


@pytest.mark.parametrize("shot", ["full_front", "full_rear", "front_3q_passenger", "rear_3q_driver"])
def test_crops_keep_the_plate_box_inside_the_image_and_on_the_plate(shot: str) -> None:
    labelled = 0
    for seed in range(6):
        spec = replace(_spec(shot, seed=seed, size=(320, 240), banner=False, plate_modes={"normal": 1.0}),
                       noise=0, blur=0.0, motion_blur=0.0, occluder=None, crop=1.25 + 0.04 * seed)
        with_plate, blank = render_photo(spec), render_photo(spec, draw_plate=False)
        if not with_plate.plate_present:
            continue  # cropped out or cut to less than half
        labelled += 1
        w, h = with_plate.image.size
        x0, y0, x1, y1 = with_plate.plate_box  # type: ignore[misc]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        diff = np.abs(_arr(with_plate.image) - _arr(blank.image)).max(axis=2) > 20
        # the box grown by the smear of scaling the crop up (a render pixel spreads over 1.3-1.4 photo pixels)
        box = np.zeros_like(diff)
        box[max(0, round(y0 * h) - 3) : round(y1 * h) + 3, max(0, round(x0 * w) - 3) : round(x1 * w) + 3] = True
        assert diff[~box].sum() <= 0.03 * diff.sum() + 2, f"{shot}: plate pixels outside the cropped box"
        px = _bbox(diff)
        assert _iou((px[0] / w, px[1] / h, px[2] / w, px[3] / h), (x0, y0, x1, y1)) > 0.5
    assert labelled >= 2


def test_occluders_hide_plates_by_the_half_rule() -> None:
    # what an occluder hides is subtracted from the plate box; a plate more than half hidden is not labelled
    affected = 0
    for seed in range(30):
        spec = replace(_spec("full_rear", seed=seed, size=(240, 180), banner=False, plate_modes={"normal": 1.0}),
                       noise=0, crop=1.0, occluder="pole" if seed % 3 else ("person", "car", "foliage")[seed % 9 // 3])
        plain = render_photo(replace(spec, occluder=None))
        photo = render_photo(spec)
        assert plain.plate_present
        if not photo.plate_present:
            affected += 1
            continue
        x0, y0, x1, y1 = photo.plate_box  # type: ignore[misc]
        p0, q0, p1, q1 = plain.plate_box  # type: ignore[misc]
        assert p0 <= x0 + 1e-9 and q0 <= y0 + 1e-9 and x1 <= p1 + 1e-9 and y1 <= q1 + 1e-9  # never grows
        if (x1 - x0) * (y1 - y0) < (p1 - p0) * (q1 - q0) - 1e-9:
            affected += 1
            assert (x1 - x0) * (y1 - y0) >= 0.3 * (p1 - p0) * (q1 - q0)  # labelled only while mostly visible
    assert affected >= 1


def test_interiors_and_details_carry_plate_like_hard_negatives() -> None:
    seen: Counter[str] = Counter()
    for seed in range(12):
        for shot in ("dashboard", "boot", "engine_bay", "keys", "door_trim", "front_seats"):
            photo = render_photo(_spec(shot, seed=seed, banner=False))
            assert not photo.plate_present and photo.plate_box is None
            if photo.hard_negative:
                seen[photo.hard_negative] += 1
    assert seen["number_tag"] >= 8 and seen["price_text"] >= 2, seen
