"""Rendered inventories kept on disk, keyed by everything that decides their pixels.

Rendering is the slow part of a large synthetic inventory (10,000 photos: 15-25 minutes on 2 cores),
and benchmarks build the same inventory again and again. :func:`render_cached` renders an inventory's
photos once into ``<cache>/<key>/`` and, on later calls with the same key, links the files into the
run's photo folder (hard links; a copy where the file system refuses them), so each run still owns its
folder (a day's churn adds and removes files there) while the cache stays as rendered.

The key is a digest of the planning settings (:class:`~fleetvision.synth.inventory.InventorySettings`),
the taxonomy and the generator's source files (:func:`generator_digest`): a change to any of them
renders anew. An entry is complete only once its manifest is written, last. Until then a journal
(``rendered.journal``, one pickled record per finished task of photos, appended as they finish) keeps
what a killed run had finished, so the next call with the same key renders only the rest: a 50,000-photo
inventory takes about an hour here, and losing it to a stopped run costs the whole hour again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import shutil
from collections.abc import Sequence
from pathlib import Path

from fleetvision.synth.inventory import InventorySettings, PhotoPlan, RenderedFile, RenderStats, render_plans
from fleetvision.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

MANIFEST = "rendered.pkl"
JOURNAL = "rendered.journal"
_SYNTH_DIR = Path(__file__).resolve().parent
_NOT_DRAWING = frozenset({"render_cache.py", "job.py", "training_set.py", "contact_sheet.py", "pbr_car.py",
                          "pbr_details.py", "pbr_scene.py", "pbr_kit.py", "pbr_shapes.py", "pbr_cabin.py"})
"""Generator modules no inventory photo comes from: this cache, the job's table and CLI wiring, and the
labelled training sets with their path-traced exteriors and the contact sheet (which only read the
drawing modules)."""


def generator_digest() -> str:
    """A digest of the source of every module of ``fleetvision/synth`` that plans or draws inventory photos."""
    digest = hashlib.sha256()
    for path in sorted(_SYNTH_DIR.glob("*.py")):
        if path.name not in _NOT_DRAWING:
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def cache_key(settings: InventorySettings, taxonomy: Taxonomy) -> str:
    """``s<seed>-l<listings>-<digest>``: the digest covers the settings, the taxonomy and the generator's code."""
    digest = hashlib.sha256()
    digest.update(json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str).encode())
    digest.update(repr(taxonomy).encode())
    digest.update(generator_digest().encode())
    return f"s{settings.seed}-l{settings.n_listings}-{digest.hexdigest()[:12]}"


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:  # another file system, or links refused
        shutil.copy2(source, target)


def _uri_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def journal_record(batch: Sequence[RenderedFile], source_root: Path) -> list[RenderedFile]:
    """A task's rendered files as the journal and manifest keep them: uris relative to the entry's
    ``photos`` folder (``source_root``, resolved), so an entry can be moved or renamed."""
    return [dataclasses.replace(r, uri=_uri_path(r.uri).relative_to(source_root).as_posix()) for r in batch]


def _resume(folder: Path) -> dict[str, RenderedFile]:
    """The photos a killed run finished in ``folder`` (by its journal); a folder without one starts anew.

    A record cut short by the kill ends the journal there (the file is truncated to the last whole
    record); a recorded photo whose file has gone is rendered again.
    """
    journal = folder / JOURNAL
    if not journal.is_file():
        if folder.exists():  # an entry left half-written before any task finished, or by older code
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return {}
    done: dict[str, RenderedFile] = {}
    good = 0
    with journal.open("rb") as f:
        while True:
            try:
                batch = pickle.load(f)
            except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError):
                break
            done.update((r.photo_id, r) for r in batch)
            good = f.tell()
    if good < journal.stat().st_size:
        logger.warning("render cache journal %s: dropping a record cut short at byte %d", journal, good)
        os.truncate(journal, good)
    photos = folder / "photos"
    # a missing_uri photo has no file by design; any other recorded photo must still be on disk
    return {k: r for k, r in done.items() if r.labels.get("bad_kind") == "missing_uri" or (photos / r.uri).is_file()}


def render_cached(
    plans: Sequence[PhotoPlan],
    photos_dir: Path,
    cache_root: Path,
    key: str,
    workers: int = 0,
) -> tuple[dict[str, RenderedFile], RenderStats]:
    """Render ``plans`` into ``cache_root/key`` once, then link every file into ``photos_dir``.

    Returns:
        photo_id -> rendered file, with uris under ``photos_dir`` (what :func:`render_plans` returns for
        that folder), and the throughput of this call's rendering (0 photos when the cache served it).
    """
    folder = cache_root / key
    manifest = folder / MANIFEST
    if manifest.is_file():
        relative: dict[str, RenderedFile] = pickle.loads(manifest.read_bytes())
        stats = RenderStats(0, 0.0, 1)
        logger.info("rendered photos: reusing %d from %s", len(relative), folder)
    else:
        relative = _resume(folder)
        source_root = (folder / "photos").resolve()
        wanted = {p.photo_id for p in plans}
        relative = {k: r for k, r in relative.items() if k in wanted}
        todo = [p for p in plans if p.photo_id not in relative]
        if relative:
            logger.info("rendered photos: resuming %s with %d of %d done", folder, len(relative), len(wanted))
        journal = (folder / JOURNAL).open("ab")

        def record(batch: list[RenderedFile]) -> None:
            done = journal_record(batch, source_root)
            journal.write(pickle.dumps(done))
            journal.flush()
            relative.update((r.photo_id, r) for r in done)

        with journal:
            _, stats = render_plans(todo, folder / "photos", keep_bytes=False, workers=workers, on_chunk=record)
        relative = dict(sorted(relative.items()))  # the order of a render in one go
        partial = folder / (MANIFEST + ".tmp")
        partial.write_bytes(pickle.dumps(relative))
        partial.replace(manifest)
        (folder / JOURNAL).unlink()
    out: dict[str, RenderedFile] = {}
    for photo_id, r in relative.items():
        source, target = folder / "photos" / r.uri, photos_dir.resolve() / r.uri
        if source.is_file():  # a missing_uri photo has no file, by design
            _link(source, target)
        out[photo_id] = dataclasses.replace(r, uri=target.as_uri())
    return out, stats
