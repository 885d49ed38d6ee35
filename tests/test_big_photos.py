"""Modern phone photos (48-200 MP JPEGs) decode; bombs still fail (tier 1, no Spark).

What is bounded is what is allocated: a JPEG is decoded at a DCT-reduced scale, so its declared size
may go up to ``scoring.max_declared_pixels`` while the decoded size stays under ``max_image_pixels``;
formats decoded at full size keep the ``max_image_pixels`` limit on their declared size. Correctness
only; time and memory are measured by ``benchmarks/bench_big_photos.py``.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_score_job_support import OracleModels, StandInModelSet

from fleetvision.config import ConfigError, ScoringConfig, load_config
from fleetvision.decode import decode_photo, make_thumbnail
from fleetvision.scoring import ScoringRules
from fleetvision.scoring import udf as U
from fleetvision.taxonomy import load_taxonomy

SIZE = 224
LIMITS = ScoringConfig()
MAX_PIXELS = LIMITS.max_image_pixels
MAX_DECLARED = LIMITS.max_declared_pixels


def big_jpeg(width: int, height: int, mode: str = "RGB") -> bytes:
    """A JPEG of width x height made cheaply: a small gradient upscaled (NEAREST), saved at low quality."""
    y, x = np.mgrid[0:48, 0:64]
    small = np.stack([60 + 2 * x, 40 + 3 * y, 200 - 2 * x], -1).astype(np.uint8)
    im = Image.fromarray(small).convert(mode).resize((width, height), Image.Resampling.NEAREST)
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=30)
    return out.getvalue()


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) declares width x height: a bomb's header, no pixels."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 130, 140)).save(out, format="JPEG", quality=80)
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)  # marker(2) length(2) precision(1) height width
    return bytes(data)


def png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.fixture(scope="module")
def jpeg_48mp() -> bytes:
    return big_jpeg(8000, 6000)  # a 48 MP phone photo


@pytest.fixture(scope="module")
def jpeg_200mp() -> bytes:
    # greyscale keeps the test's own encoding at 200 MB; the decoder's path is the same as for colour
    return big_jpeg(16320, 12240, mode="L")


def _resized_from(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    real_resize = Image.Image.resize

    def spy(self: Image.Image, size: tuple[int, int], *a: object, **k: object) -> Image.Image:
        seen.append(self.size)
        return real_resize(self, size, *a, **k)

    monkeypatch.setattr(Image.Image, "resize", spy)
    return seen


def test_the_default_limits_accept_phone_photos() -> None:
    assert MAX_DECLARED >= 250_000_000 and MAX_PIXELS == 40_000_000


def test_a_48_mp_jpeg_decodes_to_the_model_size_from_an_eighth_scale(jpeg_48mp, monkeypatch) -> None:
    seen = _resized_from(monkeypatch)
    d = decode_photo(jpeg_48mp, SIZE, MAX_PIXELS, max_declared_pixels=MAX_DECLARED)
    assert d.ok, d.error_detail
    assert d.array is not None and d.array.shape == (SIZE, SIZE, 3) and d.array.dtype == np.uint8
    assert (d.width, d.height, d.format) == (8000, 6000, "JPEG")
    assert seen == [(1000, 750)]  # the DCT-domain decode allocated 0.75 MP, not 48 MP
    assert d.array.std() > 1  # real pixels, not a blank


def test_a_200_mp_jpeg_decodes_to_the_model_size(jpeg_200mp, monkeypatch) -> None:
    seen = _resized_from(monkeypatch)
    d = decode_photo(jpeg_200mp, SIZE, MAX_PIXELS, max_declared_pixels=MAX_DECLARED)
    assert d.ok, d.error_detail
    assert d.array is not None and d.array.shape == (SIZE, SIZE, 3)
    assert (d.width, d.height) == (16320, 12240)
    assert seen == [(2040, 1530)]


def test_without_a_declared_ceiling_the_old_limit_holds(jpeg_48mp) -> None:
    d = decode_photo(jpeg_48mp, SIZE, MAX_PIXELS)  # max_declared_pixels defaults to max_pixels
    assert d.error_code == "too_many_pixels" and "ceiling for JPEG" in (d.error_detail or "")


def test_a_300_mp_jpeg_is_rejected_from_its_header() -> None:
    d = decode_photo(jpeg_declaring(20_000, 15_000), SIZE, MAX_PIXELS, max_declared_pixels=MAX_DECLARED)
    assert d.error_code == "too_many_pixels" and d.array is None
    assert (d.width, d.height) == (20_000, 15_000)
    assert d.error_detail == (
        f"20000x15000 = 300000000 pixels declared, over the {MAX_DECLARED}-pixel ceiling for JPEG"
    )


def test_a_jpeg_bomb_is_rejected_from_its_header() -> None:
    d = decode_photo(jpeg_declaring(65_000, 65_000), SIZE, MAX_PIXELS, max_declared_pixels=MAX_DECLARED)
    assert d.error_code == "too_many_pixels" and (d.width, d.height) == (65_000, 65_000)


def test_a_png_over_the_limit_is_rejected_whatever_the_jpeg_ceiling() -> None:
    d = decode_photo(png_declaring(8000, 6000), SIZE, MAX_PIXELS, max_declared_pixels=MAX_DECLARED)
    assert d.error_code == "too_many_pixels" and d.array is None and (d.width, d.height) == (8000, 6000)
    assert f"over the {MAX_PIXELS}-pixel limit" in (d.error_detail or "")
    bomb = decode_photo(png_declaring(40_000, 40_000), SIZE, MAX_PIXELS, max_declared_pixels=MAX_DECLARED)
    assert bomb.error_code == "too_many_pixels"  # refused by Pillow's own guard in Image.open


def test_what_is_allocated_after_the_draft_is_bounded_by_max_pixels(jpeg_48mp) -> None:
    # for a 224 px model the 48 MP JPEG decodes at 1000x750; below that limit it is refused
    d = decode_photo(jpeg_48mp, SIZE, 700_000, max_declared_pixels=MAX_DECLARED)
    assert d.error_code == "too_many_pixels"
    assert "decodes at 1000x750 = 750000 pixels after the DCT reduction, over the 700000-pixel limit" in (
        d.error_detail or ""
    )
    assert decode_photo(jpeg_48mp, SIZE, 750_000, max_declared_pixels=MAX_DECLARED).ok
    # no draft (benchmarks only): the JPEG is decoded at full size, so its declared size meets max_pixels
    assert decode_photo(jpeg_48mp, SIZE, MAX_PIXELS, max_declared_pixels=MAX_DECLARED, draft=False).error_code == (
        "too_many_pixels"
    )


def test_pillows_bomb_guard_stays_on_and_is_never_changed(jpeg_48mp, monkeypatch) -> None:
    before = Image.MAX_IMAGE_PIXELS
    assert decode_photo(jpeg_48mp, SIZE, MAX_PIXELS, max_declared_pixels=MAX_DECLARED).ok
    assert before == Image.MAX_IMAGE_PIXELS
    # Pillow's guard applies to what the drafted JPEG allocates: with a tiny global limit, it refuses
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    d = decode_photo(jpeg_48mp, SIZE, MAX_PIXELS, max_declared_pixels=MAX_DECLARED)
    assert d.error_code == "too_many_pixels" and "decompression bomb" in (d.error_detail or "")


def test_limits_are_checked_on_construction() -> None:
    with pytest.raises(ValueError, match="max_declared_pixels must be an int >= max_pixels"):
        decode_photo(b"", SIZE, MAX_PIXELS, max_declared_pixels=MAX_PIXELS - 1)
    with pytest.raises(ConfigError, match=r"max_declared_pixels \(10\) < max_image_pixels"):
        load_config(overrides=["scoring.max_declared_pixels=10"], environ={})


def test_thumbnails_of_big_photos(jpeg_48mp) -> None:
    thumb = make_thumbnail(jpeg_48mp, 200, MAX_PIXELS, max_declared_pixels=MAX_DECLARED)
    assert thumb is not None and Image.open(io.BytesIO(thumb)).size == (200, 150)


def test_the_scoring_frame_takes_its_limits_from_the_config(jpeg_48mp) -> None:
    taxonomy = load_taxonomy()
    config = load_config(environ={})
    settings = U.UdfSettings.from_config(config, environ={})
    models = OracleModels({}, taxonomy)(StandInModelSet())
    contents = pd.Series([jpeg_48mp, jpeg_declaring(20_000, 15_000)], dtype=object)
    frame = U.score_frame(pd.Series([None, None], dtype=object), contents, models, settings, taxonomy,
                          ScoringRules.default(taxonomy))
    assert frame.error_code.tolist() == [None, "too_many_pixels"]
    assert frame.width.tolist() == [8000, 20_000]
