"""Rendered inventories cached by settings and generator code, linked into each run's own photo folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fleetvision.synth.inventory import InventorySettings, plan_inventory
from fleetvision.synth.render_cache import MANIFEST, cache_key, render_cached
from fleetvision.taxonomy import load_taxonomy

TAX = load_taxonomy()
SETTINGS = InventorySettings(seed=21, n_listings=2, min_photos=3, max_photos=4, bad_file_rate=0.3,
                             photo_scale=0.25)


def _file(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def test_an_inventory_is_rendered_once_and_every_run_gets_its_own_links(tmp_path: Path) -> None:
    plans = plan_inventory(SETTINGS, TAX).photos
    key = cache_key(SETTINGS, TAX)
    first, stats = render_cached(plans, tmp_path / "run1", tmp_path / "cache", key, workers=1)
    assert stats.photos == len({p.photo_id for p in plans}) > 0
    assert (tmp_path / "cache" / key / MANIFEST).is_file()
    second, again = render_cached(plans, tmp_path / "run2", tmp_path / "cache", key, workers=1)
    assert again.photos == 0  # served from the cache
    assert first.keys() == second.keys()
    on_disk = 0
    for photo_id, rendered in second.items():
        assert rendered.labels == first[photo_id].labels
        path = _file(rendered.uri)
        assert path.is_relative_to((tmp_path / "run2").resolve())
        if _file(first[photo_id].uri).is_file():
            on_disk += 1
            assert path.read_bytes() == _file(first[photo_id].uri).read_bytes()
        else:  # a missing_uri photo has no file in either run
            assert not path.exists()
    assert on_disk > 0
    # a run that removes a photo (a day's churn) leaves the cache and the other runs alone
    victim = next(r for r in second.values() if _file(r.uri).is_file())
    _file(victim.uri).unlink()
    third, _ = render_cached(plans, tmp_path / "run3", tmp_path / "cache", key, workers=1)
    assert _file(third[victim.photo_id].uri).is_file()


def test_the_key_follows_the_settings_and_a_half_written_entry_is_rendered_again(tmp_path: Path) -> None:
    key = cache_key(SETTINGS, TAX)
    assert key == cache_key(SETTINGS, TAX) and key.startswith("s21-l2-")
    assert cache_key(dataclasses.replace(SETTINGS, seed=22), TAX) != key
    assert cache_key(dataclasses.replace(SETTINGS, photo_scale=0.5), TAX) != key
    plans = plan_inventory(SETTINGS, TAX).photos
    (tmp_path / "cache" / key / "photos").mkdir(parents=True)
    (tmp_path / "cache" / key / "photos" / "leftover.jpg").write_bytes(b"half")  # no manifest: incomplete
    files, stats = render_cached(plans, tmp_path / "run", tmp_path / "cache", key, workers=1)
    assert stats.photos > 0 and not (tmp_path / "cache" / key / "photos" / "leftover.jpg").exists()
    assert len(files) == stats.photos
