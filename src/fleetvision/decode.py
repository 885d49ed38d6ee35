"""Photo bytes -> a small RGB array for the models, treating every byte as hostile.

The one decode path used by scoring (and by training, so both see the same pixels):

1. Identify the format among an allow-list (``DEFAULT_FORMATS``); anything else is ``not_image``. The
   allow-list keeps Pillow's riskier plugins (EPS runs Ghostscript, for one) away from untrusted data.
2. Check the declared pixel count against ``max_pixels`` *before* any pixel is decoded, so a
   decompression bomb is never allocated (``too_many_pixels``). Pillow's own bomb limit
   (``Image.MAX_IMAGE_PIXELS``) is left on as a second guard; this module never changes it, because
   it is process-global and executors decode on several threads.
3. JPEG: ask the decoder for a DCT-domain reduction (``Image.draft``) to the smallest scale (1/8,
   1/4, 1/2, 1) whose result is still at least ``size`` x ``size``. Decoding at 1/4 scale skips most
   of the IDCT work and the memory, which is where decoding time goes.
4. Apply the EXIF orientation, so the array is upright as a person would see the photo.
5. Convert to RGB: alpha (RGBA, LA, P with transparency) is composited on white, 16-bit greyscale is
   scaled (not clipped) to 8 bits, CMYK/YCbCr/L/1/P are converted; float images are
   ``unsupported_mode``.
6. Resize to ``size`` x ``size`` with a plain bilinear resize (squash: the aspect ratio is not kept and
   there is no letterbox). The models are trained on exactly this.

Failures never raise out of :func:`decode_photo`, :func:`decode_source` or :func:`decode_batch`: they
come back as a :class:`DecodedPhoto` with an :class:`ErrorCode` and a one-line detail.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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


class ErrorCode(StrEnum):
    """Why a photo has no predictions. The value is what ``image_tags.error_code`` holds."""

    EMPTY = "empty"
    NOT_IMAGE = "not_image"
    TRUNCATED = "truncated"
    TOO_MANY_PIXELS = "too_many_pixels"
    UNREADABLE_URI = "unreadable_uri"
    UNSUPPORTED_MODE = "unsupported_mode"


ERROR_CODES: tuple[str, ...] = tuple(c.value for c in ErrorCode)


class UnreadableUriError(OSError):
    """A photo's uri could not be read; the message names the uri and the reason."""

    def __init__(self, uri: str | None, reason: str) -> None:
        super().__init__(f"cannot read {uri!r}: {reason}")
        self.uri = uri
        self.reason = reason


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
    line = " ".join(str(text).split())
    return line if len(line) <= _DETAIL_MAX else line[: _DETAIL_MAX - 3] + "..."


def _failed(meta: DecodedPhoto, code: ErrorCode, detail: str) -> tuple[None, DecodedPhoto]:
    return None, dataclasses.replace(meta, array=None, error_code=code.value, error_detail=_detail(detail))


# --------------------------------------------------------------------------------------------- uris
# uri scheme -> the pyarrow filesystem that reads it (Hadoop's s3a/s3n spellings are S3)
REMOTE_SCHEMES: dict[str, str] = {"s3": "s3", "s3a": "s3", "s3n": "s3", "gs": "gs", "gcs": "gs", "hdfs": "hdfs"}

RemoteOptions = Mapping[str, Mapping[str, Any]]


def _frozen(options: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((options or {}).items()))


@functools.lru_cache(maxsize=32)
def _remote_filesystem(kind: str, netloc: str, options: tuple[tuple[str, Any], ...]) -> Any:
    """One pyarrow filesystem per (kind, host, options) per process: creating one is not free."""
    import pyarrow.fs as pafs

    opts = dict(options)
    if kind == "s3":
        return pafs.S3FileSystem(**opts)
    if kind == "gs":
        return pafs.GcsFileSystem(**opts)
    host, _, port = netloc.partition(":")
    return pafs.HadoopFileSystem(host or "default", int(port) if port else 0, **opts)


