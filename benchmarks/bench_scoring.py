"""Benchmark: the scoring job's inference stage against a plain loop and the usual Spark alternatives.

All methods score the same photos (a synthetic inventory, bytes inline) with the same Keras models
(the starter models when they ship, else the same architecture untrained: the compute is the same),
resolved from an MLflow registry in a temporary folder:

* ``plain_loop``: one Python process, no Spark: decode each Arrow-sized batch once and run every model
  on it (:func:`fleetvision.scoring.udf.score_frame`): the floor.
* ``spark_pandas_udf``: the job's iterator-of-batches pandas UDF (decode once, all models per batch,
  models cached per worker), written to Spark's ``noop`` sink.
* ``spark_job_full``: the whole ``fleetvision score --mode full`` run on an empty cache (hashing,
  staging, MERGEs, listing recompute and checks included). Then one day of churn
  (``fleetvision generate --evolve``) and the incremental run after it are timed too.
* ``spark_row_udf``: a row-at-a-time Python UDF (one photo per model call), models cached per worker.
* ``spark_predict_batch_udf``: ``pyspark.ml.functions.predict_batch_udf`` whose predict function does the
  same work (it passes the binary column through as an object array; only numeric columns come back).

Each method runs twice and keeps its faster pass (the first loads the models in every worker); the
whole job runs once on an empty cache. Throughputs are photos per second; ratios are against the plain
loop. Results go to ``benchmarks/results/bench_scoring.json``.

    python benchmarks/bench_scoring.py [--listings 80] [--master local[2]]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_scoring.json"
logger = logging.getLogger("bench_scoring")


def _config(tmp: Path, args: argparse.Namespace) -> Any:
    from fleetvision.config import load_config

    return load_config(
        overrides=[
            f"paths.warehouse={tmp / 'warehouse'}",
            f"paths.photos={tmp / 'photos'}",
            f"paths.artifacts={tmp / 'artifacts'}",
            f"paths.reports={tmp / 'reports'}",
            f"mlflow.tracking_uri=sqlite:///{tmp / 'mlflow.db'}",
            f"spark.master={args.master}",
            "spark.shuffle_partitions=2",
            f"spark.arrow_max_records_per_batch={args.arrow_batch}",
            f"scoring.batch_size={args.model_batch}",
            "spark.extra={spark.databricks.delta.snapshotPartitions: '2'}",
            f"synth.n_listings={args.listings}",
            "synth.workers=0",
        ],
        environ={},
    )


def _models(config: Any, tmp: Path) -> tuple[Any, str]:
    """Register the starter models (or the same architecture untrained) and resolve them by alias."""
    import mlflow

    from fleetvision.models.pretrained import saved_model_file
    from fleetvision.models.resolve import resolve_model_set
    from fleetvision.models.starter import register_starter_models

    mlflow.set_tracking_uri(config.mlflow.resolved_tracking_uri())
    mlflow.create_experiment(config.mlflow.experiment, artifact_location=(tmp / "mlartifacts").as_uri())
    starter = config.paths.resolve("starter_models")
    if all(saved_model_file(starter / t).is_file() for t in config.models.tasks):
        register_starter_models(config)
        kind = "starter"
    else:
        _register_untrained(config)
        kind = "untrained (starter models not shipped yet)"
    return resolve_model_set(config), kind


def _register_untrained(config: Any) -> None:
    import mlflow

    from fleetvision.models.architecture import build_multitask_model, task_model
    from fleetvision.models.registration import log_task_model, set_champion
    from fleetvision.models.spec import TrainSpec
    from fleetvision.taxonomy import load_taxonomy
    from fleetvision.tracking import configure_mlflow

    taxonomy = load_taxonomy()
    tasks = tuple(config.models.tasks)
    model = build_multitask_model(TrainSpec.from_config(config, tasks), taxonomy.num_classes, len(taxonomy.body_types))
    configure_mlflow(config)
    size = config.models.input_size
    with mlflow.start_run(run_name="bench-untrained"):
        for task in tasks:
            _, version = log_task_model(
                task_model(model, task),
                config,
                task,
                example=np.zeros((1, size, size, 3), np.uint8),
                register=True,
                source="bench",
                taxonomy_version=taxonomy.version,
            )
            set_champion(config, task, str(version))


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _warm(fn: Callable[[], Any], repeats: int = 2) -> float:
    """Best of ``repeats`` timed passes: the first also warms every worker (models loaded, JIT done)."""
    return min(_timed(fn)[0] for _ in range(repeats))


def bench_plain_loop(photos: pd.DataFrame, model_set: Any, config: Any) -> float:
    """Seconds to decode and score every photo in one process, Arrow-sized batches, no Spark."""
    from fleetvision.models.serving import load_models
    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.udf import UdfSettings, score_frame
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    rules = ScoringRules.from_config(config.scoring, taxonomy)
    settings = UdfSettings.from_config(config, environ={})
    models = load_models(model_set)
    step = config.spark.arrow_max_records_per_batch

    def loop() -> None:
        n = 0
        for start in range(0, len(photos), step):
            chunk = photos.iloc[start : start + step]
            n += len(score_frame(chunk.uri, chunk.content, models, settings, taxonomy, rules))
        if n != len(photos):
            raise RuntimeError(f"plain loop scored {n} of {len(photos)} photos")

    return _warm(loop)


def _python_value(v: Any) -> Any:
    """numpy/pandas scalars as plain Python values (a row UDF's result is not converted by Arrow)."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, list):
        return [_python_value(x) if not isinstance(x, dict) else {k: _python_value(y) for k, y in x.items()} for x in v]
    return v


def _noop(df: Any) -> None:
    df.write.format("noop").mode("overwrite").save()


def bench_spark_udf(spark: Any, images: Any, model_set: Any, config: Any, partitions: int) -> float:
    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.udf import UdfSettings, make_scoring_udf
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    rules = ScoringRules.from_config(config.scoring, taxonomy)
    score = make_scoring_udf(model_set, UdfSettings.from_config(config, environ={}), taxonomy, rules)
    return _warm(lambda: _noop(images.repartition(partitions).select(score("uri", "content").alias("p"))))


def bench_row_udf(spark: Any, images: Any, model_set: Any, config: Any, partitions: int) -> float:
    """A plain (row-at-a-time) Python UDF: every photo decoded and scored alone."""
    from pyspark.sql import functions as F

    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.udf import PREDICTION_SCHEMA, UdfSettings, score_frame, worker_models
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    rules = ScoringRules.from_config(config.scoring, taxonomy)
    settings = UdfSettings.from_config(config, environ={})

    def score_one(uri: str | None, content: bytes | None) -> dict[str, Any]:
        models = worker_models(model_set)
        frame = score_frame(
            pd.Series([uri], dtype=object), pd.Series([content], dtype=object), models, settings, taxonomy, rules
        )
        return {k: _python_value(v) for k, v in frame.iloc[0].to_dict().items()}

    score = F.udf(score_one, PREDICTION_SCHEMA)
    return _warm(lambda: _noop(images.repartition(partitions).select(score("uri", "content").alias("p"))))


def bench_predict_batch_udf(spark: Any, images: Any, model_set: Any, config: Any, partitions: int) -> float:
    """Spark's ``predict_batch_udf`` doing the same work: decode, every model, quality, tags.

    ``predict_batch_udf`` hands its predict function numpy arrays and accepts only numeric results, so
    the binary column arrives as an object array of bytes and the numeric prediction columns go back.
    """
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import types as T

    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.udf import UdfSettings, score_frame
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    rules = ScoringRules.from_config(config.scoring, taxonomy)
    settings = UdfSettings.from_config(config, environ={})
    numeric = ("angle_score", "banner_score", "plate_score", "body_score", "sharpness", "brightness")

    def make_predict_fn() -> Callable[[np.ndarray], dict[str, np.ndarray]]:
        from fleetvision.models.serving import load_models

        models = load_models(model_set)

        def predict(contents: np.ndarray) -> dict[str, np.ndarray]:
            frame = score_frame(
                pd.Series([None] * len(contents), dtype=object),
                pd.Series(list(contents)),
                models,
                settings,
                taxonomy,
                rules,
            )
            return {k: frame[k].to_numpy(dtype=np.float32, na_value=np.nan) for k in numeric}

        return predict

    return_type = T.StructType([T.StructField(k, T.FloatType()) for k in numeric])
    score = predict_batch_udf(make_predict_fn, return_type=return_type, batch_size=config.scoring.batch_size)
    with_bytes = images.filter("content IS NOT NULL")
    return _warm(lambda: _noop(with_bytes.repartition(partitions).select(score("content").alias("p"))))


def bench_job(spark: Any, config: Any, model_set: Any) -> tuple[float, float, Any]:
    from fleetvision.scoring.run import RunOptions, run_scoring

    summary = run_scoring(spark, config, RunOptions(mode="full", model_set=model_set, log_to_mlflow=False))
    return summary.total_seconds, summary.stage_seconds.get("infer", 0.0), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listings", type=int, default=80, help="synthetic listings (about 12 photos each)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--arrow-batch", type=int, default=64)
    parser.add_argument("--model-batch", type=int, default=64)
    parser.add_argument("--skip", action="append", default=[], help="skip a method (row_udf, predict_batch_udf)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "absl", "tensorflow", "alembic", "urllib3", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from fleetvision import tables
    from fleetvision.scoring.run import RunOptions, run_scoring
    from fleetvision.spark import build_spark
    from fleetvision.synth import job as synth_job

    tmp = Path(tempfile.mkdtemp(prefix="fv-bench-"))
    try:
        config = _config(tmp, args)
        spark = build_spark(config, app_name="fleetvision-bench-scoring")
        db = config.tables.database
        synth_job.write_inventory(spark, config, n_listings=args.listings, inline=True, workers=0)
        model_set, model_kind = _models(config, tmp)
        images = spark.table(tables.qualified(db, tables.LISTING_IMAGES)).select("image_id", "uri", "content")
        images = images.cache()  # the same bytes for every method, read once
        photos = images.toPandas()
        n = len(photos)
        partitions = spark.sparkContext.defaultParallelism
        logger.info("benchmarking %d photos, %d Spark cores, models: %s", n, partitions, model_kind)

        seconds: dict[str, float] = {}
        seconds["plain_loop"] = bench_plain_loop(photos, model_set, config)
        seconds["spark_pandas_udf"] = bench_spark_udf(spark, images, model_set, config, partitions)
        if "row_udf" not in args.skip:
            seconds["spark_row_udf"] = bench_row_udf(spark, images, model_set, config, partitions)
        if "predict_batch_udf" not in args.skip:
            n_bytes = int(photos.content.notna().sum())
            seconds["spark_predict_batch_udf"] = bench_predict_batch_udf(spark, images, model_set, config, partitions)
            seconds["spark_predict_batch_udf"] *= n / max(n_bytes, 1)  # same photo count as the others
        job_total, job_infer, summary = bench_job(spark, config, model_set)
        seconds["spark_job_full"] = job_total
        day = synth_job.evolve_inventory(spark, config, workers=0)
        options = RunOptions(mode="incremental", model_set=model_set, log_to_mlflow=False)
        incremental = run_scoring(spark, config, options)
        spark.stop()

        throughput = {k: n / v for k, v in seconds.items() if v > 0}
        floor = throughput["plain_loop"]
        result = {
            "benchmark": "scoring",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "photos": n,
            "listings": args.listings,
            "spark_master": args.master,
            "spark_cores": partitions,
            "machine_cores": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "input_size": config.models.input_size,
            "arrow_max_records_per_batch": args.arrow_batch,
            "model_batch_size": args.model_batch,
            "models": model_kind,
            "python": platform.python_version(),
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
            "photos_per_second": {k: round(v, 2) for k, v in throughput.items()},
            "ratio_to_plain_loop": {k: round(v / floor, 3) for k, v in throughput.items()},
            "job_stage_seconds": summary.stage_seconds,
            "job_full": {"seconds": round(summary.total_seconds, 2), **summary.counts()},
            "job_incremental_after_one_day": {
                "seconds": round(incremental.total_seconds, 2),
                "stage_seconds": incremental.stage_seconds,
                "evolve_counts": day["counts"],
                **incremental.counts(),
            },
            "job_infer_stage_photos_per_second": round(summary.photos_inferred / job_infer, 2) if job_infer else None,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        width = max(len(k) for k in throughput)
        print(f"scoring benchmark: {n} photos, {partitions} Spark cores, models {model_kind}")
        for k in throughput:
            print(f"  {k:<{width}}  {throughput[k]:8.2f} photos/s  ratio to plain loop {throughput[k] / floor:6.3f}")
        print(
            f"  whole job: full {summary.total_seconds:.1f}s ({summary.images_in} photos, {summary.listings_updated} "
            f"listings); incremental after one day {incremental.total_seconds:.1f}s ({incremental.images_in} "
            f"photos, {incremental.listings_updated} listings recomputed)"
        )
        print(f"results: {args.out}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
