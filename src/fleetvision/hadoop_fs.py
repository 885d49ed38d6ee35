"""Files through the driver JVM's Hadoop ``FileSystem``: the one place that reaches into ``spark._jvm`` for them.

Hadoop's ``FileSystem`` reads and writes every store the cluster is configured for (local,
``s3a://``, ``abfss://``, ``gs://``, ``hdfs://``) with the cluster's credentials, so the warehouse
catalog, a run's staging folders and a report page on an object store all go through it. Locations
are strings; a relative one resolves as Hadoop resolves it (the driver's working directory).
Operating limit: every call is a py4j round trip to the driver JVM; these are for a handful of
paths, never per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession


@dataclass(frozen=True)
class FolderEntry:
    """A child folder: its last path component and its full location (as Hadoop writes it)."""

    name: str
    location: str


def _jvm(spark: SparkSession) -> Any:
    return spark.sparkContext._jvm  # type: ignore[attr-defined]


def _path(spark: SparkSession, location: str, *names: str) -> Any:
    make = _jvm(spark).org.apache.hadoop.fs.Path
    path = make(location)
    for name in names:
        path = make(path, name)
    return path


def _filesystem(spark: SparkSession, path: Any) -> Any:
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]


def join(spark: SparkSession, location: str, *names: str) -> str:
    """``location`` with ``names`` appended, one path component each (Hadoop's ``Path(parent, child)``)."""
    return str(_path(spark, location, *names).toString())


def exists(spark: SparkSession, location: str) -> bool:
    """Whether a file or folder is at ``location``."""
    path = _path(spark, location)
    return bool(_filesystem(spark, path).exists(path))


def list_folders(spark: SparkSession, location: str) -> list[FolderEntry]:
    """The folders directly under ``location`` (none when it does not exist)."""
    path = _path(spark, location)
    fs = _filesystem(spark, path)
    if not fs.exists(path):
        return []
    return [
        FolderEntry(str(s.getPath().getName()), str(s.getPath().toString()))
        for s in fs.listStatus(path)
        if s.isDirectory()
    ]


def delete(spark: SparkSession, location: str, *, recursive: bool = True) -> bool:
    """Delete ``location`` (a folder with everything under it, by default).

    Returns:
        True if something was deleted; False if nothing was there, or the session has no JVM (stopped).
    """
    if _jvm(spark) is None:
        return False
    path = _path(spark, location)
    return bool(_filesystem(spark, path).delete(path, recursive))


def write_text(spark: SparkSession, location: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``location``, replacing a file that is there."""
    path = _path(spark, location)
    stream = _filesystem(spark, path).create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
