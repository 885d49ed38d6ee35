"""The pandas-UDF adapter between Spark and the pure scoring core.

Two iterator-of-batches pandas UDFs, both thin:

* :func:`make_hash_udf`: reads each photo's bytes (inline ``content``, else ``uri``) on the executor and
  returns its sha256, so the job can dedupe by content and skip photos the prediction cache knows.
* :func:`make_scoring_udf`: decodes each Arrow batch once (:func:`fleetvision.decode.decode_batch`), runs
  every model on that same decoded batch (:func:`run_models`), checks the outputs before they reach
  Arrow (:func:`fleetvision.scoring.tags.validate_outputs`) and shapes one prediction row per input
  (:func:`fleetvision.scoring.tags.prediction_frame`). A photo that cannot be read or decoded gets a row
  with its error code; the UDF never drops or duplicates a row.

Models are resolved to concrete versions once on the driver (a :class:`ModelSet`) and loaded once per
Python worker through a *model loader* (default :func:`fleetvision.models.serving.read_models`), then
kept in the process's one bounded model cache (:data:`fleetvision.models.serving.MODEL_CACHE`, keyed by
the model set and the loader). The loader is injectable so tests and benchmarks can run stand-in models
without MLflow. UDF closures capture only small values: the model
set, a :class:`UdfSettings`, the taxonomy, the scoring rules and the loader.

Operating limits: memory per Python worker is one Arrow batch of encoded photos
(``spark.sql.execution.arrow.maxRecordsPerBatch`` rows) plus its decoded ``[n, S, S, 3]`` uint8 array plus
the ``decode_threads`` photos being decoded at once plus the models; ``model_batch_size`` bounds the rows
given to a model at once. The model cache lives as long as the Python worker, so
``spark.python.worker.reuse`` must stay on (FleetVision's session sets it); it holds at most
:data:`fleetvision.models.serving.MAX_CACHED_MODEL_SETS` model sets.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyspark.sql import types as T
from pyspark.sql.functions import pandas_udf

from fleetvision import decode, photo_uris
from fleetvision._typing import ModelLoader, ModelSetLike, PredictFn
from fleetvision.models import serving
from fleetvision.scoring.faults import FAIL_AT_ENV
from fleetvision.tables import PREDICTION_CACHE

if TYPE_CHECKING:
    from pyspark.sql.column import Column

    from fleetvision.config import Config
    from fleetvision.scoring import ScoringRules
    from fleetvision.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

_NON_PREDICTION = {"content_hash", "model_set_id", "model_versions", "created_at", "run_id"}
# Arrow UDF results are checked against a fully nullable schema; non-null is enforced by the tables.
PREDICTION_SCHEMA = T.StructType(
    [T.StructField(f.name, f.dataType, True) for f in PREDICTION_CACHE.schema.fields if f.name not in _NON_PREDICTION]
)
"""The scoring UDF's return type: the prediction fields shared by ``image_tags`` and ``prediction_cache``."""

HASH_SCHEMA = T.StructType(
    [
        T.StructField("content_hash", T.StringType()),
        T.StructField("byte_size", T.LongType()),
        T.StructField("read_error_code", T.StringType()),
        T.StructField("read_error_detail", T.StringType()),
        T.StructField("photo_bytes", T.BinaryType()),
    ]
)
"""The hash UDF's return type. ``content_hash`` is null exactly when the bytes could not be had.

``photo_bytes`` are the bytes that were hashed, staged with the hash so that inference decodes exactly
those bytes: each photo is read from its uri once, and a file replaced between the two stages cannot
put another photo's predictions under this hash."""

FAIL_MARKER_ENV = "FLEETVISION_FAIL_MARKERS"
"""Optional folder where an injected UDF failure leaves one marker file per failed task attempt."""