def _read_remote(uri: str, kind: str, netloc: str, path: str, max_bytes: int | None, options: RemoteOptions) -> bytes:
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        fs = _remote_filesystem(kind, netloc if kind == "hdfs" else "", _frozen(options.get(kind)))
        # S3 and GCS paths are bucket/key; HDFS paths are absolute on the namenode
        target = path if kind == "hdfs" else f"{netloc}{path}"
        try:
            # one request per photo: open and read (at most max_bytes + 1); ask why only when it fails
            with fs.open_input_stream(target) as f:
                data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except OSError:
            info = fs.get_file_info(target)
            if info.type == pafs.FileType.NotFound:
                raise UnreadableUriError(uri, "no such object") from None
            if info.type != pafs.FileType.File:
                raise UnreadableUriError(uri, "not a file") from None
            raise
    except UnreadableUriError:
        raise
    except (OSError, pa.ArrowException, ValueError, TypeError) as e:
        # connection refused, access denied, bad filesystem option: one clear line per photo
        raise UnreadableUriError(uri, f"{type(e).__name__}: {e}") from e
    if max_bytes is not None and len(data) > max_bytes:
        raise UnreadableUriError(uri, f"file is over the {max_bytes}-byte limit")
    return bytes(data)


def read_uri(uri: str | None, max_bytes: int | None = None, remote: RemoteOptions | None = None) -> bytes:
    """Read a photo's bytes from a local path, a ``file:`` URI or an object store.

    Local: ``file:///a/b.jpg``, ``file:/a/b.jpg`` (Hadoop's spelling) and ``/a/b.jpg``.
    Remote, through pyarrow's filesystems (:data:`REMOTE_SCHEMES`): ``s3://``, ``s3a://``, ``s3n://``
    (``bucket/key``), ``gs://``, ``gcs://`` and ``hdfs://host:port/path``. Credentials come from each
    store's usual chain on the executor (``AWS_*`` variables or the instance role for S3, Application
    Default Credentials for GCS, Kerberos/``HADOOP_*`` for HDFS); endpoints, regions and the like
    from ``remote`` (``paths.remote_options``).

    Args:
        uri: The location.
        max_bytes: Refuse files larger than this (None: no limit). Bounds executor memory per photo.
        remote: Per filesystem kind (``s3``, ``gs``, ``hdfs``), keyword arguments for pyarrow's
            ``S3FileSystem`` / ``GcsFileSystem`` / ``HadoopFileSystem``, e.g.
            ``{"s3": {"endpoint_override": "http://minio:9000", "region": "eu-central-1"}}``.

    Returns:
        The file's bytes.

    Raises:
        UnreadableUriError: The uri is empty, has an unsupported scheme, is not a regular file or
            object, is larger than ``max_bytes``, or cannot be opened (missing, refused, denied).
    """
    if not uri:
        raise UnreadableUriError(uri, "no uri")
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in REMOTE_SCHEMES:
        if not parsed.netloc:
            raise UnreadableUriError(uri, f"{scheme} uri without a bucket or host")
        return _read_remote(uri, REMOTE_SCHEMES[scheme], parsed.netloc, unquote(parsed.path), max_bytes, remote or {})
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UnreadableUriError(uri, f"file uri with a remote host {parsed.netloc!r}")
        path = unquote(parsed.path)
    elif scheme == "":
        path = uri
    else:
        known = ", ".join(["file", *REMOTE_SCHEMES])
        raise UnreadableUriError(uri, f"unsupported scheme {scheme!r} (read: {known})")
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableUriError(uri, "not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise UnreadableUriError(uri, f"file is {st.st_size} bytes, over the {max_bytes}-byte limit")
        with open(path, "rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except UnreadableUriError:
        raise
    except OSError as e:
        raise UnreadableUriError(uri, f"{type(e).__name__}: {e.strerror or e}") from e
    if max_bytes is not None and len(data) > max_bytes:
        # The file grew between stat and read.
        raise UnreadableUriError(uri, f"file is over the {max_bytes}-byte limit")
    return data


# ------------------------------------------------------------------------------------------- decode
def _signature_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    return None


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
) -> tuple[Image.Image | None, DecodedPhoto]:
    """Open, size-check, (draft-)decode, orient and convert to RGB.

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
    try:
        im = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError as e:
        return _failed(meta, ErrorCode.TOO_MANY_PIXELS, f"declared size over Pillow's bomb limit: {e}")
    except UnidentifiedImageError:
        sig = _signature_format(data)
        if sig is not None and sig in formats:
            detail = f"{sig} signature but the header is incomplete or corrupt ({len(data)} bytes)"
            return _failed(dataclasses.replace(meta, format=sig), ErrorCode.TRUNCATED, detail)
        detail = f"not a recognised image ({', '.join(formats)}); first bytes {data[:24]!r}"
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


def _check_args(size: int, max_pixels: int) -> None:
    if not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if not isinstance(max_pixels, int | np.integer) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive int, got {max_pixels!r}")


def decode_photo(
    data: bytes | None,
    size: int,
    max_pixels: int,
    *,
    draft: bool = True,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> DecodedPhoto:
    """Decode untrusted photo bytes to a ``size`` x ``size`` RGB array.

    See the module docstring for the steps. Memory per call is bounded by ``max_pixels`` (the
    full-resolution image, before any draft reduction) plus the small output.

    Args:
        data: The encoded photo, or None when there are no bytes.
        size: Output side in pixels (the models' input size).
        max_pixels: Largest declared width x height accepted; larger is ``too_many_pixels``.
        draft: Use JPEG DCT-domain downscaling (on by default; off only for benchmarks).
        formats: Pillow format names accepted; anything else is ``not_image``.

    Returns:
        The decoded photo, or a failure with an :class:`ErrorCode` and a detail line.

    Raises:
        ValueError: ``size`` or ``max_pixels`` is not a positive int (a caller bug, not bad data).
    """
    _check_args(size, max_pixels)
    image, meta = _open(data, (size, size) if draft else None, max_pixels, formats)
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
    max_bytes: int | None = None,
    remote: RemoteOptions | None = None,
    draft: bool = True,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> DecodedPhoto:
    """Decode a ``listing_images`` row: its inline ``content`` if present, else the bytes at ``uri``.

    Args:
        content: Inline bytes (wins when not None).
        uri: Where to read the bytes otherwise (see :func:`read_uri`).
        size: Output side in pixels.
        max_pixels: See :func:`decode_photo`.
        max_bytes: Largest file read from a uri.
        remote: Object-store options (see :func:`read_uri`).
        draft: See :func:`decode_photo`.
        formats: See :func:`decode_photo`.

    Returns:
        The decoded photo; an unreadable uri is ``unreadable_uri``, no content and no uri is ``empty``.
    """
    if content is None and uri:
        try:
            content = read_uri(uri, max_bytes=max_bytes, remote=remote)
        except UnreadableUriError as e:
            _check_args(size, max_pixels)
            return _failed(DecodedPhoto(array=None), ErrorCode.UNREADABLE_URI, str(e))[1]
    return decode_photo(content, size, max_pixels, draft=draft, formats=formats)


def decode_batch(
    items: Sequence[bytes | None],
    size: int,
    max_pixels: int,
    *,
    uris: Sequence[str | None] | None = None,
    max_bytes: int | None = None,
    remote: RemoteOptions | None = None,
    draft: bool = True,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> tuple[np.ndarray, list[DecodedPhoto]]:
    """Decode a batch; the good photos are stacked for the models.

    Args:
        items: Inline bytes per photo (None where the bytes are at a uri or missing).
        size: Output side in pixels.
        max_pixels: See :func:`decode_photo`.
        uris: Optional uri per photo, read where the item is None.
        max_bytes: Largest file read from a uri.
        remote: Object-store options (see :func:`read_uri`).
        draft: See :func:`decode_photo`.
        formats: See :func:`decode_photo`.

    Returns:
        ``(batch, photos)``: uint8 ``[n_ok, size, size, 3]`` of the good photos in input order, and one
        :class:`DecodedPhoto` per input whose ``array`` (when ok) is a view into ``batch``.

    Raises:
        ValueError: ``uris`` is given with a different length than ``items``, or bad size/max_pixels.
    """
    _check_args(size, max_pixels)
    if uris is not None and len(uris) != len(items):
        raise ValueError(f"decode_batch: {len(items)} items but {len(uris)} uris")
    photos = [
        decode_source(
            item,
            uris[i] if uris is not None else None,
            size,
            max_pixels,
            max_bytes=max_bytes,
            remote=remote,
            draft=draft,
            formats=formats,
        )
        for i, item in enumerate(items)
    ]
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
    quality: int = 80,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> bytes | None:
    """A small upright JPEG of a photo, aspect ratio kept (for reports); None if it cannot be decoded."""
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    image, _meta = _open(data, (max_side, max_side), max_pixels, formats)
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
