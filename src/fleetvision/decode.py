"""Photo bytes -> a small RGB array for the models, treating every byte as hostile.

The one decode path used by scoring (and by training, so both see the same pixels):

1. Identify the format among an allow-list (``DEFAULT_FORMATS``); anything else is ``not_image``. The
   allow-list keeps Pillow's riskier plugins (EPS runs Ghostscript, for one) away from untrusted data.
2. Bound the pixels that are really allocated, *before* any pixel is decoded, so a decompression
   bomb is never allocated (``too_many_pixels``):

   * formats decoded at full size (PNG, WebP, GIF, BMP, TIFF): the declared width x height must be at
     most ``max_pixels``;
   * JPEG, which the decoder can reduce in the DCT domain: the declared size must be at most
     ``max_declared_pixels`` (a generous ceiling: phones shoot 48-200 MP), then the decoder is asked
     for a reduction (``Image.draft``) to the smallest scale (1/8, 1/4, 1/2, 1) whose result is still
     at least ``size`` x ``size``, and that reduced size must be at most ``max_pixels``. A 200 MP JPEG
     decodes at 1/8 scale into about 3 MP. Decoding at a reduced scale also skips most of the IDCT
     work, which is where decoding time goes.

   Pillow's own bomb limit (``Image.MAX_IMAGE_PIXELS``) stays on as a second guard; this module never
   changes it, because it is process-global and executors decode on several threads. Other formats
   meet it in ``Image.open``; a JPEG is opened by Pillow's JPEG plugin directly and meets it after the
   draft, on the size that is allocated (``Image.open`` would apply it to the declared size, which
   is not what a drafted decode allocates).
3. JPEG: decode at the drafted scale.
4. Apply the EXIF orientation, so the array is upright as a person would see the photo.
5. Convert to RGB: alpha (RGBA, LA, P with transparency) is composited on white, 16-bit greyscale is
   scaled (not clipped) to 8 bits, CMYK/YCbCr/L/1/P are converted; float images are
   ``unsupported_mode``.
6. Resize to ``size`` x ``size`` with a plain bilinear resize (squash: the aspect ratio is not kept and
   there is no letterbox). The models are trained on exactly this.

Failures never raise out of :func:`decode_photo`, :func:`decode_source` or :func:`decode_batch`: they
come back as a :class:`DecodedPhoto` with an :class:`ErrorCode` and a one-line detail. The detail
never echoes the content: an unrecognised file is described by its detected kind (html, pdf, svg,
heic, zip, text, unknown, ...) and its length.

Photos at a uri are read by :func:`fleetvision.photo_uris.read_uri` only inside the configured photo
roots (:class:`~fleetvision.photo_uris.PhotoRoots`, ``paths.photo_roots``): anything else is
``forbidden_uri`` and never opened.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

from fleetvision.photo_uris import ForbiddenUriError, PhotoRoots, RemoteOptions, UnreadableUriError, read_uri

logger = logging.getLogger(__name__)

DEFAULT_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""Formats Pillow may identify. Multi-picture JPEGs from phones come back with format MPO via JPEG."""

_DETAIL_MAX = 300
_WHITE = (255, 255, 255, 255)
# EXIF orientations that swap width and height (transpose, rotate 90/270, transverse).
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
# Kinds of non-image content named in error details (never the bytes themselves).
_CONTENT_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "pdf"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"%!PS", "postscript"),
    (b"\x7fELF", "elf"),
    (b"8BPS", "psd"),
    (b"\x00\x00\x00\x0cjP  ", "jpeg2000"),
    (b"\xff\x4f\xff\x51", "jpeg2000"),
    (b"\x00\x00\x01\x00", "ico"),
)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"})
_BYTES_LITERAL = re.compile(r"b'(?:[^'\\]|\\.)*'" + r'|b"(?:[^"\\]|\\.)*"')


class ErrorCode(StrEnum):
    """Why a photo has no predictions. The value is what ``image_tags.error_code`` holds."""

    EMPTY = "empty"
    NOT_IMAGE = "not_image"
    TRUNCATED = "truncated"
    TOO_MANY_PIXELS = "too_many_pixels"
    UNREADABLE_URI = "unreadable_uri"
    UNSUPPORTED_MODE = "unsupported_mode"
    FORBIDDEN_URI = "forbidden_uri"


