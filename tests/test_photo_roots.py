"""No file outside the photo roots is read, and no error detail quotes a file's bytes.

Tier 1: every hostile uri is ``forbidden_uri`` from :func:`fleetvision.photo_uris.read_uri`, the decoder and
the UDF frames, without the file ever being opened. Tier 2: a scoring run over a table with hostile
uri rows writes exactly one ``image_tags`` row per input, the hostile ones ``forbidden_uri``, and
counts them as failures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from test_score_job_support import OracleModels, StandInModelSet, photo_bytes, write_inventory

from fleetvision import decode
from fleetvision.config import ConfigError, load_config
from fleetvision.decode import decode_source
from fleetvision.photo_uris import ForbiddenUriError, PhotoRoots, read_uri
from fleetvision.scoring import ScoringRules
from fleetvision.scoring import udf as U
from fleetvision.taxonomy import load_taxonomy

SECRET = b"root:*:20228:0:99999:7:::\nAWS_SECRET_ACCESS_KEY=hunter2\n"
SECRET_MARKERS = ("root:", "hunter2", "20228", "first bytes")
S = 64
LIMIT = 40_000_000
TAXONOMY = load_taxonomy()
RULES = ScoringRules.default(TAXONOMY)

# The uris of the issue, as a dealer feed could write them into listing_images.
SYSTEM_URIS = ("/etc/shadow", "file:///etc/shadow", "/etc/passwd", "/proc/self/environ", "../../../../etc/hostname")


@pytest.fixture()
def store(tmp_path: Path) -> dict[str, object]:
    """A photo root with one good photo; a secret next to it; links and look-alikes leading out."""
    root = tmp_path / "photos"
    (root / "cars").mkdir(parents=True)
    good = photo_bytes(1, 1, False)
    (root / "cars" / "a.jpg").write_bytes(good)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    (root / "cars" / "leak.jpg").symlink_to(secret)  # a file symlink inside the root, pointing out
    (root / "elsewhere").symlink_to(tmp_path, target_is_directory=True)  # a directory symlink pointing out
    (root / "cars" / "alias.jpg").symlink_to(root / "cars" / "a.jpg")  # inside -> inside: fine
    sibling = tmp_path / "photos-evil"  # shares the root's name as a string prefix, not as a folder
    sibling.mkdir()
    (sibling / "x.jpg").write_bytes(SECRET)
    hostile = (
        *SYSTEM_URIS,
        str(secret),
        (root / "cars" / "leak.jpg").as_uri(),
        str(root / "elsewhere" / "secret.txt"),
        f"{root}/cars/../../secret.txt",
        f"file://{root}/cars/%2e%2e/%2e%2e/secret.txt",
        str(sibling / "x.jpg"),
        "cars/a.jpg",  # relative: the executor's working directory is nobody's photo root
        "https://example.com/a.jpg",
        f"file://otherhost{root}/cars/a.jpg",
    )
    return {"root": root, "good": good, "hostile": hostile, "roots": PhotoRoots((str(root),))}


@pytest.fixture()
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path ``os.open`` is asked for while the test runs."""
    calls: list[str] = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        calls.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    return calls


def _no_secret(text: str | None) -> None:
    for marker in SECRET_MARKERS:
        assert marker not in (text or ""), text


# ------------------------------------------------------------------------------------------ tier 1
def test_every_hostile_uri_is_forbidden_and_never_opened(store, opened) -> None:
    roots = store["roots"]
    for uri in store["hostile"]:
        with pytest.raises(ForbiddenUriError) as info:
            read_uri(uri, roots=roots)
        _no_secret(str(info.value))
        photo = decode_source(None, uri, S, LIMIT, roots=roots)
        assert photo.error_code == "forbidden_uri" and photo.content_hash is None, uri
        assert photo.error_detail and photo.error_detail.startswith("refused"), photo.error_detail
        _no_secret(photo.error_detail)
    assert opened == []  # refused before anything was opened


def test_a_symlink_out_of_the_root_is_named_as_such(store) -> None:
    with pytest.raises(ForbiddenUriError, match=r"resolves outside the photo roots \(a symlink or '\.\.'\)"):
        read_uri(str(store["root"] / "cars" / "leak.jpg"), roots=store["roots"])
    with pytest.raises(ForbiddenUriError, match="relative path"):
        read_uri("../../../../etc/hostname", roots=store["roots"])


def test_photos_inside_the_root_are_read_under_every_spelling(store) -> None:
    root, roots, good = store["root"], store["roots"], store["good"]
    for uri in (str(root / "cars" / "a.jpg"), (root / "cars" / "a.jpg").as_uri(), f"file:{root}/cars/a.jpg",
                str(root / "cars" / "alias.jpg"), f"{root}/cars/../cars/a.jpg"):
        assert read_uri(uri, roots=roots) == good, uri
    assert decode_source(None, str(root / "cars" / "a.jpg"), S, LIMIT, roots=roots).ok


def test_no_roots_allow_nothing(store) -> None:
    uri = str(store["root"] / "cars" / "a.jpg")
    for roots in (None, PhotoRoots()):
        with pytest.raises(ForbiddenUriError, match="outside the photo roots"):
            read_uri(uri, roots=roots)


