"""Photo uris on an object store, read through a real S3 server (moto, started on 127.0.0.1 here).

The scoring job reads ``s3a://bucket/key`` the way it reads a local file: on the executor, bounded by
``scoring.max_image_bytes``, and every failure (no such key, too big, refused connection) is one
``unreadable_uri`` row, never an exception out of the batch.
"""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer
from test_score_job_support import OracleModels, StandInModelSet, photo_bytes

from fleetvision import decode, photo_uris
from fleetvision.config import load_config
from fleetvision.scoring import ScoringRules
from fleetvision.scoring import udf as U
from fleetvision.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
BUCKET = "listing-photos"
ROOTS = photo_uris.PhotoRoots((f"s3://{BUCKET}/cars",))  # s3, s3a and s3n name the same store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with one bucket holding two photos; stopped after the module."""
    import pyarrow.fs as pafs

    mp = pytest.MonkeyPatch()
    # the credentials come from the standard chain, as on a real executor; no instance-metadata lookups
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    options = {"s3": {"endpoint_override": f"127.0.0.1:{port}", "scheme": "http", "region": "us-east-1"}}
    fs = pafs.S3FileSystem(**options["s3"], allow_bucket_creation=True)
    fs.create_dir(BUCKET)
    photos = {"cars/a.jpg": photo_bytes(1, 1, False), "cars/b.jpg": photo_bytes(2, 2, True)}
    for key, data in photos.items():
        with fs.open_output_stream(f"{BUCKET}/{key}") as f:
            f.write(data)
    yield options, photos
    server.stop()
    mp.undo()


def test_read_uri_reads_s3_objects_under_every_spelling(s3) -> None:
    options, photos = s3
    for scheme in ("s3", "s3a", "s3n"):
        got = photo_uris.read_uri(f"{scheme}://{BUCKET}/cars/a.jpg", remote=options, roots=ROOTS)
        assert got == photos["cars/a.jpg"]
    size = len(photos["cars/b.jpg"])
    got = photo_uris.read_uri(f"s3a://{BUCKET}/cars/b.jpg", max_bytes=size, remote=options, roots=ROOTS)
    assert got == photos["cars/b.jpg"]


def test_s3_failures_are_unreadable_uri_errors_with_the_reason(s3) -> None:
    options, _ = s3
    with pytest.raises(photo_uris.UnreadableUriError, match="no such object"):
        photo_uris.read_uri(f"s3a://{BUCKET}/cars/missing.jpg", remote=options, roots=ROOTS)
    with pytest.raises(photo_uris.UnreadableUriError, match="over the 100-byte limit"):
        photo_uris.read_uri(f"s3a://{BUCKET}/cars/a.jpg", max_bytes=100, remote=options, roots=ROOTS)
    with pytest.raises(photo_uris.UnreadableUriError, match="not a file"):
        photo_uris.read_uri(f"s3a://{BUCKET}/cars", remote=options, roots=ROOTS)
    with pytest.raises(photo_uris.UnreadableUriError, match="without a bucket"):
        photo_uris.read_uri("s3a:///cars/a.jpg", remote=options, roots=ROOTS)
    with pytest.raises(photo_uris.UnreadableUriError, match="unsupported scheme 'ftp'"):
        photo_uris.read_uri("ftp://host/a.jpg", roots=ROOTS)
    closed = {"s3": {**options["s3"], "endpoint_override": f"127.0.0.1:{_free_port()}",
                     "connect_timeout": 1.0, "request_timeout": 1.0}}
    with pytest.raises(photo_uris.UnreadableUriError) as refused:
        photo_uris.read_uri(f"s3a://{BUCKET}/cars/a.jpg", remote=closed, roots=ROOTS)
    assert refused.value.uri == f"s3a://{BUCKET}/cars/a.jpg" and "OSError" in refused.value.reason, refused.value
    bad_option = {"s3": {"no_such_option": "x"}}
    with pytest.raises(photo_uris.UnreadableUriError, match="TypeError"):
        photo_uris.read_uri(f"s3a://{BUCKET}/cars/a.jpg", remote=bad_option, roots=ROOTS)


def test_decode_and_the_udf_frames_read_s3_uris(s3) -> None:
    options, photos = s3
    uris = pd.Series([f"s3a://{BUCKET}/cars/a.jpg", f"s3a://{BUCKET}/cars/missing.jpg", None], dtype=object)
    contents = pd.Series([None, None, photos["cars/b.jpg"]], dtype=object)
    photo = decode.decode_source(None, uris[0], 64, 40_000_000, remote=options, roots=ROOTS)
    assert photo.ok and photo.array.shape == (64, 64, 3)
    np.testing.assert_array_equal(photo.array, decode.decode_photo(photos["cars/a.jpg"], 64, 40_000_000).array)

    hashes = U.hash_frame(uris, contents, max_bytes=1 << 20, remote=options, roots=ROOTS)
    assert hashes.content_hash[0] == decode.content_hash(photos["cars/a.jpg"])
    assert hashes.read_error_code.tolist() == [None, "unreadable_uri", None]
    assert "no such object" in hashes.read_error_detail[1]

    cfg = load_config(
        overrides=[f"paths.remote_options={options}", f"paths.photo_roots=[s3a://{BUCKET}/cars]"], environ={}
    )
    settings = U.UdfSettings.from_config(cfg, environ={})
    assert settings.remote_options == options and settings.photo_roots.locations == (f"s3a://{BUCKET}/cars",)
    settings = U.UdfSettings(image_size=64, max_pixels=40_000_000, max_bytes=1 << 20, model_batch_size=2,
                             remote_options=options, photo_roots=ROOTS)
    models = OracleModels({}, TAXONOMY)(StandInModelSet())
    frame = U.score_frame(uris, contents, models, settings, TAXONOMY, ScoringRules.default(TAXONOMY))
    assert frame.error_code.tolist() == [None, "unreadable_uri", None]
    assert frame.decode_status.tolist() == ["ok", "error", "ok"]


def test_s3_uris_outside_the_root_prefix_are_forbidden(s3) -> None:
    options, _ = s3
    with pytest.raises(photo_uris.ForbiddenUriError, match="outside the photo roots"):
        photo_uris.read_uri(f"s3a://{BUCKET}/cars/a.jpg", remote=options)  # no roots at all
    for uri in (
        f"s3a://{BUCKET}/secrets/key.pem",  # same bucket, other prefix
        f"s3a://{BUCKET}/carsX/a.jpg",  # a prefix of the name is not a folder
        "s3a://other-bucket/cars/a.jpg",
        f"s3a://{BUCKET}/cars/../secrets/key.pem",  # '..' is a literal key on S3, but never a way out
        f"s3a://{BUCKET}/cars/%2e%2e/secrets/key.pem",
        f"gs://{BUCKET}/cars/a.jpg",  # another store
    ):
        with pytest.raises(photo_uris.ForbiddenUriError):
            photo_uris.read_uri(uri, remote=options, roots=ROOTS)
        photo = decode.decode_source(None, uri, 64, 40_000_000, remote=options, roots=ROOTS)
        assert photo.error_code == "forbidden_uri", uri


def test_remote_options_are_checked_by_the_config() -> None:
    from fleetvision.config import ConfigError

    cfg = load_config(overrides=['paths.remote_options={"gs": {"project_id": "p"}}'], environ={})
    assert cfg.paths.remote_options == {"gs": {"project_id": "p"}}
    with pytest.raises(ConfigError, match="remote_options"):
        load_config(overrides=['paths.remote_options={"azure": {"account": "a"}}'], environ={})