ERROR_CODES: tuple[str, ...] = tuple(c.value for c in ErrorCode)

ERROR_CODE_MEANINGS: Mapping[str, str] = {
    ErrorCode.EMPTY: "no bytes: zero-length content or file, or neither content nor uri",
    ErrorCode.NOT_IMAGE: "not an image of an accepted format; the detail names the detected kind and length",
    ErrorCode.TRUNCATED: "an image signature but a corrupt or incomplete header or pixel data",
    ErrorCode.TOO_MANY_PIXELS: (
        "over scoring.max_image_pixels as decoded (JPEG: after the DCT reduction), or a JPEG declaring more "
        "than scoring.max_declared_pixels"
    ),
    ErrorCode.UNREADABLE_URI: "the uri is inside the photo roots but could not be read (missing, denied, too big)",
    ErrorCode.UNSUPPORTED_MODE: "a pixel mode with no RGB reading (float, signed 16-bit)",
    ErrorCode.FORBIDDEN_URI: (
        "the uri is outside paths.photo_roots (or escapes them by .. or a symlink), is relative, or has a "
        "scheme that is not allowed; it was never opened"
    ),
}
"""One line per error code, for the docs (``docs/tables.md`` is generated from it)."""


def uri_error_code(error: UnreadableUriError) -> ErrorCode:
    """The error code of a uri that was not read: ``forbidden_uri`` (never opened) or ``unreadable_uri``."""
    return ErrorCode.FORBIDDEN_URI if isinstance(error, ForbiddenUriError) else ErrorCode.UNREADABLE_URI


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous; compare fields explicitly
class DecodedPhoto:
    """One photo after decoding: the model input, or why there is none.

    Attributes:
        array: uint8 ``[size, size, 3]`` RGB, or None when decoding failed.
        width: Width of the original image after EXIF rotation (None if the header was unreadable).
        height: Height of the original image after EXIF rotation.
        error_code: None when decoding succeeded, else an :class:`ErrorCode` value.
        error_detail: One line saying what went wrong (None when ok).
        content_hash: sha256 hex digest of the bytes; None when there were no bytes.
        format: The format Pillow identified (JPEG, PNG, ...), if any.
        mode: The original Pillow mode (RGB, CMYK, I;16, ...), if the header was readable.
    """

    array: np.ndarray | None
    width: int | None = None
    height: int | None = None
    error_code: str | None = None
    error_detail: str | None = None
    content_hash: str | None = None
    format: str | None = None
    mode: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None

    @property
    def decode_status(self) -> str:
        """``ok`` or ``error``, as ``image_tags.decode_status`` holds it."""
        return "ok" if self.error_code is None else "error"


def content_hash(data: bytes) -> str:
    """The sha256 hex digest of a photo's bytes (``image_tags.content_hash``)."""
    return hashlib.sha256(data).hexdigest()


def _detail(text: str) -> str:
    # Library messages can quote a few bytes of the content (b'...'): an error detail never does.
    line = " ".join(_BYTES_LITERAL.sub("<bytes>", str(text)).split())
    return line if len(line) <= _DETAIL_MAX else line[: _DETAIL_MAX - 3] + "..."


def _failed(meta: DecodedPhoto, code: ErrorCode, detail: str) -> tuple[None, DecodedPhoto]:
    return None, dataclasses.replace(meta, array=None, error_code=code.value, error_detail=_detail(detail))


# ------------------------------------------------------------------------------------------- decode
def _signature_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    return None


