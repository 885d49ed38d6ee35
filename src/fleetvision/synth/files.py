"""Photos as real files: format, size, quality, EXIF orientation, colour mode, and broken files.

:func:`sample_file_spec` draws how a photo is stored (a marketplace's mix of sizes and formats);
:func:`encode_photo` stores an upright rendered image that way. The EXIF orientation tag is honoured
the way viewers honour it: the stored pixels are rotated so that applying the tag gives back the
upright photo, and labels always refer to the upright (displayed) image.
:func:`bad_file_bytes` makes each kind of broken file.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from fleetvision.synth.rng import weighted_choice

# displayed (width, height) of landscape photos, with their share; portrait photos swap them
SIZE_MIX: dict[tuple[int, int], float] = {
    (640, 480): 0.16, (800, 600): 0.2, (1024, 768): 0.24, (1280, 960): 0.14, (1600, 1200): 0.12,
    (1200, 800): 0.06, (1280, 720): 0.03, (2048, 1536): 0.03, (2560, 1920): 0.02,
}
PORTRAIT_SHARE = 0.1
FORMAT_MIX: dict[str, float] = {"JPEG": 0.86, "PNG": 0.06, "WEBP": 0.08}
ORIENTATION_SHARE = 0.05  # JPEGs stored rotated with an EXIF orientation tag (3, 6 or 8)
GREY_SHARE = 0.03
CMYK_SHARE = 0.02  # of JPEGs
BAD_KINDS = ("empty", "truncated", "not_image", "bomb", "missing_uri")
BOMB_SIZE = 30_000  # declared width and height of a decompression bomb: 900 Mpx, over Pillow's limit
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
EXIF_ORIENTATION = 0x0112

# the rotation applied to the upright image to get the stored pixels, per EXIF orientation
_STORE = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@dataclass(frozen=True)
class FileSpec:
    """How one photo is stored.

    Attributes:
        size: Displayed (upright) width and height.
        fmt: ``JPEG`` | ``PNG`` | ``WEBP``.
        quality: JPEG/WebP quality (PNG: 0).
        orientation: EXIF orientation tag (1 = none).
        color_mode: ``RGB`` | ``L`` | ``CMYK``.
        progressive: Progressive JPEG.
    """

    size: tuple[int, int]
    fmt: str = "JPEG"
    quality: int = 90
    orientation: int = 1
    color_mode: str = "RGB"
    progressive: bool = False

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.fmt]


def sample_file_spec(rng: np.random.Generator) -> FileSpec:
    """Draw a storage choice from the marketplace mix (sizes, formats, orientation, colour modes)."""
    sizes = list(SIZE_MIX)
    w, h = sizes[int(rng.choice(len(sizes), p=np.asarray(list(SIZE_MIX.values())) / sum(SIZE_MIX.values())))]
    if rng.random() < PORTRAIT_SHARE:
        w, h = h, w
    fmt = weighted_choice(rng, FORMAT_MIX)
    quality = int(rng.integers(60, 96)) if fmt == "JPEG" else (int(rng.integers(70, 91)) if fmt == "WEBP" else 0)
    orientation = int(rng.choice([3, 6, 8])) if fmt == "JPEG" and rng.random() < ORIENTATION_SHARE else 1
    r = rng.random()
    mode = "L" if r < GREY_SHARE else ("CMYK" if fmt == "JPEG" and r < GREY_SHARE + CMYK_SHARE else "RGB")
    return FileSpec((w, h), fmt, quality, orientation, mode, fmt == "JPEG" and rng.random() < 0.15)


def encode_photo(image: Image.Image, spec: FileSpec) -> bytes:
    """Store an upright RGB image as ``spec`` says.

    Args:
        image: The upright photo; resized to ``spec.size`` if it differs.
        spec: Format, quality, EXIF orientation and colour mode.

    Returns:
        The file's bytes.

    Raises:
        ValueError: An unsupported format/mode pair (CMYK is JPEG only).
    """
    if spec.fmt not in EXTENSIONS:
        raise ValueError(f"file format must be one of {sorted(EXTENSIONS)}, got {spec.fmt!r}")
    if spec.color_mode == "CMYK" and spec.fmt != "JPEG":
        raise ValueError(f"CMYK photos are stored as JPEG only, got {spec.fmt}")
    if image.size != spec.size:
        image = image.resize(spec.size, Image.Resampling.BILINEAR)
    if spec.orientation in _STORE:
        image = image.transpose(_STORE[spec.orientation])
    if spec.color_mode != "RGB":
        image = image.convert(spec.color_mode)
    out = io.BytesIO()
    if spec.fmt == "JPEG":
        kwargs: dict[str, object] = {"quality": spec.quality, "progressive": spec.progressive}
        if spec.orientation != 1:
            exif = Image.Exif()
            exif[EXIF_ORIENTATION] = spec.orientation
            kwargs["exif"] = exif.tobytes()
        image.save(out, "JPEG", **kwargs)
    elif spec.fmt == "PNG":
        image.save(out, "PNG", compress_level=1)
    else:
        image.save(out, "WEBP", quality=spec.quality, method=2)
    return out.getvalue()


def encode_jpeg(image: Image.Image, quality: int = 90) -> bytes:
    """A plain baseline JPEG of an RGB image."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@lru_cache(maxsize=1)
def bomb_png() -> bytes:
    """A valid 1-bit greyscale PNG declaring 30000 x 30000 pixels (about 110 KB on disk).

    The pixels are all zero, so it compresses a thousand to one; decoded it would need 900 million
    pixels. Pillow refuses it at open with ``DecompressionBombError`` (over twice ``MAX_IMAGE_PIXELS``).
    """
    n = BOMB_SIZE
    ihdr = struct.pack(">IIBBBBB", n, n, 1, 0, 0, 0, 0)  # 1-bit greyscale, no interlace
    row = b"\x00" * (1 + (n + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    parts = [comp.compress(row * 1000) for _ in range(n // 1000)]
    parts.append(comp.flush())
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(parts)) + _png_chunk(
        b"IEND", b""
    )


NOT_FOUND_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n<body><h1>Not Found</h1>\n"
    b"<p>The requested photo was not found on this server.</p><hr><address>nginx</address></body></html>\n"
)


def bad_file_bytes(kind: str, good: bytes | None, rng: np.random.Generator) -> bytes | None:
    """The bytes of a broken file of ``kind``.

    Args:
        kind: One of ``BAD_KINDS``.
        good: A valid JPEG of the photo (``truncated`` cuts it short).
        rng: Where to cut.

    Returns:
        The bytes, or None for ``missing_uri`` (no file at all).

    Raises:
        ValueError: Unknown kind, or ``truncated`` without a JPEG to cut.
    """
    if kind == "empty":
        return b""
    if kind == "not_image":
        return NOT_FOUND_HTML
    if kind == "bomb":
        return bomb_png()
    if kind == "missing_uri":
        return None
    if kind == "truncated":
        if not good or good[:2] != b"\xff\xd8":
            raise ValueError("a truncated file needs the bytes of a valid JPEG to cut")
        return good[: max(64, int(len(good) * rng.uniform(0.3, 0.7)))]
    raise ValueError(f"bad file kind must be one of {BAD_KINDS}, got {kind!r}")
