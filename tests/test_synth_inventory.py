"""Tier 1: inventory planning, bad files, parallel rendering and the daily churn plan (no Spark)."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from fleetvision.synth.evolve import plan_day
from fleetvision.synth.files import BAD_KINDS, bad_file_bytes, bomb_png
from fleetvision.synth.inventory import (
    InventorySettings,
    image_rows,
    label_rows,
    plan_inventory,
    render_plans,
)
from fleetvision.synth.rng import derive_rng
from fleetvision.taxonomy import load_taxonomy

TAX = load_taxonomy()


@pytest.fixture(scope="module")
def big_plan():
    return plan_inventory(InventorySettings(seed=11, n_listings=300, bad_file_rate=0.05), TAX)


def test_inventory_distributions_match_the_settings(big_plan) -> None:
    inv = big_plan
    dealers = [lp for lp in inv.listings if lp.seller_type == "dealer"]
    assert 0.3 < len(dealers) / 300 < 0.5  # dealer_share 0.4
    per_listing = Counter(p.listing_id for p in inv.photos)
    assert min(per_listing.values()) >= 3 and max(per_listing.values()) <= 40
    assert 9 < np.mean(list(per_listing.values())) < 15  # about 12 photos a car
    bad = [p for p in inv.photos if p.bad_kind]
    rate = len(bad) / len(inv.photos)
    assert abs(rate - 0.05) < 0.015, rate
    kinds = Counter(p.bad_kind for p in bad)
    assert set(kinds) == set(BAD_KINDS)
    assert max(kinds.values()) / min(kinds.values()) < 3.5  # equal weights by default
    # listing_images positions are 1..n, images unique
    for lid, n in per_listing.items():
        assert sorted(p.position for p in inv.photos if p.listing_id == lid) == list(range(1, n + 1))
    assert len({p.image_id for p in inv.photos}) == len(inv.photos)


def test_dealers_have_full_shot_sets_and_private_sellers_miss_some(big_plan) -> None:
    inv = big_plan
    shots: dict[str, set[str]] = {}
    for p in inv.photos:
        shots.setdefault(p.listing_id, set()).add(p.spec.shot)
    required = set(TAX.required)
    dealer = [lp.listing_id for lp in inv.listings if lp.seller_type == "dealer"]
    private = [lp.listing_id for lp in inv.listings if lp.seller_type == "private"]
    assert all(required <= shots[lid] for lid in dealer)
    missing = [lid for lid in private if not required <= shots[lid]]
    assert len(missing) > 0.8 * len(private)
    boot_missing = sum("boot" not in shots[lid] for lid in private) / len(private)
    assert boot_missing > 0.4  # the shot private sellers forget most


def test_dealer_photos_are_reused_and_banners_mostly_on_dealer_photos(big_plan) -> None:
    inv = big_plan
    listings_per_photo = Counter(p.photo_id for p in inv.photos)
    shared = [pid for pid, n in listings_per_photo.items() if n > 1]
    assert shared, "no photo is re-used across listings"
    by_id = {lp.listing_id: lp for lp in inv.listings}
    for pid in shared:
        sellers = {by_id[p.listing_id].seller_id for p in inv.photos if p.photo_id == pid}
        assert len(sellers) == 1 and next(iter(sellers)).startswith("D")
    dealer_banner = np.mean([p.spec.banner is not None for p in inv.photos
                             if by_id[p.listing_id].seller_type == "dealer"])
    private_banner = np.mean([p.spec.banner is not None for p in inv.photos
                              if by_id[p.listing_id].seller_type == "private"])
    assert dealer_banner > 0.45 and private_banner < 0.06


def test_positions_are_not_always_canonical(big_plan) -> None:
    inv = big_plan
    shuffled = 0
    for lp in inv.listings:
        order = [TAX.index(p.spec.shot) for p in sorted(inv.photos, key=lambda p: p.position)
                 if p.listing_id == lp.listing_id]
        shuffled += order != sorted(order)
    assert shuffled > 0.3 * len(inv.listings)


def test_plan_is_deterministic() -> None:
    s = InventorySettings(seed=5, n_listings=20)
    a, b = plan_inventory(s, TAX), plan_inventory(s, TAX)
    assert a == b
    assert plan_inventory(InventorySettings(seed=6, n_listings=20), TAX).photos != a.photos


def test_bad_settings_fail_with_named_messages() -> None:
    with pytest.raises(ValueError, match="n_listings"):
        InventorySettings(seed=1, n_listings=0)
    with pytest.raises(ValueError, match="bad_kinds"):
        InventorySettings(seed=1, n_listings=1, bad_kinds=(("gremlin", 1.0),))


# --------------------------------------------------------------------------------------- bad files
def test_every_bad_kind_is_really_broken() -> None:
    good = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(good, "JPEG")
    rng = derive_rng(0)
    assert bad_file_bytes("empty", good.getvalue(), rng) == b""
    assert bad_file_bytes("missing_uri", good.getvalue(), rng) is None
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(bad_file_bytes("not_image", good.getvalue(), rng)))  # type: ignore[arg-type]
    cut = bad_file_bytes("truncated", good.getvalue(), rng)
    assert cut is not None and 64 <= len(cut) < len(good.getvalue())
    with pytest.raises(OSError, match=r"(?i)truncat"):
        Image.open(io.BytesIO(cut)).load()
    bomb = bomb_png()
    assert len(bomb) < 200_000
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bomb))
    with pytest.raises(ValueError, match="bad file kind"):
        bad_file_bytes("gremlin", None, rng)


def test_bomb_is_a_valid_png_with_huge_declared_size() -> None:
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        img = Image.open(io.BytesIO(bomb_png()))
        assert img.format == "PNG" and img.size == (30_000, 30_000)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


# ---------------------------------------------------------------------------------------- rendering
def test_render_writes_labelled_files_and_workers_do_not_change_bytes(tmp_path: Path) -> None:
    s = InventorySettings(seed=3, n_listings=3, bad_file_rate=0.25)
    inv = plan_inventory(s, TAX)
    one, _ = render_plans(inv.photos, tmp_path / "a", keep_bytes=True, workers=1)
    two, stats = render_plans(inv.photos, tmp_path / "b", keep_bytes=True, workers=2, chunk=4)
    assert stats.workers == 2 and stats.photos == len({p.photo_id for p in inv.photos})
    assert {k: v.content for k, v in one.items()} == {k: v.content for k, v in two.items()}
    labels = {r["image_id"]: r for r in label_rows(inv.photos, one)}
    rows = image_rows(inv.photos, one, inline=False)
    assert len(rows) == len(inv.photos) == len(labels)
    for row in rows:
        lab = labels[row["image_id"]]
        path = Path(row["uri"][len("file://"):])
        assert row["uri"].startswith("file:///")
        if lab["bad_kind"] == "missing_uri":
            assert not path.exists()
            continue
        data = path.read_bytes()
        assert len(data) == lab["byte_size"]
        if lab["bad_kind"] is None:
            img = Image.open(io.BytesIO(data))
            img.load()
            assert img.format == lab["file_format"]
            shown = (img.height, img.width) if lab["exif_orientation"] in (6, 8) else img.size
            assert shown == (lab["width"], lab["height"])
            assert lab["angle"] in TAX.names
        else:
            assert lab["angle"] is None and lab["bad_kind"] in BAD_KINDS


# ------------------------------------------------------------------------------------------- evolve
def _tables(s: InventorySettings):
    inv = plan_inventory(s, TAX)
    listings = [lp.row() for lp in inv.listings]
    images = [{"image_id": p.image_id, "listing_id": p.listing_id, "position": p.position} for p in inv.photos]
    angles = {p.image_id: p.spec.shot for p in inv.photos}
    return listings, images, angles


def test_plan_day_changes_the_configured_share_and_is_deterministic() -> None:
    s = InventorySettings(seed=2, n_listings=200)
    listings, images, angles = _tables(s)
    a = plan_day(s, TAX, listings, images, day=1, rate=0.07, angles=angles)
    b = plan_day(s, TAX, listings, images, day=1, rate=0.07, angles=angles)
    assert a.report() == b.report()
    rep = a.report()
    changed_existing = set(rep["listings_changed"]) - set(rep["listings_added"])
    assert len(changed_existing) == round(0.07 * 200)
    assert rep["listings_added"] and rep["images_added"]
    existing = {i["image_id"] for i in images}
    assert set(rep["images_removed"]) <= existing and set(rep["images_replaced"]) <= existing
    assert not set(rep["images_added"]) & existing
    assert plan_day(s, TAX, listings, images, day=2, rate=0.07, angles=angles).report() != rep
    for p in a.replaced:  # a re-shot photo keeps its shot and position, with a new file
        assert p.spec.shot == angles[p.image_id] and p.photo_id != p.image_id
    with pytest.raises(ValueError, match="rate"):
        plan_day(s, TAX, listings, images, day=1, rate=1.5)
    with pytest.raises(ValueError, match="day"):
        plan_day(s, TAX, listings, images, day=0, rate=0.1)


def test_same_seed_same_rows_and_bytes_whatever_the_folder(tmp_path: Path) -> None:
    s = InventorySettings(seed=9, n_listings=4, bad_file_rate=0.2, photo_scale=0.25)
    runs = []
    for name in ("a", "b"):
        inv = plan_inventory(s, TAX)
        files, _ = render_plans(inv.photos, tmp_path / name, keep_bytes=False, workers=1)
        rows = image_rows(inv.photos, files, inline=False)
        for r in rows:
            r["uri"] = r["uri"].replace(str(tmp_path / name), "<photos>")
        on_disk = {p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir()) if p.is_file()}
        runs.append(([lp.row() for lp in inv.listings], rows, label_rows(inv.photos, files), on_disk))
    assert runs[0] == runs[1]
    assert len(runs[0][3]) > 20