def describe_content(data: bytes) -> str:
    """What a file looks like, as one word for error details (``html``, ``pdf``, ``heic``, ``text``, ...).

    Only the kind is named, never the bytes: a detail must not publish what a file holds.
    """
    sig = _signature_format(data)
    if sig is not None:
        return sig.lower()
    for magic, kind in _CONTENT_KINDS:
        if data.startswith(magic):
            return kind
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _HEIF_BRANDS:
            return "heic"
        return "avif" if brand in (b"avif", b"avis") else "iso-media"
    if data[:4] == b"RIFF":
        return "riff"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head:
        return "html"
    if b"<svg" in head:
        return "svg"
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        return "xml"
    if head.startswith((b"{", b"[")):
        return "json" if _is_text(data[:1024]) else "unknown"
    return "text" if _is_text(data[:1024]) else "unknown"


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the window is still text
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:  # a malformed EXIF block: treat the photo as unrotated
        return 1


def _to_rgb(im: Image.Image) -> Image.Image | None:
    """Convert any sensible mode to RGB; None when the mode has no sensible RGB reading."""
    mode = im.mode
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info
    if mode == "RGB" and not has_alpha:
        return im
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(im)
        if mode == "I" and values.size and values.max() <= 255 and values.min() >= 0:
            scaled = values.astype(np.uint8)
        else:
            # 16-bit range to 8 bits; rounding, not clipping (a plain convert("L") clips at 255).
            scaled = ((np.clip(values.astype(np.float32), 0, 65535) + 128.5) / 257.0).astype(np.uint8)
        return Image.fromarray(np.repeat(scaled[..., None], 3, axis=2), "RGB")
    if has_alpha and mode in ("RGBA", "RGBa", "LA", "La", "PA", "P", "L", "RGB"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE)
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        try:
            return im.convert("RGB")
        except ValueError:
            return None
    return None  # F (float), I;16S, BGR;xx and other modes with no sensible photo reading


def _open(
    data: bytes | None,
    draft_size: tuple[int, int] | None,
    max_pixels: int,
    formats: Sequence[str],
    max_declared_pixels: int | None = None,
) -> tuple[Image.Image | None, DecodedPhoto]:
    """Open, size-check, (draft-)decode, orient and convert to RGB.

    ``max_pixels`` bounds what is allocated; ``max_declared_pixels`` (default ``max_pixels``) bounds the
    declared size of a JPEG that is drafted (see the module docstring).

    Returns:
        ``(rgb image, metadata)`` on success (the metadata's ``array`` is still None), or
        ``(None, failure)``.
    """
    meta = DecodedPhoto(array=None)
    if data is None:
        return _failed(meta, ErrorCode.EMPTY, "no bytes: content and uri are null")
    meta = dataclasses.replace(meta, content_hash=content_hash(data))
    if len(data) == 0:
        return _failed(meta, ErrorCode.EMPTY, "zero bytes")
    if draft_size is not None and "JPEG" in formats and _signature_format(data) == "JPEG":
        opened, meta = _open_jpeg_drafted(data, meta, draft_size, max_pixels, max_declared_pixels or max_pixels)
        if opened is None:
            return None, meta
        return _finish(opened, meta)
    try:
        im = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError as e:
        return _failed(meta, ErrorCode.TOO_MANY_PIXELS, f"declared size over Pillow's bomb limit: {e}")
    except UnidentifiedImageError:
        sig = _signature_format(data)
        if sig is not None and sig in formats:
            detail = f"{sig} signature but the header is incomplete or corrupt ({len(data)} bytes)"
            return _failed(dataclasses.replace(meta, format=sig), ErrorCode.TRUNCATED, detail)
        kind = describe_content(data)
        detail = f"not a recognised image ({', '.join(formats)}): content looks like {kind}, {len(data)} bytes"
        return _failed(meta, ErrorCode.NOT_IMAGE, detail)
    except Exception as e:  # header parsers raise SyntaxError, struct.error, ValueError on junk
        sig = _signature_format(data)
        code = ErrorCode.TRUNCATED if sig is not None else ErrorCode.NOT_IMAGE
        detail = f"header unreadable: {type(e).__name__}: {e}"
        return _failed(dataclasses.replace(meta, format=sig), code, detail)

    width, height = im.size
    meta = dataclasses.replace(meta, width=width, height=height, format=im.format, mode=im.mode)
    if width * height > max_pixels:
        # Never decoded: the declared size alone is refused.
        detail = f"{width}x{height} = {width * height} pixels, over the {max_pixels}-pixel limit"
        return _failed(meta, ErrorCode.TOO_MANY_PIXELS, detail)
    try:
        if draft_size is not None and im.format in ("JPEG", "MPO"):
            im.draft("RGB", draft_size)
        im.load()
    except Image.DecompressionBombError as e:
        return _failed(meta, ErrorCode.TOO_MANY_PIXELS, str(e))
    except Exception as e:  # OSError "image file is truncated", "broken data stream", zlib/EOF errors
        return _failed(meta, ErrorCode.TRUNCATED, f"pixel data unreadable: {type(e).__name__}: {e}")
    return _finish(im, meta)