@dataclass(frozen=True)
class UdfSettings:
    """The few values the scoring UDF needs, copied out of the config on the driver.

    Attributes:
        image_size: Side of the models' square uint8 input.
        max_pixels: Largest declared width x height decoded (decompression-bomb guard).
        max_bytes: Largest file read from a uri.
        model_batch_size: Rows given to a model per call (an Arrow batch is split into such chunks).
        fail_first_attempt: Raise in the first attempt of every task (recovery tests only).
        fail_marker_dir: Where an injected failure leaves a marker file (recovery tests only).
        remote_options: Object-store options for photo uris (``paths.remote_options``).
        photo_roots: Where photo uris may point (``paths.photo_roots``); the default allows no uri.
        max_declared_pixels: Largest declared width x height of a JPEG, decoded at reduced scale
            (``scoring.max_declared_pixels``); None: ``max_pixels``.
        decode_threads: Threads decoding one batch (``scoring.decode_threads``; see
            :func:`fleetvision.decode.decode_batch`).
        model_threads: TensorFlow threads of the worker's models (``scoring.model_threads``); 0: the
            task's CPUs (see :func:`limit_model_threads`).
    """

    image_size: int
    max_pixels: int
    max_bytes: int
    model_batch_size: int
    fail_first_attempt: bool = False
    fail_marker_dir: str | None = None
    remote_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    photo_roots: photo_uris.PhotoRoots = field(default_factory=photo_uris.PhotoRoots)
    max_declared_pixels: int | None = None
    decode_threads: int = 1
    model_threads: int = 0

    def __post_init__(self) -> None:
        for name in ("image_size", "max_pixels", "max_bytes", "model_batch_size", "decode_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"UdfSettings.{name} must be a positive int, got {value!r}")
        if not isinstance(self.model_threads, int) or self.model_threads < 0:
            raise ValueError(f"UdfSettings.model_threads must be an int >= 0, got {self.model_threads!r}")
        if self.max_declared_pixels is not None and (
            not isinstance(self.max_declared_pixels, int) or self.max_declared_pixels < self.max_pixels
        ):
            raise ValueError(
                f"UdfSettings.max_declared_pixels must be an int >= max_pixels, got {self.max_declared_pixels!r}"
            )
        if not isinstance(self.photo_roots, photo_uris.PhotoRoots):
            raise TypeError(f"UdfSettings.photo_roots must be a PhotoRoots, got {type(self.photo_roots).__name__}")

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] | None = None) -> UdfSettings:
        """The settings for a run; the failure injection comes from ``FLEETVISION_FAIL_AT``."""
        env = os.environ if environ is None else environ
        return cls(
            image_size=config.models.input_size,
            max_pixels=config.scoring.max_image_pixels,
            max_bytes=config.scoring.max_image_bytes,
            model_batch_size=config.scoring.batch_size,
            fail_first_attempt=env.get(FAIL_AT_ENV, "") == "udf_first_attempt",
            fail_marker_dir=env.get(FAIL_MARKER_ENV) or None,
            remote_options={k: dict(v) for k, v in config.paths.remote_options.items()},
            photo_roots=photo_uris.PhotoRoots(config.paths.photo_root_locations()),
            max_declared_pixels=config.scoring.max_declared_pixels,
            decode_threads=config.scoring.decode_threads,
            model_threads=config.scoring.model_threads,
        )


# ------------------------------------------------------------------------------------ model cache
def worker_models(
    model_set: ModelSetLike, loader: ModelLoader | None = None, model_threads: int = 0
) -> Mapping[str, PredictFn]:
    """The models of a model set in this Python worker, loaded on first use and cached.

    The one model cache of the process (:func:`fleetvision.models.serving.worker_models`): keyed by
    the model set and the loader, bounded. Before the first load the task's GPU is pinned and the
    models' threads are limited (:func:`limit_model_threads`).

    Args:
        model_set: The model versions resolved on the driver.
        loader: Loads the model set; default :func:`fleetvision.models.serving.read_models`.
        model_threads: ``scoring.model_threads`` (0: the task's CPUs).

    Raises:
        ValueError: The loader returned no models or something that is not callable.
    """

    def prepare() -> None:
        _pin_gpu()
        limit_model_threads(model_threads)

    return serving.worker_models(model_set, loader, prepare=prepare)


def clear_worker_models() -> None:
    """Forget the cached models of this process (tests)."""
    serving.clear_model_cache()