def test_the_udf_frames_give_one_forbidden_row_per_hostile_uri(store) -> None:
    hostile = list(store["hostile"])
    good_uri = str(store["root"] / "cars" / "a.jpg")
    html = b"<!DOCTYPE html><html><body>root:*:20228 hunter2</body></html>"
    uris = pd.Series([good_uri, *hostile, None], dtype=object)
    contents = pd.Series([None] * (1 + len(hostile)) + [html], dtype=object)
    hashes = U.hash_frame(uris, contents, max_bytes=1 << 20, roots=store["roots"])
    assert len(hashes) == len(uris)
    assert hashes.read_error_code.tolist() == [None, *["forbidden_uri"] * len(hostile), None]
    assert hashes.content_hash[1 : 1 + len(hostile)].isna().all()
    for detail in hashes.read_error_detail:
        _no_secret(detail)

    settings = U.UdfSettings(image_size=S, max_pixels=LIMIT, max_bytes=1 << 20, model_batch_size=4,
                             photo_roots=store["roots"])
    models = OracleModels({}, TAXONOMY)(StandInModelSet())
    frame = U.score_frame(uris, contents, models, settings, TAXONOMY, RULES)
    assert frame.error_code.tolist() == [None, *["forbidden_uri"] * len(hostile), "not_image"]
    for detail in frame.error_detail:
        _no_secret(detail)
    assert frame.error_detail.iloc[-1].endswith(f"content looks like html, {len(html)} bytes")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"<!DOCTYPE html><html><title>404</title></html>", "html"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "pdf"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "svg"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heic"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "zip"),
        (SECRET, "text"),
        (bytes(range(7, 64)) + b"\x00\xfe", "unknown"),
    ],
)
def test_error_details_name_the_kind_and_length_never_the_bytes(data: bytes, kind: str) -> None:
    d = decode.decode_photo(data, S, LIMIT)
    assert d.error_code == "not_image"
    assert d.error_detail is not None and d.error_detail.endswith(f"content looks like {kind}, {len(data)} bytes")
    assert "b'" not in d.error_detail and 'b"' not in d.error_detail
    _no_secret(d.error_detail)


# ------------------------------------------------------------------------------------------ config
def test_photo_roots_default_to_the_photos_directory_and_are_validated(tmp_path: Path) -> None:
    cfg = load_config(overrides=[f"paths.photos={tmp_path / 'p'}"], environ={})
    assert cfg.paths.photo_roots is None and cfg.paths.photo_root_locations() == (str(tmp_path / "p"),)
    cfg = load_config(overrides=[f"paths.photo_roots=[{tmp_path}/a, 's3a://bucket/photos', rel/dir]"], environ={})
    assert cfg.paths.photo_root_locations()[:2] == (f"{tmp_path}/a", "s3a://bucket/photos")
    assert Path(cfg.paths.photo_root_locations()[2]).is_absolute()  # relative to the project directory
    for bad, why in (("[]", "photo_roots is empty"), ("[/]", "filesystem root"),
                     ("['https://cdn.example.com/p']", "unsupported scheme 'https'"),
                     ("['s3a://bucket/a/../b']", r"'\.' or '\.\.' segments")):
        with pytest.raises(ConfigError, match=why):
            load_config(overrides=[f"paths.photo_roots={bad}"], environ={})


# ------------------------------------------------------------------------------------------ tier 2
@pytest.mark.spark
def test_a_scoring_run_tags_hostile_uri_rows_forbidden_and_counts_them(spark, config, tmp_path) -> None:
    from datetime import datetime

    from fleetvision import tables
    from fleetvision.scoring.run import RunOptions, run_scoring

    taxonomy = TAXONOMY
    scoring = config.scoring.model_copy(update={"max_decode_error_rate": 1.0, "min_scored_share": 0.0})
    config = config.model_copy(update={"scoring": scoring})
    db = config.tables.database
    photos = Path(config.paths.photos)
    inv = write_inventory(spark, db, photos, taxonomy, n_listings=2, size=config.models.input_size, with_bad=False)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    (photos / "leak.jpg").symlink_to(secret)
    hostile = [*SYSTEM_URIS, (photos / "leak.jpg").as_uri(), f"{photos}/../secret.txt"]
    rows = [
        {"image_id": f"L000-hostile-{i}", "listing_id": "L000", "position": 50 + i, "uri": uri, "content": None,
         "updated_at": datetime(2026, 1, 1)}
        for i, uri in enumerate(hostile)
    ]
    spark.createDataFrame(rows, tables.LISTING_IMAGES.schema).write.format("delta").mode("append").saveAsTable(
        tables.qualified(db, tables.LISTING_IMAGES)
    )
    loader = OracleModels(inv.pixel_truth, taxonomy)
    summary = run_scoring(spark, config, RunOptions(mode="full", model_set=StandInModelSet(), loader=loader,
                                                    log_to_mlflow=False))

    images = {r["image_id"] for r in spark.table(tables.qualified(db, tables.LISTING_IMAGES)).collect()}
    tags = spark.table(tables.qualified(db, tables.IMAGE_TAGS)).collect()
    assert sorted(r["image_id"] for r in tags) == sorted(images)  # one row per input, none dropped
    by_id = {r["image_id"]: r for r in tags}
    for row in rows:
        tag = by_id[row["image_id"]]
        assert (tag["decode_status"], tag["error_code"]) == ("error", "forbidden_uri"), row["uri"]
        assert tag["content_hash"] is None
        _no_secret(tag["error_detail"])
    assert all(by_id[i]["decode_status"] == "ok" for i in inv.truth_by_image)
    assert summary.failed_by_code == {"forbidden_uri": len(hostile)}
    assert summary.images_failed == len(hostile) and summary.images_in == len(images)