def _open_jpeg_drafted(
    data: bytes, meta: DecodedPhoto, draft_size: tuple[int, int], max_pixels: int, max_declared_pixels: int
) -> tuple[Image.Image | None, DecodedPhoto]:
    """Open a JPEG with Pillow's JPEG plugin, check its declared size, draft it, check what is allocated."""
    try:
        # Image.open's bomb check applies to the declared size; here it applies after the draft.
        im = JpegImagePlugin.jpeg_factory(io.BytesIO(data))
    except Exception as e:  # SyntaxError, struct.error, OSError on a cut or corrupt header
        detail = f"JPEG signature but the header is unreadable ({len(data)} bytes): {type(e).__name__}: {e}"
        return _failed(dataclasses.replace(meta, format="JPEG"), ErrorCode.TRUNCATED, detail)
    width, height = im.size
    meta = dataclasses.replace(meta, width=width, height=height, format=im.format, mode=im.mode)
    if width * height > max_declared_pixels:
        detail = (
            f"{width}x{height} = {width * height} pixels declared, over the {max_declared_pixels}-pixel "
            "ceiling for JPEG"
        )
        return _failed(meta, ErrorCode.TOO_MANY_PIXELS, detail)
    try:
        im.draft("RGB", draft_size)
        drafted_w, drafted_h = im.size
        if drafted_w * drafted_h > max_pixels:
            detail = (
                f"{width}x{height} JPEG decodes at {drafted_w}x{drafted_h} = {drafted_w * drafted_h} pixels "
                f"after the DCT reduction, over the {max_pixels}-pixel limit"
            )
            return _failed(meta, ErrorCode.TOO_MANY_PIXELS, detail)
        _pillow_bomb_check(im.size)  # Pillow's guard, on the size that is allocated
        im.load()
    except Image.DecompressionBombError as e:
        return _failed(meta, ErrorCode.TOO_MANY_PIXELS, str(e))
    except Exception as e:  # OSError "image file is truncated", "broken data stream"
        return _failed(meta, ErrorCode.TRUNCATED, f"pixel data unreadable: {type(e).__name__}: {e}")
    return im, meta


def _pillow_bomb_check(size: tuple[int, int]) -> None:
    """Pillow's decompression-bomb check (``Image.MAX_IMAGE_PIXELS``), the way ``Image.open`` applies it."""
    check = getattr(Image, "_decompression_bomb_check", None)  # private in Pillow: keep a fallback
    if check is not None:
        check(size)
    elif Image.MAX_IMAGE_PIXELS is not None and size[0] * size[1] > 2 * Image.MAX_IMAGE_PIXELS:
        raise Image.DecompressionBombError(f"Image size ({size[0] * size[1]} pixels) could be a decompression bomb")


def _finish(im: Image.Image, meta: DecodedPhoto) -> tuple[Image.Image | None, DecodedPhoto]:
    """Apply the EXIF orientation and convert to RGB (the photo's pixels are loaded)."""
    width, height = meta.width, meta.height
    orientation = _orientation(im)
    if orientation in _SWAPPING_ORIENTATIONS:
        meta = dataclasses.replace(meta, width=height, height=width)
    try:
        oriented = ImageOps.exif_transpose(im) if orientation != 1 else im
    except Exception:  # a malformed EXIF block: keep the photo as stored
        oriented = im
    rgb = _to_rgb(oriented if oriented is not None else im)
    if rgb is None:
        return _failed(meta, ErrorCode.UNSUPPORTED_MODE, f"mode {meta.mode} has no RGB reading")
    return rgb, meta