def _pin_gpu() -> None:
    """Make only the GPU Spark assigned to this task visible, before a framework initialises CUDA."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None:
        return
    gpu = ctx.resources().get("gpu")
    if gpu is not None and gpu.addresses and "CUDA_VISIBLE_DEVICES" not in os.environ:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpu.addresses)
        logger.info("worker %d pinned to GPU %s", os.getpid(), os.environ["CUDA_VISIBLE_DEVICES"])


TF_THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def limit_model_threads(threads: int) -> int | None:
    """Give TensorFlow in this worker ``threads`` intra-op and inter-op threads (0: the Spark task's CPUs).

    By default TensorFlow sizes both pools to every core of the machine, in each Python worker: an
    executor running one task per core then runs cores x cores compute threads on its cores (at 2 cores
    this made no measurable difference: docs/runbook.md, *The job against its peers*; larger executors
    are not measured). Called before the worker's first model load. Nothing is
    changed where ``TF_NUM_INTRAOP_THREADS`` or ``TF_NUM_INTEROP_THREADS`` is already set (an operator's
    ``spark.executorEnv`` wins), outside a Spark task when ``threads`` is 0, or for a Keras backend other
    than TensorFlow; TensorFlow that has already run in this worker keeps its pools (logged).

    Returns:
        The thread count set, or None when nothing was changed.
    """
    if threads < 0:
        raise ValueError(f"model threads must be >= 0, got {threads}")
    if any(name in os.environ for name in TF_THREAD_ENV):
        return None
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return None
    if threads == 0:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx is None:
            return None
        threads = max(1, int(ctx.cpus()))
    for name in TF_THREAD_ENV:  # read by TensorFlow when its runtime starts (at its first op, not at import)
        os.environ[name] = str(threads)
    tf = sys.modules.get("tensorflow")
    if tf is not None:  # imported already: its runtime may have started
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError as exc:  # it has: its pools stay as they are
            for name in TF_THREAD_ENV:  # and the environment must not claim otherwise (nor look like an operator's)
                os.environ.pop(name, None)
            logger.warning("worker %d: TensorFlow already running, model threads not changed (%s)", os.getpid(), exc)
            return None
    logger.info("worker %d: TensorFlow limited to %d thread(s) per pool", os.getpid(), threads)
    return threads


# -------------------------------------------------------------------------------------- pure parts
def run_models(models: Mapping[str, PredictFn], batch: np.ndarray, model_batch_size: int) -> dict[str, np.ndarray]:
    """Run every model on the same decoded batch, ``model_batch_size`` rows at a time.

    Args:
        models: task -> predict function.
        batch: uint8 ``[N, S, S, 3]``.
        model_batch_size: Most rows per model call.

    Returns:
        Every model's outputs, merged into one mapping of ``[N, ...]`` arrays.

    Raises:
        ValueError: Two models return an output of the same name, or a model returns something other
            than a mapping of arrays with one row per input.
    """
    n = int(batch.shape[0])
    merged: dict[str, list[np.ndarray]] = {}
    owner: dict[str, str] = {}
    for start in range(0, n, model_batch_size):
        chunk = batch[start : start + model_batch_size]
        for task, predict in models.items():
            out = predict(chunk)
            if not isinstance(out, Mapping):
                raise ValueError(f"model {task!r} returned {type(out).__name__}, expected a mapping of arrays")
            for name, value in out.items():
                if owner.setdefault(name, task) != task:
                    raise ValueError(f"models {owner[name]!r} and {task!r} both return an output named {name!r}")
                arr = np.asarray(value)
                if arr.ndim == 0 or arr.shape[0] != len(chunk):
                    raise ValueError(
                        f"model {task!r} output {name!r} has shape {arr.shape}, expected {len(chunk)} rows"
                    )
                merged.setdefault(name, []).append(arr)
    return {name: np.concatenate(parts, axis=0) for name, parts in merged.items()}


def hash_frame(
    uri: pd.Series,
    content: pd.Series,
    max_bytes: int,
    remote: Mapping[str, Mapping[str, Any]] | None = None,
    roots: photo_uris.PhotoRoots | None = None,
) -> pd.DataFrame:
    """Read each photo's bytes and hash them (columns of :data:`HASH_SCHEMA`, one row per input, the bytes with it).

    Inline content wins over the uri, which is read only inside ``roots`` (None: no uri is read). No
    bytes at all is ``empty``; a uri outside the roots is ``forbidden_uri`` (never opened); a uri that
    cannot be read is ``unreadable_uri``; in all three cases ``content_hash`` is null.
    """
    if len(uri) != len(content):
        raise ValueError(f"hash_frame: {len(uri)} uris but {len(content)} contents")
    rows: list[tuple[str | None, int | None, str | None, str | None, bytes | None]] = []
    for u, c in zip(uri.tolist(), content.tolist()):
        data: bytes | None = bytes(c) if c is not None else None
        if data is None and u:
            try:
                data = photo_uris.read_uri(u, max_bytes=max_bytes, remote=remote, roots=roots)
            except photo_uris.UnreadableUriError as e:
                rows.append((None, None, decode.uri_error_code(e).value, str(e)[:300], None))
                continue
        if data is None:
            rows.append((None, None, decode.ErrorCode.EMPTY.value, "no bytes: content and uri are null", None))
            continue
        rows.append((decode.content_hash(data), len(data), None, None, data))
    return pd.DataFrame(rows, columns=[f.name for f in HASH_SCHEMA.fields])


def score_frame(
    uri: pd.Series,
    content: pd.Series,
    models: Mapping[str, PredictFn],
    settings: UdfSettings,
    taxonomy: Taxonomy,
    rules: ScoringRules,
) -> pd.DataFrame:
    """Decode a batch once, run every model on it and shape one prediction row per input photo.

    Returns:
        Columns of :data:`PREDICTION_SCHEMA`, in order, one row per input, failures included.

    Raises:
        ValueError: A model's outputs do not have the declared names, shapes or ranges.
    """
    from fleetvision.scoring.tags import prediction_frame, validate_outputs

    if len(uri) != len(content):
        raise ValueError(f"score_frame: {len(uri)} uris but {len(content)} contents")
    items = [bytes(c) if c is not None else None for c in content.tolist()]
    batch, photos = decode.decode_batch(
        items,
        settings.image_size,
        settings.max_pixels,
        uris=uri.tolist(),
        max_declared_pixels=settings.max_declared_pixels,
        max_bytes=settings.max_bytes,
        remote=settings.remote_options,
        roots=settings.photo_roots,
        threads=settings.decode_threads,
    )
    if len(batch):
        outputs = validate_outputs(run_models(models, batch, settings.model_batch_size), len(batch), taxonomy)
    else:
        outputs = {}
    frame = prediction_frame(photos, outputs, taxonomy, rules, batch=batch)
    if len(frame) != len(photos):
        raise ValueError(f"prediction_frame returned {len(frame)} rows for {len(photos)} photos")
    return frame[[f.name for f in PREDICTION_SCHEMA.fields]]


def _inject_first_attempt_failure(marker_dir: str | None) -> None:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None or ctx.attemptNumber() != 0:
        return
    if marker_dir:
        Path(marker_dir).mkdir(parents=True, exist_ok=True)
        name = f"attempt0-stage{ctx.stageId()}-part{ctx.partitionId()}-{uuid.uuid4().hex[:8]}"
        (Path(marker_dir) / name).touch()
    raise RuntimeError(f"{FAIL_AT_ENV}=udf_first_attempt: injected failure in partition {ctx.partitionId()}")


# ------------------------------------------------------------------------------------ pandas UDFs
def make_hash_udf(
    max_bytes: int, remote: Mapping[str, Mapping[str, Any]] | None = None, roots: photo_uris.PhotoRoots | None = None
) -> Callable[..., Column]:
    """A pandas UDF ``(uri, content) -> struct<HASH_SCHEMA>`` that hashes each photo's bytes on the executor.

    Uris are read only inside ``roots`` (see :func:`hash_frame`).
    """

    def hash_photos(batches: Iterator[tuple[pd.Series, pd.Series]]) -> Iterator[pd.DataFrame]:
        for uri, content in batches:
            yield hash_frame(uri, content, max_bytes, remote, roots)

    return pandas_udf(hash_photos, returnType=HASH_SCHEMA)  # type: ignore[call-overload]


def make_scoring_udf(
    model_set: ModelSetLike,
    settings: UdfSettings,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    loader: ModelLoader | None = None,
) -> Callable[..., Column]:
    """A pandas UDF ``(uri, content) -> struct<PREDICTION_SCHEMA>``: decode once, every model, one row each.

    Args:
        model_set: The model versions resolved on the driver (shipped, never re-resolved on workers).
        settings: Sizes and limits.
        taxonomy: The shot taxonomy (class names of the angle output).
        rules: Thresholds for flags (banner, plate) and quality.
        loader: Loads the model set in a worker; default :func:`fleetvision.models.serving.read_models`.
    """

    return model_udf(score_frame, PREDICTION_SCHEMA, model_set, settings, taxonomy, rules, loader)


def model_udf(
    frame_fn: Callable[..., pd.DataFrame],
    return_type: T.StructType,
    model_set: ModelSetLike,
    settings: UdfSettings,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    loader: ModelLoader | None = None,
) -> Callable[..., Column]:
    """An iterator pandas UDF ``(uri, content) -> struct<return_type>`` that loads the worker's models once
    and yields ``frame_fn(uri, content, models, settings, taxonomy, rules)`` per Arrow batch (with the
    injected first-attempt failure of the recovery tests)."""

    def photos_through_models(batches: Iterator[tuple[pd.Series, pd.Series]]) -> Iterator[pd.DataFrame]:
        if settings.fail_first_attempt:
            _inject_first_attempt_failure(settings.fail_marker_dir)
        models = worker_models(model_set, loader, settings.model_threads)
        for uri, content in batches:
            yield frame_fn(uri, content, models, settings, taxonomy, rules)

    return pandas_udf(photos_through_models, returnType=return_type)  # type: ignore[call-overload]
