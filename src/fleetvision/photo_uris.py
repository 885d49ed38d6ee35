"""Where photo uris may point and how their bytes are read: the photo roots, local files, object stores.

Every photo read by uri goes through :func:`read_uri`: the uri is checked against the configured roots
(:class:`PhotoRoots`, ``paths.photo_roots``) before anything is opened, so a uri outside them, a
relative path or a scheme that is not read is refused (:class:`ForbiddenUriError`) and never touched; a
uri inside them that cannot be read (missing, denied, too big, not a regular file) is an
:class:`UnreadableUriError`. Local files are opened at their resolved real path without following a
symlink swapped in since; ``s3``/``gs``/``hdfs`` uris go through pyarrow's filesystems (one per store and
options per process). :func:`photo_bytes` is the forgiving variant for side readers (reports, label
suggestions) that show a photo when they can.

The decoder (:mod:`fleetvision.decode`) turns the bytes into model input;
:func:`~fleetvision.decode.uri_error_code` maps these two errors onto the ``forbidden_uri`` and
``unreadable_uri`` error codes (for ``decode_source`` and the scoring job's hashing pass).
"""

from __future__ import annotations

import functools
import logging
import os
import posixpath
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

logger = logging.getLogger(__name__)


class UnreadableUriError(OSError):
    """A photo's uri could not be read; the message names the uri and the reason."""

    _verb = "cannot read"

    def __init__(self, uri: str | None, reason: str) -> None:
        super().__init__(f"{self._verb} {uri!r}: {reason}")
        self.uri = uri
        self.reason = reason


class ForbiddenUriError(UnreadableUriError):
    """A photo's uri is outside the photo roots, relative, or of a scheme not allowed; it was not opened.

    A subclass of :class:`UnreadableUriError`, so a caller that only asks "could I read it" still
    catches it; :func:`decode_source` tells the two apart (``forbidden_uri`` vs ``unreadable_uri``).
    """

    _verb = "refused"


# uri scheme -> the pyarrow filesystem that reads it (Hadoop's s3a/s3n spellings are S3)
REMOTE_SCHEMES: dict[str, str] = {"s3": "s3", "s3a": "s3", "s3n": "s3", "gs": "gs", "gcs": "gs", "hdfs": "hdfs"}

RemoteOptions = Mapping[str, Mapping[str, Any]]


LOCAL_SCHEMES: tuple[str, ...] = ("", "file")
"""Local photo uris: a plain absolute path, ``file:///path`` or Hadoop's ``file:/path``."""


@dataclass(frozen=True)
class _Root:
    kind: str  # "local", or a REMOTE_SCHEMES value ("s3", "gs", "hdfs")
    netloc: str  # bucket or namenode ("" for local)
    path: str  # absolute, normalised, no trailing slash except "/" for a whole bucket


def _split_uri(uri: str) -> tuple[str, str, str]:
    """``(kind, netloc, path)`` of a uri; ``kind`` is ``local`` or a filesystem kind.

    Raises:
        ForbiddenUriError: The scheme is not allowed, a file uri names another host, an object-store uri
            has no bucket or host, or the path is relative.
    """
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in REMOTE_SCHEMES:
        if not parsed.netloc:
            raise ForbiddenUriError(uri, f"{scheme} uri without a bucket or host")
        path = unquote(parsed.path) or "/"
        return REMOTE_SCHEMES[scheme], parsed.netloc, path
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ForbiddenUriError(uri, f"file uri with a remote host {parsed.netloc!r}")
        path = unquote(parsed.path)
    elif scheme == "":
        path = uri
    else:
        known = ", ".join(["file", *REMOTE_SCHEMES])
        raise ForbiddenUriError(uri, f"unsupported scheme {scheme!r} (allowed: {known})")
    if not os.path.isabs(path):
        raise ForbiddenUriError(uri, "relative path: photo uris must be absolute")
    return "local", "", path


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@functools.lru_cache(maxsize=64)
def _parse_roots(locations: tuple[str, ...]) -> tuple[_Root, ...]:
    roots = []
    for loc in locations:
        if not isinstance(loc, str) or not loc.strip():
            raise ValueError(f"photo root must be a non-empty string, got {loc!r}")
        try:
            kind, netloc, path = _split_uri(loc)
        except ForbiddenUriError as e:
            raise ValueError(f"photo root {loc!r} is not allowed: {e.reason}") from None
        if any(part in (".", "..") for part in path.split("/")):
            raise ValueError(f"photo root {loc!r} has '.' or '..' segments")
        norm = posixpath.normpath(path) if kind != "local" else os.path.normpath(path)
        if kind == "local" and norm == os.path.sep:
            raise ValueError(f"photo root {loc!r} is the filesystem root: it would allow every file")
        roots.append(_Root(kind, netloc, norm))
    return tuple(roots)