def _check_args(size: int, max_pixels: int, max_declared_pixels: int | None = None) -> None:
    if not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if not isinstance(max_pixels, int | np.integer) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")
    if max_declared_pixels is not None and (
        not isinstance(max_declared_pixels, int | np.integer) or max_declared_pixels < max_pixels
    ):
        raise ValueError(
            f"max_declared_pixels must be an int >= max_pixels ({max_pixels}), got {max_declared_pixels!r}"
        )


def decode_photo(
    data: bytes | None,
    size: int,
    max_pixels: int,
    *,
    max_declared_pixels: int | None = None,
    draft: bool = True,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> DecodedPhoto:
    """Decode untrusted photo bytes to a ``size`` x ``size`` RGB array.

    See the module docstring for the steps. Memory per call is bounded by ``max_pixels`` pixels as
    decoded (for a JPEG, after the DCT reduction; for other formats, the declared size) plus the input
    bytes and the small output. A 200 MP JPEG decoded for a 224 px model allocates about 3 MP.

    Args:
        data: The encoded photo, or None when there are no bytes.
        size: Output side in pixels (the models' input size).
        max_pixels: Most pixels decoded into memory; more is ``too_many_pixels``.
        max_declared_pixels: Largest declared width x height of a JPEG that is decoded at reduced
            scale (None: ``max_pixels``); more is ``too_many_pixels``. Must be at least ``max_pixels``.
        draft: Use JPEG DCT-domain downscaling (on by default; off only for benchmarks, and then a JPEG
            is decoded at full size and its declared size is bounded by ``max_pixels``).
        formats: Pillow format names accepted; anything else is ``not_image``.

    Returns:
        The decoded photo, or a failure with an :class:`ErrorCode` and a detail line.

    Raises:
        ValueError: ``size`` or ``max_pixels`` is not a positive int, or ``max_declared_pixels`` is
            below ``max_pixels`` (a caller bug, not bad data).
    """
    _check_args(size, max_pixels, max_declared_pixels)
    image, meta = _open(data, (size, size) if draft else None, max_pixels, formats, max_declared_pixels)
    if image is None:
        return meta
    try:
        array = np.array(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    except Exception as e:  # lazy decoders can fail late; never let one escape
        return _failed(meta, ErrorCode.TRUNCATED, f"resize failed: {type(e).__name__}: {e}")[1]
    if array.shape != (size, size, 3):
        return _failed(meta, ErrorCode.UNSUPPORTED_MODE, f"decoded to shape {array.shape}")[1]
    return dataclasses.replace(meta, array=array)


def decode_source(
    content: bytes | None,
    uri: str | None,
    size: int,
    max_pixels: int,
    *,
    max_declared_pixels: int | None = None,
    max_bytes: int | None = None,
    remote: RemoteOptions | None = None,
    roots: PhotoRoots | None = None,
    draft: bool = True,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> DecodedPhoto:
    """Decode a ``listing_images`` row: its inline ``content`` if present, else the bytes at ``uri``.

    Args:
        content: Inline bytes (wins when not None).
        uri: Where to read the bytes otherwise (see :func:`read_uri`).
        size: Output side in pixels.
        max_pixels: See :func:`decode_photo`.
        max_declared_pixels: See :func:`decode_photo`.
        max_bytes: Largest file read from a uri.
        remote: Object-store options (see :func:`read_uri`).
        roots: Where a uri may point (see :func:`read_uri`); None allows no uri.
        draft: See :func:`decode_photo`.
        formats: See :func:`decode_photo`.

    Returns:
        The decoded photo; a uri outside ``roots`` is ``forbidden_uri`` (never opened), an unreadable
        uri is ``unreadable_uri``, no content and no uri is ``empty``.
    """
    if content is None and uri:
        try:
            content = read_uri(uri, max_bytes=max_bytes, remote=remote, roots=roots)
        except UnreadableUriError as e:
            _check_args(size, max_pixels, max_declared_pixels)
            return _failed(DecodedPhoto(array=None), uri_error_code(e), str(e))[1]
    return decode_photo(
        content, size, max_pixels, max_declared_pixels=max_declared_pixels, draft=draft, formats=formats
    )


def decode_batch(
    items: Sequence[bytes | None],
    size: int,
    max_pixels: int,
    *,
    uris: Sequence[str | None] | None = None,
    max_declared_pixels: int | None = None,
    max_bytes: int | None = None,
    remote: RemoteOptions | None = None,
    roots: PhotoRoots | None = None,
    draft: bool = True,
    formats: Sequence[str] = DEFAULT_FORMATS,
    threads: int = 1,
) -> tuple[np.ndarray, list[DecodedPhoto]]:
    """Decode a batch; the good photos are stacked for the models.

    Args:
        items: Inline bytes per photo (None where the bytes are at a uri or missing).
        size: Output side in pixels.
        max_pixels: See :func:`decode_photo`.
        uris: Optional uri per photo, read where the item is None.
        max_declared_pixels: See :func:`decode_photo`.
        max_bytes: Largest file read from a uri.
        remote: Object-store options (see :func:`read_uri`).
        roots: Where a uri may point (see :func:`read_uri`); None allows no uri.
        draft: See :func:`decode_photo`.
        formats: See :func:`decode_photo`.
        threads: Photos decoded at once on this many threads (Pillow releases the GIL while it decodes
            and resizes). 1 decodes in the calling thread. Memory while decoding is up to ``threads``
            photos' ``max_pixels`` each; the results are the same and in input order whatever the count.

    Returns:
        ``(batch, photos)``: uint8 ``[n_ok, size, size, 3]`` of the good photos in input order, and one
        :class:`DecodedPhoto` per input whose ``array`` (when ok) is a view into ``batch``.

    Raises:
        ValueError: ``uris`` is given with a different length than ``items``, bad size/max_pixels, or
            ``threads`` < 1.
    """
    _check_args(size, max_pixels, max_declared_pixels)
    if uris is not None and len(uris) != len(items):
        raise ValueError(f"decode_batch: {len(items)} items but {len(uris)} uris")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"decode_batch: threads must be an int >= 1, got {threads!r}")

    def one(i: int) -> DecodedPhoto:
        return decode_source(
            items[i],
            uris[i] if uris is not None else None,
            size,
            max_pixels,
            max_declared_pixels=max_declared_pixels,
            max_bytes=max_bytes,
            remote=remote,
            roots=roots,
            draft=draft,
            formats=formats,
        )

    if threads == 1 or len(items) < 2:
        photos = [one(i) for i in range(len(items))]
    else:
        with ThreadPoolExecutor(min(threads, len(items)), thread_name_prefix="fv-decode") as pool:
            photos = list(pool.map(one, range(len(items))))
    ok_index = [i for i, p in enumerate(photos) if p.ok]
    batch = np.empty((len(ok_index), size, size, 3), dtype=np.uint8)
    for row, i in enumerate(ok_index):
        batch[row] = photos[i].array
        photos[i] = dataclasses.replace(photos[i], array=batch[row])
    failed = len(photos) - len(ok_index)
    if failed:
        logger.debug("decode_batch: %d of %d photos failed", failed, len(photos))
    return batch, photos


def make_thumbnail(
    data: bytes | None,
    max_side: int,
    max_pixels: int,
    *,
    max_declared_pixels: int | None = None,
    quality: int = 80,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> bytes | None:
    """A small upright JPEG of a photo, aspect ratio kept (for reports); None if it cannot be decoded.

    ``max_pixels`` and ``max_declared_pixels`` bound memory as in :func:`decode_photo`.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    _check_args(max_side, max_pixels, max_declared_pixels)
    image, _meta = _open(data, (max_side, max_side), max_pixels, formats, max_declared_pixels)
    if image is None:
        return None
    try:
        im = image.copy()
        im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        out = io.BytesIO()
        im.save(out, format="JPEG", quality=quality)
        return out.getvalue()
    except Exception:
        logger.debug("thumbnail failed", exc_info=True)
        return None
