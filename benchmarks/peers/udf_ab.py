"""A/B in one warm Spark session: the job's scoring UDF, the same UDF returning numbers only, and predict_batch_udf.

    PYTHONPATH=src:benchmarks/peers .venv/bin/python benchmarks/peers/udf_ab.py --photos 3000

``bench_peers.py`` times each engine cold, in its own process: model loading, imports and the JVM's
warm-up are inside every figure, and each method runs once. This script asks the narrower question
"what does a photo cost in each UDF once everything is loaded": one ``local[N]`` session, the first
``--photos`` of the peers photo cache (``bench_peers.py`` renders it), the starter models fused as in
``bench_peers.py``, one untimed pass of each UDF family to load the models in every worker, then the
variants in the order A B C C B A (each written to the ``noop`` sink):

* ``struct``: :func:`fleetvision.scoring.udf.make_scoring_udf`, the job's UDF (the full tag row);
* ``numeric``: the same :func:`fleetvision.scoring.udf.score_frame` returning only its numeric columns
  (what the struct's strings and nested ``angle_top3`` cost);
* ``pbu``: ``pyspark.ml.functions.predict_batch_udf`` running the floor's batch function.

Prints photos/s per pass and a JSON line; nothing is written to ``benchmarks/results``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PHOTO_CACHE = ROOT / "benchmarks" / "peers" / ".cache"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=None, help="photo folder (default: the newest peers cache)")
    args = ap.parse_args(argv)

    from peer_work import StarterModelSet, WorkSettings, starter_loader
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import types as T
    from pyspark.sql.functions import pandas_udf

    from fleetvision.config import load_config
    from fleetvision.photo_uris import PhotoRoots
    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.udf import PREDICTION_SCHEMA, UdfSettings, make_scoring_udf, score_frame, worker_models
    from fleetvision.spark import build_spark
    from fleetvision.taxonomy import load_taxonomy

    photos = args.cache or max(PHOTO_CACHE.glob("*/photos"), key=lambda p: p.stat().st_mtime, default=None)
    if photos is None or not photos.is_dir():
        raise SystemExit(f"no peers photo cache under {PHOTO_CACHE}: run bench_peers.py first")
    uris = sorted(str(p) for p in photos.rglob("*") if p.is_file())[: args.photos]
    config = load_config(overrides=[f"spark.master=local[{args.workers}]", "spark.arrow_max_records_per_batch=256"],
                         environ={})
    spark = build_spark(config, app_name="fleetvision-udf-ab")
    try:
        taxonomy = load_taxonomy()
        rules = ScoringRules.from_config(config.scoring, taxonomy)
        settings = dataclasses.replace(UdfSettings.from_config(config, environ={}),
                                       photo_roots=PhotoRoots((str(photos),)))
        work = WorkSettings(starter_dir=str(ROOT / "models" / "starter"), photo_root=str(photos), image_size=224,
                            max_pixels=config.scoring.max_image_pixels,
                            max_declared_pixels=config.scoring.max_declared_pixels,
                            max_bytes=config.scoring.max_image_bytes, decode_batch=256,
                            model_batch=config.scoring.batch_size)
        model_set = StarterModelSet(work.to_json(), "udf-ab")
        frame = pd.DataFrame({"uri": uris, "content": [None] * len(uris)})
        images = spark.createDataFrame(frame, "uri string, content binary").repartition(args.workers).cache()
        images.count()

        numeric_fields = [f for f in PREDICTION_SCHEMA.fields
                          if isinstance(f.dataType, T.FloatType | T.IntegerType | T.BooleanType)]

        def numeric(batches: Iterator[tuple[pd.Series, pd.Series]]) -> Iterator[pd.DataFrame]:
            models = worker_models(model_set, starter_loader, settings.model_threads)
            for uri, content in batches:
                yield score_frame(uri, content, models, settings, taxonomy, rules)[[f.name for f in numeric_fields]]

        work_json = work.to_json()

        def make_predict_fn() -> Any:
            from peer_work import WorkSettings, infer_uris, load_fused_model

            s = WorkSettings.from_json(work_json)
            predict = load_fused_model(s)
            return lambda batch: infer_uris(batch.tolist(), predict, s)

        udfs = {
            "struct": make_scoring_udf(model_set, settings, taxonomy, rules, loader=starter_loader)("uri", "content"),
            "numeric": pandas_udf(numeric, returnType=T.StructType(numeric_fields))("uri", "content"),  # type: ignore[call-overload]
            "pbu": predict_batch_udf(make_predict_fn, return_type=T.ArrayType(T.FloatType()), batch_size=256)("uri"),
        }

        def run(name: str) -> float:
            start = time.perf_counter()
            images.select(udfs[name].alias("p")).write.format("noop").mode("overwrite").save()
            return time.perf_counter() - start

        for name in ("struct", "pbu"):  # untimed: every worker loads its models (numeric shares struct's cache)
            run(name)
        result: dict[str, list[float]] = {name: [] for name in udfs}
        for name in ("struct", "numeric", "pbu", "pbu", "numeric", "struct"):
            seconds = run(name)
            result[name].append(round(len(uris) / seconds, 1))
            print(f"{name:8s} {seconds:6.1f} s  {result[name][-1]:6.1f} photos/s", flush=True)
        print(json.dumps({"photos": len(uris), "workers": args.workers, "photos_per_second": result}))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
