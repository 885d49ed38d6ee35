"""Rendered inventories cached by settings and generator code, linked into each run's own photo folder."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

from fleetvision.synth.inventory import InventorySettings, RenderedFile, plan_inventory, render_plans
from fleetvision.synth.render_cache import JOURNAL, MANIFEST, cache_key, journal_record, render_cached
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


def test_a_killed_render_resumes_from_its_journal_and_renders_only_the_rest(tmp_path: Path) -> None:
    plans = plan_inventory(SETTINGS, TAX).photos
    key = cache_key(SETTINGS, TAX)
    clean, _ = render_cached(plans, tmp_path / "clean", tmp_path / "clean-cache", key, workers=1)
    # a run killed after its first tasks: their photos written and journalled, the rest never started
    folder = tmp_path / "cache" / key
    unique = sorted({p.photo_id: p for p in plans}.values(), key=lambda p: p.photo_id)
    first = unique[: len(unique) // 2]
    source_root = (folder / "photos").resolve()
    folder.mkdir(parents=True)
    with (folder / JOURNAL).open("wb") as journal:
        def record(batch: list[RenderedFile]) -> None:
            journal.write(pickle.dumps(journal_record(batch, source_root)))
        render_plans(first, folder / "photos", keep_bytes=False, workers=1, chunk=2, on_chunk=record)
        journal.write(pickle.dumps(["a record cut short"])[:7])  # the kill landed mid-write
    # one journalled photo's file is gone since: it is rendered again
    lost = next(p for p in first if p.bad_kind != "missing_uri")
    next((folder / "photos").glob(f"{lost.photo_id}.*")).unlink()

    files, stats = render_cached(plans, tmp_path / "run", tmp_path / "cache", key, workers=1)
    assert stats.photos == len(unique) - len(first) + 1
    assert (folder / MANIFEST).is_file() and not (folder / JOURNAL).exists()
    assert files.keys() == clean.keys()
    for photo_id, rendered in files.items():
        assert rendered.labels == clean[photo_id].labels
        if _file(clean[photo_id].uri).is_file():
            assert _file(rendered.uri).read_bytes() == _file(clean[photo_id].uri).read_bytes()
        else:
            assert not _file(rendered.uri).exists()
    again, served = render_cached(plans, tmp_path / "run2", tmp_path / "cache", key, workers=1)
    assert served.photos == 0 and again.keys() == files.keys()
