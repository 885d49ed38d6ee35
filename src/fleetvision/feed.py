"""Spark -> tf.data: the labelled table handed to TensorFlow through petastorm.

This is the one module that imports petastorm (pinned at 0.13.1, its last release, which holds
pyarrow at 14); replacing it means replacing this file only.

Spark reads ``training_images`` (checked against its contract), selects the rows of a dataset and
split, and shapes them into flat columns (the plate box as four floats, unknown labels as -1). Angle
labels are stored in market names (``side_driver``) and leave here as the angle model's flank classes
(``side_right``): :func:`flank_angle_index`, with the driver side the rows were labelled for.
:func:`tf_examples` materialises that DataFrame once as Parquet under
``<paths.artifacts>/petastorm`` (``make_spark_converter``; the cache directory is set through
``petastorm.spark.converter.parentCacheDirUrl``) and yields a one-pass ``tf.data.Dataset`` of dicts
with :data:`fleetvision.models.pipeline.EXAMPLE_KEYS`. Decoding and augmentation then happen in the
tf.data pipeline (:mod:`fleetvision.models.pipeline`), not here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from fleetvision.config import Config
from fleetvision.models.eval_metrics import EvalLabels
from fleetvision.tables import TRAINING_IMAGES, qualified, validate_input_table
from fleetvision.taxonomy import Taxonomy, load_taxonomy

logger = logging.getLogger(__name__)

PARENT_CACHE_DIR_CONF = "petastorm.spark.converter.parentCacheDirUrl"

# petastorm 0.13.1 drives pyarrow's legacy dataset API and distutils: dozens of Future/Deprecation
# warnings per read, all harmless with the pinned pyarrow 14. Silence those raised from petastorm only.
for _category in (FutureWarning, DeprecationWarning, UnicodeWarning):
    warnings.filterwarnings("ignore", category=_category, module=r"petastorm(\.|$)")
TASK_LABEL_COLUMN: dict[str, str] = {
    "angle": "angle_index",
    "banner": "has_banner",
    "plate": "plate_present",
    "body": "body_index",
}
FEED_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "content",
    "angle_index",
    "angle_mask",
    "has_banner",
    "plate_present",
    "box_x0",
    "box_y0",
    "box_x1",
    "box_y1",
    "box_known",
    "body_index",
    "row_weight",
)


def flank_angle_index(angle_index: Column, driver_side: Column, taxonomy: Taxonomy) -> Column:
    """A market-class index as the angle model's flank-class index (``taxonomy.flank_permutation``).

    Under right-hand drive the two are equal; a left-hand-drive row's sided class becomes its mirror
    partner's index (its driver side is the car's left flank). -1 (unknown) stays -1.

    Args:
        angle_index: Market-class index, int (-1 unknown).
        driver_side: ``left`` | ``right``: the market the label was given in.
        taxonomy: The shot classes.
    """
    lhd = F.array(*[F.lit(i) for i in taxonomy.flank_permutation("left")])
    sided = (angle_index >= 0) & (angle_index < taxonomy.num_classes)
    return F.when((driver_side == F.lit("left")) & sided, F.element_at(lhd, angle_index + 1)).otherwise(angle_index)


class EmptyDatasetError(ValueError):
    """No rows of the requested dataset and split; the message names the table, prefix and splits."""


def has_label(task: str) -> Column:
    """True on a feed row (:data:`FEED_COLUMNS`) with a known label for ``task``.

    A coarse angle label (``angle_index`` -1, a non-zero ``angle_mask``) counts: it trains the angle head.

    Raises:
        ValueError: Unknown task.
    """
    if task not in TASK_LABEL_COLUMN:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASK_LABEL_COLUMN)}")
    return (F.col("angle_mask") != 0) if task == "angle" else F.col(TASK_LABEL_COLUMN[task]) >= 0


def labelled_counts(frame: DataFrame, tasks: Sequence[str]) -> dict[str, int]:
    """Rows of a :func:`training_frame` with a known label, per task (one Spark job)."""
    if not tasks:
        return {}
    row = frame.agg(*(F.sum(has_label(t).cast("long")).alias(t) for t in tasks)).first()
    return {t: int(row[t] or 0) if row is not None else 0 for t in tasks}


def training_frame(
    spark: SparkSession,
    config: Config,
    *,
    splits: Sequence[str],
    dataset_prefix: str,
    max_rows: int | None = None,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    extra_datasets: Mapping[str, float] | None = None,
    extra_max_rows: int | None = None,
) -> DataFrame:
    """The rows of ``training_images`` for some splits of a dataset, as flat feed columns.

    Args:
        spark: The session.
        config: The job configuration (database).
        splits: Split names to keep (``train``, ``val``, ``eval``).
        dataset_prefix: Keep rows whose ``dataset`` starts with this (``synthetic`` matches
            ``synthetic-train-s7`` and ``synthetic-eval-s1001``; ``folder:/photos`` an import).
        max_rows: Keep a random sample of at most this many main rows (seeded); None keeps all.
        seed: Seed of that sample.
        tasks: Keep only rows with a known label for at least one of these tasks (a body-only run
            reads exterior shots only); None keeps every row.
        extra_datasets: More rows: dataset-name prefix -> loss weight (> 0) of its rows
            (``models.extra_datasets``: synthetic rows beside imported real labels). A row of
            ``dataset_prefix`` is a main row (weight 1) even if an extra prefix matches it too; a row
            matching several extra prefixes takes the longest one's weight.
        extra_max_rows: Keep a random sample (seeded) of at most this many extra rows, all prefixes
            together (``models.extra_max_rows``); None keeps all. ``max_rows`` caps the main rows only.

    The table's ``angle`` labels are market names; ``angle_index`` leaves as the flank-class index
    (:func:`flank_angle_index`) for the driver side the rows were labelled for: a row's own
    ``driver_side`` column where the table has one and it is set, else ``config.market.driver_side``
    (synthetic rows are rendered, and imported labels given, in the configured market's terms).

    Returns:
        A DataFrame with :data:`FEED_COLUMNS` (unknown labels as -1, the box as 4 floats;
        ``angle_index`` in flank classes; ``angle_mask``: the angle classes the label allows, as a
        bitmask of flank-class indices, bit i = class i, 0 = no angle label; ``row_weight``: 1.0 for
        the main rows, the prefix's weight for extra rows).

    Raises:
        TableContractError: The table is missing or does not match its contract.
        ValueError: ``splits`` is empty, an extra weight is not > 0, or an extra prefix has no rows
            (the message names ``models.extra_datasets``).
    """
    if not splits:
        raise ValueError("training_frame: splits is empty")
    extras = dict(extra_datasets or {})
    bad = {k: w for k, w in extras.items() if not k or not w > 0}
    if bad:
        raise ValueError(f"models.extra_datasets: prefixes must be non-empty with weights > 0, got {bad}")
    df = validate_input_table(spark, config.tables.database, TRAINING_IMAGES)
    is_main = F.col("dataset").startswith(dataset_prefix)
    row_weight: Column = F.lit(1.0)
    if extras:
        # longest prefix last, so it wins in the chained when()
        extra_weight = F.lit(None).cast("double")
        for prefix in sorted(extras, key=len):
            extra_weight = F.when(F.col("dataset").startswith(prefix), F.lit(float(extras[prefix]))).otherwise(
                extra_weight
            )
        row_weight = F.when(is_main, F.lit(1.0)).otherwise(extra_weight)
        df = df.where(F.col("split").isin(list(splits)) & (is_main | extra_weight.isNotNull()))
        _check_extra_prefixes(df, dataset_prefix, extras, splits)
    else:
        df = df.where(F.col("split").isin(list(splits)) & is_main)
    box = F.coalesce(F.col("plate_box"), F.array().cast("array<float>"))
    known = (F.size(box) == 4) & F.forall(box, lambda v: v.isNotNull() & ~F.isnan(v))
    row_side = F.col("driver_side").cast("string") if "driver_side" in df.columns else F.lit(None).cast("string")
    driver_side = F.coalesce(row_side, F.lit(config.market.driver_side))
    market_index = F.coalesce(F.col("angle_index"), F.lit(-1)).cast("int")
    # the allowed classes (a coarse label allows several) travel through petastorm as one int64
    # bitmask (up to 63 classes: the pipeline checks); rows without angle_allowed allow angle_index
    allowed = F.coalesce(F.col("angle_allowed"), F.array().cast("array<int>"))
    allowed = F.when(F.size(allowed) > 0, allowed).otherwise(
        F.when(market_index >= 0, F.array(market_index)).otherwise(F.array().cast("array<int>"))
    )
    flank_taxonomy = load_taxonomy()
    angle_mask = F.aggregate(
        F.transform(allowed, lambda i: flank_angle_index(i, driver_side, flank_taxonomy)),
        F.lit(0).cast("long"),
        lambda acc, i: acc.bitwiseOR(F.pow(F.lit(2.0), i).cast("long")),  # 2**i, exact in a double
    )
    out = df.select(
        F.col("sample_id"),
        F.col("content"),
        flank_angle_index(market_index, driver_side, load_taxonomy()).cast("int").alias("angle_index"),
        angle_mask.alias("angle_mask"),
        F.coalesce(F.col("has_banner"), F.lit(-1)).cast("int").alias("has_banner"),
        F.coalesce(F.col("plate_present"), F.lit(-1)).cast("int").alias("plate_present"),
        *[
            F.when(known, box[i]).otherwise(F.lit(0.0)).cast("float").alias(name)
            for i, name in enumerate(("box_x0", "box_y0", "box_x1", "box_y1"))
        ],
        known.cast("int").alias("box_known"),
        F.coalesce(F.col("body_index"), F.lit(-1)).cast("int").alias("body_index"),
        row_weight.cast("float").alias("row_weight"),
        is_main.alias("_main"),
    ).where(F.col("content").isNotNull())
    if tasks is not None:
        unknown = sorted(set(tasks) - set(TASK_LABEL_COLUMN))
        if unknown:
            raise ValueError(f"training_frame: unknown task(s) {unknown}")
        out = out.where(functools.reduce(lambda a, b: a | b, [has_label(t) for t in tasks]))
    main = out.where(F.col("_main"))
    if max_rows is not None:
        main = main.orderBy(F.rand(seed)).limit(max_rows)
    if extras:
        extra = out.where(~F.col("_main"))
        if extra_max_rows is not None:
            extra = extra.orderBy(F.rand(seed + 1)).limit(extra_max_rows)
        main = main.unionByName(extra)
    return main.drop("_main")


def _check_extra_prefixes(df: DataFrame, main_prefix: str, extras: Mapping[str, float], splits: Sequence[str]) -> None:
    """Raise when an extra prefix matches no row outside the main prefix (a typo would train on nothing)."""
    datasets = [r[0] for r in df.select("dataset").distinct().collect()]
    empty = sorted(p for p in extras if not any(d.startswith(p) and not d.startswith(main_prefix) for d in datasets))
    if empty:
        raise ValueError(
            f"models.extra_datasets: no rows of split(s) {list(splits)} with dataset starting {empty} "
            f"(outside training_dataset {main_prefix!r}); datasets there: {sorted(datasets)[:20]}"
        )


def _cache_dir_url(config: Config) -> str:
    location = config.paths.location("artifacts").rstrip("/")
    if "://" in location:
        return f"{location}/petastorm"
    return f"file://{location}/petastorm"


def _to_example(row: tf.Tensor) -> dict[str, tf.Tensor]:
    return {
        "content": row.content,
        "angle_index": tf.cast(row.angle_index, tf.int32),
        "angle_mask": tf.cast(row.angle_mask, tf.int64),
        "has_banner": tf.cast(row.has_banner, tf.int32),
        "plate_present": tf.cast(row.plate_present, tf.int32),
        "box": tf.cast(tf.stack([row.box_x0, row.box_y0, row.box_x1, row.box_y1]), tf.float32),
        "box_known": tf.cast(row.box_known, tf.int32),
        "body_index": tf.cast(row.body_index, tf.int32),
        "row_weight": tf.cast(row.row_weight, tf.float32),
    }


@contextlib.contextmanager
def tf_examples(
    spark: SparkSession,
    frame: DataFrame,
    config: Config,
    *,
    read_batch: int = 128,
    workers: int = 2,
    with_sample_id: bool = False,
) -> Iterator[tuple[tf.data.Dataset, int]]:
    """Hand a feed DataFrame to tf.data through petastorm; one pass, valid inside the ``with``.

    Args:
        spark: The session (the petastorm cache directory is set on it).
        frame: From :func:`training_frame`.
        config: The job configuration (``paths.artifacts`` holds the Parquet cache).
        read_batch: Rows petastorm reads per batch (the dataset is unbatched again).
        workers: petastorm reader threads.
        with_sample_id: Also yield ``sample_id`` in each example.

    Yields:
        (unbatched dataset of example dicts, number of rows).

    Raises:
        EmptyDatasetError: The frame has no rows.
    """
    spark.conf.set(PARENT_CACHE_DIR_CONF, _cache_dir_url(config))
    from petastorm.spark import make_spark_converter

    # dtype=None: the columns are already float32/int32 (petastorm would otherwise cast and warn)
    converter = make_spark_converter(frame.select(*FEED_COLUMNS), dtype=None)
    try:
        n = len(converter)
        if n == 0:
            raise EmptyDatasetError("the feed has no rows (see training_frame's dataset/split filter)")
        with converter.make_tf_dataset(
            batch_size=read_batch, num_epochs=1, workers_count=workers, shuffling_queue_capacity=0
        ) as batches:

            def to_example(row: tf.Tensor) -> dict[str, tf.Tensor]:
                ex = _to_example(row)
                if with_sample_id:
                    ex["sample_id"] = row.sample_id
                return ex

            yield batches.unbatch().map(to_example, num_parallel_calls=tf.data.AUTOTUNE), n
    finally:
        converter.delete()


@dataclass(frozen=True)
class EvalSet:
    """A frozen evaluation set in memory: encoded photos and their labels.

    Attributes:
        sample_ids: One per photo, sorted (the set's order does not depend on Spark's).
        contents: Encoded photo bytes.
        labels: The labels, aligned with ``contents``.
        description: Which dataset prefix and split it came from.
        fingerprint: sha256 (16 hex) of the sorted sample ids: the same set gives the same fingerprint.
    """

    sample_ids: tuple[str, ...]
    contents: tuple[bytes, ...]
    labels: EvalLabels
    description: str
    fingerprint: str

    def __len__(self) -> int:
        return len(self.sample_ids)


def load_eval_set(
    spark: SparkSession,
    config: Config,
    *,
    dataset_prefix: str | None = None,
    split: str | None = None,
) -> EvalSet:
    """Read the frozen evaluation set (``models.eval_dataset`` / ``models.eval_split``) through petastorm.

    Args:
        spark: The session.
        config: The job configuration.
        dataset_prefix: Overrides ``models.eval_dataset`` (default: ``models.training_dataset``).
        split: Overrides ``models.eval_split``.

    Raises:
        EmptyDatasetError: No rows (the message says how to make them).
    """
    prefix = dataset_prefix or config.models.eval_dataset or config.models.training_dataset
    split = split or config.models.eval_split
    table = qualified(config.tables.database, TRAINING_IMAGES)
    frame = training_frame(spark, config, splits=(split,), dataset_prefix=prefix)
    rows: list[tuple[str, bytes, dict[str, np.ndarray]]] = []
    try:
        with tf_examples(spark, frame, config, with_sample_id=True) as (examples, _):
            for ex in examples.as_numpy_iterator():
                rows.append((ex.pop("sample_id").decode(), bytes(ex.pop("content")), ex))
    except EmptyDatasetError:
        raise EmptyDatasetError(
            f"no evaluation rows in {table} with dataset starting {prefix!r} and split {split!r}; "
            "generate them (fleetvision generate) or import labels (fleetvision import-labels)"
        ) from None
    rows.sort(key=lambda r: r[0])
    labels = EvalLabels(
        angle_index=np.array([r[2]["angle_index"] for r in rows], dtype=np.int64),
        has_banner=np.array([r[2]["has_banner"] for r in rows], dtype=np.int64),
        plate_present=np.array([r[2]["plate_present"] for r in rows], dtype=np.int64),
        box=np.array([r[2]["box"] for r in rows], dtype=np.float32).reshape(-1, 4),
        box_known=np.array([r[2]["box_known"] for r in rows], dtype=np.int64),
        body_index=np.array([r[2]["body_index"] for r in rows], dtype=np.int64),
    )
    ids = tuple(r[0] for r in rows)
    fingerprint = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    logger.info(
        "eval set: %d rows from %s (dataset %s*, split %s), fingerprint %s", len(ids), table, prefix, split, fingerprint
    )
    return EvalSet(ids, tuple(r[1] for r in rows), labels, f"{table} dataset={prefix}* split={split}", fingerprint)
