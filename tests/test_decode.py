"""Decoding real broken and awkward files, and the quality measures on decoded batches (tier 1, no Spark)."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps, features

from fleetvision import quality
from fleetvision.config import ScoringConfig
from fleetvision.decode import (
    ERROR_CODES,
    DecodedPhoto,
    ErrorCode,
    content_hash,
    decode_batch,
    decode_photo,
    decode_source,
    make_thumbnail,
)
from fleetvision.photo_uris import ForbiddenUriError, PhotoRoots, UnreadableUriError, read_uri

S = 64
LIMIT = 40_000_000
RED = (220, 20, 20)


# ------------------------------------------------------------------------------------------ makers
def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def photo_like(w: int = 320, h: int = 240, seed: int = 0) -> Image.Image:
    """Gradient + noise + a few shapes: compresses and decodes like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    base = np.stack([110 + 90 * x, 90 + 70 * y, 150 - 60 * x * y], -1) + rng.normal(0, 6, (h, w, 3))
    im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        draw.rectangle([x0, y0, x0 + 40, y0 + 30], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return im


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring width x height RGB, with a tiny IDAT (a bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def marked(width: int = 200, height: int = 100) -> Image.Image:
    """Grey image with a red block in the stored top-left corner."""
    im = Image.new("RGB", (width, height), (128, 128, 128))
    ImageDraw.Draw(im).rectangle([0, 0, width // 4, height // 4], fill=RED)
    return im


def with_orientation(im: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(im, "JPEG", quality=95, exif=exif.tobytes())


def is_red(patch: np.ndarray) -> bool:
    r, g, b = patch.reshape(-1, 3).mean(axis=0)
    return r > 170 and g < 80 and b < 80


@pytest.fixture(scope="module")
def good_jpeg() -> bytes:
    return encode(photo_like(), "JPEG", quality=90)


# ------------------------------------------------------------------------------------------ good
def test_good_jpeg_decodes_to_square_uint8_with_original_size(good_jpeg: bytes) -> None:
    d = decode_photo(good_jpeg, S, LIMIT)
    assert d.ok and d.decode_status == "ok" and d.error_code is None and d.error_detail is None
    assert d.array is not None and d.array.shape == (S, S, 3) and d.array.dtype == np.uint8
    assert (d.width, d.height) == (320, 240)
    assert d.format == "JPEG" and d.mode == "RGB"
    assert d.content_hash == hashlib.sha256(good_jpeg).hexdigest() == content_hash(good_jpeg)


def test_resize_is_a_squash_not_a_letterbox() -> None:
    # A wide image whose top and bottom rows are red: a letterbox would add neutral bars instead.
    im = Image.new("RGB", (400, 100), (128, 128, 128))
    ImageDraw.Draw(im).rectangle([0, 0, 399, 9], fill=RED)
    ImageDraw.Draw(im).rectangle([0, 90, 399, 99], fill=RED)
    d = decode_photo(encode(im, "PNG"), S, LIMIT)
    assert d.array is not None
    assert is_red(d.array[0:2, :, :]) and is_red(d.array[-2:, :, :])


def test_pixels_match_the_documented_recipe() -> None:
    """CONTRACTS.md: draft to >= S, EXIF transpose, RGB, plain bilinear resize to S x S. Training relies on it."""
    data = with_orientation(photo_like(900, 500, seed=2), 6)
    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (96, 96))
    expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB").resize((96, 96), Image.Resampling.BILINEAR))
    d = decode_photo(data, 96, LIMIT)
    assert d.ok and (d.width, d.height) == (500, 900)
    np.testing.assert_array_equal(d.array, expected)


def test_draft_gives_nearly_the_same_pixels_as_a_full_decode() -> None:
    data = encode(photo_like(1600, 1200, seed=3), "JPEG", quality=85)
    drafted = decode_photo(data, 128, LIMIT)
    full = decode_photo(data, 128, LIMIT, draft=False)
    assert drafted.ok and full.ok
    diff = np.abs(drafted.array.astype(int) - full.array.astype(int))  # type: ignore[union-attr]
    assert diff.mean() < 4.0
    assert (drafted.width, drafted.height) == (full.width, full.height) == (1600, 1200)


def test_draft_reduces_the_decoded_jpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(photo_like(1600, 1200, seed=4), "JPEG", quality=85)
    seen: list[tuple[int, int]] = []
    real_resize = Image.Image.resize

    def spy(self: Image.Image, size: tuple[int, int], *a: object, **k: object) -> Image.Image:
        seen.append(self.size)
        return real_resize(self, size, *a, **k)

    monkeypatch.setattr(Image.Image, "resize", spy)
    assert decode_photo(data, 128, LIMIT).ok
    # 1600/8 = 200 >= 128: the DCT-domain decode is at 1/8 scale, not 1600x1200.
    assert seen == [(200, 150)]


# ----------------------------------------------------------------------------------- broken files
def test_zero_bytes_and_none_are_empty() -> None:
    zero = decode_photo(b"", S, LIMIT)
    assert zero.error_code == ErrorCode.EMPTY == "empty" and zero.array is None
    assert zero.content_hash == hashlib.sha256(b"").hexdigest()
    none = decode_photo(None, S, LIMIT)
    assert none.error_code == "empty" and none.content_hash is None and none.decode_status == "error"


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_jpeg(good_jpeg: bytes, keep: float) -> None:
    d = decode_photo(good_jpeg[: int(len(good_jpeg) * keep)], S, LIMIT)
    assert d.error_code == "truncated" and d.array is None
    assert (d.width, d.height) == (320, 240)  # the header was readable
    assert "truncated" in (d.error_detail or "")


def test_jpeg_cut_inside_the_header_is_truncated_not_not_image(good_jpeg: bytes) -> None:
    d = decode_photo(good_jpeg[:20], S, LIMIT)
    assert d.error_code == "truncated" and d.width is None


def test_html_page_is_not_an_image_and_its_bytes_are_not_echoed() -> None:
    html = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>gone</body></html>"
    d = decode_photo(html, S, LIMIT)
    assert d.error_code == "not_image"
    accepted = "JPEG, PNG, WEBP, GIF, BMP, TIFF"
    assert d.error_detail == f"not a recognised image ({accepted}): content looks like html, {len(html)} bytes"
    assert "DOCTYPE" not in d.error_detail and "404" not in d.error_detail


def test_formats_outside_the_allow_list_are_not_images() -> None:
    # Pillow can open EPS (through Ghostscript); untrusted bytes must never reach that plugin.
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    assert decode_photo(eps, S, LIMIT).error_code == "not_image"
    ppm = encode(Image.new("RGB", (8, 8)), "PPM")
    assert decode_photo(ppm, S, LIMIT).error_code == "not_image"
    assert decode_photo(ppm, S, LIMIT, formats=("PPM",)).ok


def test_png_declaring_40000_squared_is_refused_without_decoding() -> None:
    bomb = png_header_only(40_000, 40_000)
    start = time.perf_counter()
    d = decode_photo(bomb, S, LIMIT)
    assert time.perf_counter() - start < 1.0  # 4.8 GB would take far longer, or die
    assert d.error_code == "too_many_pixels" and d.array is None


def test_image_over_our_limit_but_under_pillows_reports_its_size() -> None:
    d = decode_photo(png_header_only(8000, 6000), S, LIMIT)  # 48 Mpx > 40 Mpx, < Pillow's 89 Mpx
    assert d.error_code == "too_many_pixels"
    assert (d.width, d.height) == (8000, 6000)
    assert "8000x6000" in (d.error_detail or "") and str(LIMIT) in (d.error_detail or "")


def test_max_pixels_applies_to_real_images(good_jpeg: bytes) -> None:
    assert decode_photo(good_jpeg, S, 320 * 240).ok
    assert decode_photo(good_jpeg, S, 320 * 240 - 1).error_code == "too_many_pixels"


def test_pillow_global_bomb_limit_is_left_alone(good_jpeg: bytes) -> None:
    before = Image.MAX_IMAGE_PIXELS
    decode_photo(good_jpeg, S, 10)
    decode_photo(png_header_only(40_000, 40_000), S, 10**12)
    assert before == Image.MAX_IMAGE_PIXELS and before is not None


def test_mutated_jpegs_never_raise(good_jpeg: bytes) -> None:
    rng = np.random.default_rng(11)
    codes = set()
    for _ in range(25):
        data = bytearray(good_jpeg)
        for pos in rng.integers(2, len(data), size=8):
            data[int(pos)] = int(rng.integers(0, 256))
        d = decode_photo(bytes(data[: int(rng.integers(10, len(data)))]), S, LIMIT)
        assert d.ok or d.error_code in ERROR_CODES
        assert d.ok == (d.array is not None)
        codes.add(d.error_code)
    assert "truncated" in codes


# ------------------------------------------------------------------------------------------- modes
def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    im = Image.new("RGB", (120, 80), RED).convert("CMYK")
    d = decode_photo(encode(im, "JPEG", quality=95), S, LIMIT)
    assert d.ok and d.mode == "CMYK"
    assert is_red(d.array)  # type: ignore[arg-type]


def test_16_bit_greyscale_png_is_scaled_not_clipped() -> None:
    values = np.full((50, 60), 32768, dtype=np.uint16)  # half of the 16-bit range
    values[:, 30:] = 65535
    im = Image.fromarray(values)
    assert im.mode == "I;16"
    d = decode_photo(encode(im, "PNG"), S, LIMIT)
    assert d.ok and d.mode == "I;16" and (d.width, d.height) == (60, 50)
    left, right = d.array[:, :20].mean(), d.array[:, -20:].mean()  # type: ignore[index]
    assert 120 <= left <= 136  # clipping would give 255 here
    assert right >= 250
    assert (d.array[..., 0] == d.array[..., 2]).all()  # type: ignore[index]


def test_greyscale_jpeg_becomes_three_equal_channels() -> None:
    im = photo_like().convert("L")
    d = decode_photo(encode(im, "JPEG"), S, LIMIT)
    assert d.ok and d.mode == "L"
    a = d.array
    assert a is not None and (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()


def test_palette_with_transparency_is_composited_on_white() -> None:
    im = Image.new("P", (40, 40), 1)
    im.putpalette([0, 0, 0, *RED] + [0, 0, 0] * 254)
    ImageDraw.Draw(im).rectangle([0, 0, 19, 39], fill=0)  # left half: index 0, declared transparent
    d = decode_photo(encode(im, "PNG", transparency=0), 40, LIMIT)
    assert d.ok and d.mode == "P"
    left, right = d.array[:, :16], d.array[:, 24:]  # type: ignore[index]
    assert left.min() >= 250  # transparent -> white, not the palette's black
    assert is_red(right)


def test_rgba_and_la_alpha_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    d = decode_photo(encode(rgba, "PNG"), 16, LIMIT)
    assert d.ok and d.array.min() >= 250  # type: ignore[union-attr]
    half = Image.new("RGBA", (20, 20), (0, 0, 0, 128))
    mid = decode_photo(encode(half, "PNG"), 16, LIMIT).array
    assert mid is not None and 120 <= mid.mean() <= 135
    la = Image.new("LA", (20, 20), (0, 0))
    assert decode_photo(encode(la, "PNG"), 16, LIMIT).array.min() >= 250  # type: ignore[union-attr]


def test_bilevel_image_converts() -> None:
    im = Image.new("1", (30, 30), 0)
    ImageDraw.Draw(im).rectangle([0, 0, 14, 29], fill=1)
    d = decode_photo(encode(im, "PNG"), 30, LIMIT)
    assert d.ok and d.mode == "1"
    assert d.array[:, :10].min() >= 250 and d.array[:, -10:].max() <= 5  # type: ignore[index]


def test_float_tiff_is_unsupported_mode() -> None:
    im = Image.fromarray(np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10))
    d = decode_photo(encode(im, "TIFF"), S, LIMIT)
    assert d.error_code == "unsupported_mode" and "F" in (d.error_detail or "")
    assert (d.width, d.height) == (10, 10)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_webp_decodes() -> None:
    assert decode_photo(encode(photo_like(), "WEBP", quality=80), S, LIMIT).ok


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (30, 30), RED), Image.new("RGB", (30, 30), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    d = decode_photo(buf.getvalue(), 16, LIMIT)
    assert d.ok and is_red(d.array)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- orientation
@pytest.mark.parametrize(
    ("orientation", "corner", "size"),
    [
        (1, "top_left", (200, 100)),
        (3, "bottom_right", (200, 100)),
        (6, "top_right", (100, 200)),  # rotate 90 clockwise to display
        (8, "bottom_left", (100, 200)),  # rotate 90 counter-clockwise to display
    ],
)
def test_exif_orientation_is_applied(orientation: int, corner: str, size: tuple[int, int]) -> None:
    d = decode_photo(with_orientation(marked(), orientation), 64, LIMIT)
    assert d.ok and (d.width, d.height) == size
    a = d.array
    assert a is not None
    corners = {
        "top_left": a[:8, :8],
        "top_right": a[:8, -8:],
        "bottom_left": a[-8:, :8],
        "bottom_right": a[-8:, -8:],
    }
    assert is_red(corners[corner]), corner
    assert [name for name, patch in corners.items() if is_red(patch)] == [corner]


def test_thumbnail_is_upright_and_keeps_the_aspect_ratio() -> None:
    thumb = make_thumbnail(with_orientation(marked(), 6), 80, LIMIT)
    assert thumb is not None
    im = Image.open(io.BytesIO(thumb))
    assert im.format == "JPEG" and im.size == (40, 80)
    assert is_red(np.asarray(im)[:5, -5:])
    assert make_thumbnail(b"junk", 80, LIMIT) is None


# ------------------------------------------------------------------------------------------- uris
def test_read_uri_accepts_paths_and_file_uris(tmp_path: Path, good_jpeg: bytes) -> None:
    p = tmp_path / "a photo.jpg"
    p.write_bytes(good_jpeg)
    roots = PhotoRoots((str(tmp_path),))
    assert read_uri(str(p), roots=roots) == good_jpeg
    assert read_uri(p.as_uri(), roots=roots) == good_jpeg  # file:///.../a%20photo.jpg
    assert read_uri("file:" + str(p), roots=roots) == good_jpeg  # Hadoop's file:/path spelling
    with pytest.raises(ForbiddenUriError, match="outside the photo roots"):
        read_uri(str(p))  # no roots: nothing may be read


@pytest.mark.parametrize(
    "uri", ["", None, "s3a:///key.jpg", "https://example.com/a.jpg", "file://otherhost/a.jpg"]
)
def test_read_uri_refuses_what_it_cannot_read(uri: str | None, tmp_path: Path) -> None:
    with pytest.raises(UnreadableUriError) as info:
        read_uri(uri, roots=PhotoRoots((str(tmp_path), "s3a://bucket/")))
    assert isinstance(info.value, OSError)
    if uri:
        assert uri in str(info.value)
        assert isinstance(info.value, ForbiddenUriError)  # refused before any I/O


def test_read_uri_missing_directory_and_size_limit(tmp_path: Path) -> None:
    roots = PhotoRoots((str(tmp_path),))
    missing = tmp_path / "nope.jpg"
    with pytest.raises(UnreadableUriError, match=r"nope\.jpg.*FileNotFoundError"):
        read_uri(str(missing), roots=roots)
    (tmp_path / "dir").mkdir()
    with pytest.raises(UnreadableUriError, match="not a regular file"):
        read_uri(str(tmp_path / "dir"), roots=roots)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 1000)
    with pytest.raises(UnreadableUriError, match="1000 bytes, over the 999-byte limit"):
        read_uri(str(big), max_bytes=999, roots=roots)
    assert len(read_uri(str(big), max_bytes=1000, roots=roots)) == 1000


def test_decode_source_prefers_inline_bytes_and_codes_bad_uris(tmp_path: Path, good_jpeg: bytes) -> None:
    roots = PhotoRoots((str(tmp_path),))
    assert decode_source(good_jpeg, str(tmp_path / "missing.jpg"), S, LIMIT, roots=roots).ok
    bad = decode_source(None, str(tmp_path / "missing.jpg"), S, LIMIT, roots=roots)
    assert bad.error_code == "unreadable_uri" and "missing.jpg" in (bad.error_detail or "")
    assert bad.content_hash is None
    assert decode_source(None, None, S, LIMIT, roots=roots).error_code == "empty"
    outside = decode_source(None, str(tmp_path / "missing.jpg"), S, LIMIT)  # no roots
    assert outside.error_code == "forbidden_uri" and outside.content_hash is None


# ------------------------------------------------------------------------------------------- batch
def test_decode_batch_stacks_the_good_ones_in_order(tmp_path: Path, good_jpeg: bytes) -> None:
    other = encode(photo_like(seed=9), "PNG")
    on_disk = tmp_path / "p.jpg"
    on_disk.write_bytes(good_jpeg)
    items = [good_jpeg, b"", None, other, b"<html></html>", None]
    uris = [None, None, str(on_disk), None, None, str(tmp_path / "gone.jpg")]
    batch, photos = decode_batch(items, S, LIMIT, uris=uris, roots=PhotoRoots((str(tmp_path),)))
    assert [p.error_code for p in photos] == [None, "empty", None, None, "not_image", "unreadable_uri"]
    assert batch.shape == (3, S, S, 3) and batch.dtype == np.uint8
    ok = [p for p in photos if p.ok]
    for row, p in enumerate(ok):
        assert p.array is not None and np.shares_memory(p.array, batch)
        np.testing.assert_array_equal(p.array, batch[row])
    np.testing.assert_array_equal(batch[0], batch[1])  # inline and on-disk copies of the same JPEG
    assert not np.array_equal(batch[0], batch[2])


def test_decode_batch_on_threads_gives_the_same_photos_in_order(
    tmp_path: Path, good_jpeg: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from fleetvision import decode

    on_disk = tmp_path / "p.png"
    on_disk.write_bytes(encode(photo_like(seed=3), "PNG"))
    items: list[bytes | None] = [encode(photo_like(seed=s), "JPEG", quality=85) for s in range(10)]
    items += [good_jpeg[: len(good_jpeg) // 2], b"", b"%PDF-1.7 not a photo", None, None]
    uris = [None] * 13 + [str(on_disk), str(tmp_path / "gone.jpg")]
    roots = PhotoRoots((str(tmp_path),))
    one_batch, one = decode_batch(items, S, LIMIT, uris=uris, roots=roots)
    seen: set[str] = set()
    real = decode.decode_source

    def recording(*args: object, **kwargs: object) -> DecodedPhoto:
        seen.add(threading.current_thread().name)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(decode, "decode_source", recording)
    many_batch, many = decode_batch(items, S, LIMIT, uris=uris, roots=roots, threads=4)
    assert len(seen) > 1 and all(name.startswith("fv-decode") for name in seen)
    assert [p.error_code for p in many] == [p.error_code for p in one]
    assert [p.error_code for p in one][10:] == ["truncated", "empty", "not_image", None, "unreadable_uri"]
    assert [(p.width, p.height) for p in many] == [(p.width, p.height) for p in one]
    np.testing.assert_array_equal(many_batch, one_batch)
    assert many_batch.shape == (11, S, S, 3)
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match="threads must be an int >= 1"):
            decode_batch(items, S, LIMIT, threads=bad)  # type: ignore[arg-type]


def test_decode_batch_all_bad_and_argument_errors() -> None:
    batch, photos = decode_batch([None, b""], S, LIMIT)
    assert batch.shape == (0, S, S, 3) and len(photos) == 2
    with pytest.raises(ValueError, match="2 items but 1 uris"):
        decode_batch([None, None], S, LIMIT, uris=[None])
    with pytest.raises(ValueError, match="size must be a positive int"):
        decode_photo(b"", 0, LIMIT)
    with pytest.raises(ValueError, match="max_pixels"):
        decode_batch([], S, -1)


def test_decoded_photo_status() -> None:
    assert DecodedPhoto(array=None, error_code="empty").decode_status == "error"
    assert set(ERROR_CODES) == {
        "empty",
        "not_image",
        "truncated",
        "too_many_pixels",
        "unreadable_uri",
        "unsupported_mode",
        "forbidden_uri",
    }


# ----------------------------------------------------------------------------------------- quality
def _decoded(im: Image.Image, size: int) -> np.ndarray:
    d = decode_photo(encode(im, "PNG"), size, LIMIT)
    assert d.array is not None
    return d.array


def test_sharpness_orders_sharp_above_blurred_and_flat_at_zero() -> None:
    sharp = photo_like(640, 480, seed=5)
    blurred = sharp.filter(ImageFilter.GaussianBlur(8))
    flat = Image.new("RGB", (640, 480), (90, 90, 90))
    batch = np.stack([_decoded(sharp, 128), _decoded(blurred, 128), _decoded(flat, 128)])
    s = quality.sharpness(batch)
    assert s.shape == (3,) and s.dtype == np.float32
    assert s[0] > 3 * s[1] > 0 and s[2] == 0


def test_sharpness_is_comparable_across_input_sizes() -> None:
    im = photo_like(800, 600, seed=6)
    small, large = quality.sharpness(_decoded(im, 128)[None]), quality.sharpness(_decoded(im, 224)[None])
    assert abs(float(small[0]) - float(large[0])) / float(large[0]) < 0.25


def test_sharpness_matches_a_per_image_reference_on_non_square_strided_batches() -> None:
    # the batched GEMMs must resample rows by H and columns by W, image by image; 19 photos cross two
    # chunk boundaries (quality.QUALITY_CHUNK) and end on a partial chunk
    rng = np.random.default_rng(3)
    assert 2 * quality.QUALITY_CHUNK < 19 < 3 * quality.QUALITY_CHUNK
    wide = rng.integers(0, 256, (19, 48, 80, 3), dtype=np.uint8)
    strided = np.asfortranarray(wide)[:, ::-1]  # not C-contiguous
    for batch in (wide, strided):
        reference = []
        for image in batch:
            y = (image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])) / 255.0
            rows = quality._area_weights(y.shape[0], quality.ANALYSIS_SIZE).astype(np.float64)
            cols = quality._area_weights(y.shape[1], quality.ANALYSIS_SIZE).astype(np.float64)
            small = rows @ y @ cols.T
            lap = small[:-2, 1:-1] + small[2:, 1:-1] + small[1:-1, :-2] + small[1:-1, 2:] - 4 * small[1:-1, 1:-1]
            reference.append(lap.var())
        np.testing.assert_allclose(quality.sharpness(batch), reference, rtol=1e-4)
        s, b = quality.measure_quality(batch)
        np.testing.assert_allclose(s, reference, rtol=1e-4)
        brightness = [(image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).mean() / 255.0 for image in batch]
        np.testing.assert_allclose(b, brightness, rtol=1e-5)
        np.testing.assert_array_equal(b, quality.brightness(batch))


def test_brightness_and_combined_quality() -> None:
    black = np.zeros((1, 16, 16, 3), np.uint8)
    white = np.full((1, 16, 16, 3), 255, np.uint8)
    grey = np.full((1, 16, 16, 3), 128, np.uint8)
    b = quality.brightness(np.concatenate([black, white, grey]))
    np.testing.assert_allclose(b, [0.0, 1.0, 128 / 255], atol=1e-6)
    cfg = ScoringConfig()
    q = quality.image_quality(
        np.array([cfg.sharpness_good * 2, cfg.sharpness_good / 2, 1.0, 1.0, np.nan]),
        np.array([0.5, 0.5, 0.0, 1.0, 0.5]),
        cfg,
    )
    np.testing.assert_allclose(q[:4], [1.0, 0.5, 0.0, 0.0])
    assert np.isnan(q[4])


def test_quality_measures_reject_wrong_shapes_and_accept_empty() -> None:
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        quality.sharpness(np.zeros((16, 16, 3), np.uint8))
    s, b = quality.measure_quality(np.zeros((0, 16, 16, 3), np.uint8))
    assert s.shape == b.shape == (0,)