@dataclass(frozen=True)
class PhotoRoots:
    """Where photo uris may point: local directories and object-store prefixes (``paths.photo_roots``).

    A local uri is allowed when its real path (symlinks and ``..`` resolved, on the machine that reads
    it) lies inside the real path of a local root; an object-store uri when it has the root's bucket or
    host, no ``.`` or ``..`` segment, and a key under the root's prefix (``s3``, ``s3a`` and ``s3n`` are
    the same store). Relative paths, other schemes and ``file://`` uris naming another host are
    never allowed. No roots allow nothing.

    Attributes:
        locations: Absolute local directories (or ``file:`` uris) and ``s3://bucket/prefix``,
            ``gs://bucket/prefix``, ``hdfs://host:port/path`` prefixes.

    Raises:
        ValueError: A location is empty, relative, of a scheme that is not read, the filesystem root,
            or has ``.``/``..`` segments.
    """

    locations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "locations", tuple(self.locations))
        _parse_roots(self.locations)

    def check(self, uri: str) -> tuple[str, str, str]:
        """Where to read ``uri``: ``(kind, netloc, path)``, the path real (resolved) for local files.

        Raises:
            ForbiddenUriError: The uri is not inside a root (see the class docstring).
        """
        kind, netloc, path = _split_uri(uri)
        roots = [r for r in _parse_roots(self.locations) if r.kind == kind and r.netloc == netloc]
        if not roots:
            raise ForbiddenUriError(uri, "outside the photo roots (paths.photo_roots)")
        if kind != "local":
            if any(part in (".", "..") for part in path.split("/")):
                raise ForbiddenUriError(uri, "'.' or '..' segment in an object-store path")
            if not any(_under(path, r.path) for r in roots):
                raise ForbiddenUriError(uri, "outside the photo roots (paths.photo_roots)")
            return kind, netloc, path
        # Lexically first, so a path plainly outside is refused without touching the filesystem; then
        # the real path, so neither '..' nor a symlink inside a root can lead out of it.
        if not any(_under(os.path.normpath(path), r.path) for r in roots):
            raise ForbiddenUriError(uri, "outside the photo roots (paths.photo_roots)")
        real = os.path.realpath(path)
        if not any(_under(real, os.path.realpath(r.path)) for r in roots):
            raise ForbiddenUriError(uri, "resolves outside the photo roots (a symlink or '..')")
        return kind, netloc, real


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


def photo_bytes(
    content: bytes | bytearray | None,
    uri: str | None,
    *,
    max_bytes: int | None,
    remote: RemoteOptions | None = None,
    roots: PhotoRoots | None = None,
) -> bytes | None:
    """A photo's inline bytes, else the bytes at ``uri`` read inside ``roots`` (:func:`read_uri`); None when
    there are none or the uri cannot be read (forbidden, missing, too large: logged at debug level).

    For the side readers (the run's report and contact sheet, label suggestions) that show a photo when
    they can; the scoring job itself records why a photo could not be read.
    """
    if content is not None:
        return bytes(content)
    if not uri:
        return None
    try:
        return read_uri(uri, max_bytes=max_bytes, remote=remote, roots=roots)
    except UnreadableUriError as e:
        logger.debug("photo bytes: %s", e)
        return None


def read_uri(
    uri: str | None,
    max_bytes: int | None = None,
    remote: RemoteOptions | None = None,
    *,
    roots: PhotoRoots | None = None,
) -> bytes:
    """Read a photo's bytes from a local path, a ``file:`` URI or an object store, inside ``roots`` only.

    Local: ``file:///a/b.jpg``, ``file:/a/b.jpg`` (Hadoop's spelling) and ``/a/b.jpg``; always absolute.
    Remote, through pyarrow's filesystems (:data:`REMOTE_SCHEMES`): ``s3://``, ``s3a://``, ``s3n://``
    (``bucket/key``), ``gs://``, ``gcs://`` and ``hdfs://host:port/path``. Credentials come from each
    store's usual chain on the executor (``AWS_*`` variables or the instance role for S3, Application
    Default Credentials for GCS, Kerberos/``HADOOP_*`` for HDFS); endpoints, regions and the like
    from ``remote`` (``paths.remote_options``).

    The uri is checked against ``roots`` before anything is opened (:meth:`PhotoRoots.check`); a local
    file is then opened at its resolved real path, without following a symlink swapped in since.

    Args:
        uri: The location.
        max_bytes: Refuse files larger than this (None: no limit). Bounds executor memory per photo.
        remote: Per filesystem kind (``s3``, ``gs``, ``hdfs``), keyword arguments for pyarrow's
            ``S3FileSystem`` / ``GcsFileSystem`` / ``HadoopFileSystem``, e.g.
            ``{"s3": {"endpoint_override": "http://minio:9000", "region": "eu-central-1"}}``.
        roots: Where photos may be read from; None (or no locations) allows nothing.

    Returns:
        The file's bytes.

    Raises:
        ForbiddenUriError: The uri is outside ``roots``, relative, or of a scheme that is not read.
        UnreadableUriError: The uri is empty, is not a regular file or object, is larger than
            ``max_bytes``, or cannot be opened (missing, refused, denied).
    """
    if not uri:
        raise UnreadableUriError(uri, "no uri")
    kind, netloc, path = (roots if roots is not None else PhotoRoots()).check(uri)
    if kind != "local":
        return _read_remote(uri, kind, netloc, path, max_bytes, remote or {})
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: a FIFO planted in a root must not hang the task
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnreadableUriError(uri, "not a regular file")
            if max_bytes is not None and st.st_size > max_bytes:
                raise UnreadableUriError(uri, f"file is {st.st_size} bytes, over the {max_bytes}-byte limit")
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        finally:
            os.close(fd)
    except UnreadableUriError:
        raise
    except OSError as e:
        raise UnreadableUriError(uri, f"{type(e).__name__}: {e.strerror or e}") from e
    if max_bytes is not None and len(data) > max_bytes:
        # The file grew between stat and read.
        raise UnreadableUriError(uri, f"file is over the {max_bytes}-byte limit")
    return data
