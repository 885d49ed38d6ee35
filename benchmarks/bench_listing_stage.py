"""Benchmark: the listing stage's cost per listing, its pure core against the Spark stage around it.

The listing stage (:mod:`fleetvision.scoring.listing_stage`) recomputes the completeness and hero rows
of every affected listing: the pure core (completeness and hero pick on photos prepared once) runs on
each listing's ``image_tags`` rows. Three measurements on the same listings, in one run:

* ``pure_core``: :func:`fleetvision.scoring.listing_stage.listing_result_fn` called on each listing's
  rows in one process (no Spark): the floor.
* ``spark_apply_in_pandas``: the same function through ``groupBy("listing_id").applyInPandas`` (one
  pandas frame in and out per listing; the stage before session 16).
* ``spark_map_in_pandas``: what the stage runs now: the rows repartitioned and sorted by listing, then
  :func:`fleetvision.scoring.listing_stage.listing_results_fn` in ``mapInPandas`` (one frame in and out
  per Arrow batch).

Both Spark methods run on a ``local[N]`` session, written to Spark's ``noop`` sink, two passes each, the
faster kept (the first starts the Python workers).

The listings are synthetic ``image_tags`` rows drawn from the taxonomy (1-40 photos, 12 on average; some
failed decodes, banners, exact duplicates and photos without a position), seeded. Results go to
``benchmarks/results/listing_stage.json``; the MERGEs that follow the stage are not measured here
(``make bench-cost`` times the whole stage inside full runs).

    python benchmarks/bench_listing_stage.py [--listings 2000] [--master local[2]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "listing_stage.json"
BODIES = ("sedan", "hatch", "suv", "wagon", "van", "ute", "coupe")


def listing_rows(n_listings: int, seed: int) -> pd.DataFrame:
    """``image_tags`` rows joined to their listing, as the stage's ``applyInPandas`` receives them."""
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    names = list(taxonomy.names)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n_listings):
        lid = f"L{i:06d}"
        body, seller = str(rng.choice(BODIES)), str(rng.choice(["dealer", "private"]))
        n = int(np.clip(rng.poisson(12), 1, 40))
        for k in range(n):
            ok = bool(rng.random() > 0.03)
            angle = names[int(rng.integers(len(names)))]
            group = taxonomy[angle].group if ok else None
            rows.append({
                "listing_id": lid,
                "listing_body_type": body,
                "listing_seller_type": seller,
                "image_id": f"{lid}-{k:02d}",
                "position": None if rng.random() < 0.02 else k,
                "content_hash": f"h{int(rng.integers(3))}-{lid}" if rng.random() < 0.05 else f"h-{lid}-{k}",
                "width": 1024,
                "height": 768,
                "decode_status": "ok" if ok else "error",
                "error_code": None if ok else "truncated",
                "angle": angle if ok else None,
                "angle_score": float(rng.uniform(0.3, 1.0)) if ok else None,
                "shot_group": group,
                "banner_score": float(rng.uniform()) if ok else None,
                "banner_flag": bool(rng.random() < 0.15) if ok else None,
                "plate_score": float(rng.uniform()) if ok else None,
                "plate_flag": bool(rng.random() < 0.3) if ok else None,
                "body_type": str(rng.choice(BODIES)) if group == "exterior" else None,
                "body_score": float(rng.uniform()) if group == "exterior" else None,
                "sharpness": float(rng.uniform(0.0, 0.02)) if ok else None,
                "brightness": float(rng.uniform(0.1, 0.9)) if ok else None,
            })
    return pd.DataFrame(rows)


RUN_ID, COMPUTED_AT = "bench-listing-stage", datetime(2026, 1, 1, tzinfo=UTC)


def _taxonomy_and_rules() -> tuple[Any, Any]:
    from fleetvision.config import load_config
    from fleetvision.scoring import ScoringRules
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    return taxonomy, ScoringRules.from_config(load_config(overrides=[], environ={}).scoring, taxonomy)


def _group_fn() -> Any:
    from fleetvision.scoring.listing_stage import listing_result_fn

    return listing_result_fn(*_taxonomy_and_rules(), RUN_ID, COMPUTED_AT)


def pure_core(rows: pd.DataFrame) -> dict[str, Any]:
    """The group function on each listing's rows in this process."""
    fn = _group_fn()
    groups = [g.reset_index(drop=True) for _, g in rows.groupby("listing_id", sort=True)]
    fn(groups[0])  # imports and first-call costs out of the timing
    start = time.perf_counter()
    out = [fn(g) for g in groups]
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "listings": len(out), "ms_per_listing": round(seconds / len(out) * 1e3, 3)}


def spark_stages(rows: pd.DataFrame, master: str) -> dict[str, dict[str, Any]]:
    """The group function through ``applyInPandas``, and the stage's ``mapInPandas`` (the faster of two passes)."""
    from fleetvision.config import load_config
    from fleetvision.scoring.listing_stage import LISTING_RESULT_SCHEMA, listing_results_fn
    from fleetvision.spark import build_spark

    config = load_config(overrides=[f"spark.master={master}", "spark.shuffle_partitions=2",
                                    "spark.extra={spark.ui.enabled: 'false'}"], environ={})
    spark = build_spark(config, app_name="fleetvision-bench-listing-stage")
    try:
        frame = spark.createDataFrame(rows).cache()
        frame.count()
        fn = _group_fn()
        batches = listing_results_fn(*_taxonomy_and_rules(), RUN_ID, COMPUTED_AT)
        plans = {
            "spark_apply_in_pandas": frame.groupBy("listing_id").applyInPandas(fn, LISTING_RESULT_SCHEMA),
            "spark_map_in_pandas": frame.repartition("listing_id").sortWithinPartitions("listing_id").mapInPandas(
                batches, LISTING_RESULT_SCHEMA),
        }
        n = rows["listing_id"].nunique()
        out = {}
        for name, plan in plans.items():
            passes = []
            for _ in range(2):
                start = time.perf_counter()
                plan.write.format("noop").mode("overwrite").save()
                passes.append(time.perf_counter() - start)
            best = min(passes)
            out[name] = {"seconds": round(best, 3), "passes_seconds": [round(p, 3) for p in passes], "listings": n,
                         "ms_per_listing": round(best / n * 1e3, 3), "master": master}
        counts = {name: plan.count() for name, plan in plans.items()}
        if set(counts.values()) != {n}:
            raise RuntimeError(f"expected one result row per listing ({n}), got {counts}")
        return out
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = listing_rows(args.listings, args.seed)
    core = pure_core(rows)
    stages = spark_stages(rows, args.master)
    import fleetvision

    report = {
        "benchmark": "listing_stage",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_listing_stage.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "fleetvision_from": str(Path(fleetvision.__file__).resolve().parent),
        "listings": args.listings,
        "photos": len(rows),
        "methods": {"pure_core": core, **stages},
        "over_pure_core": {k: round(v["ms_per_listing"] / core["ms_per_listing"], 2) for k, v in stages.items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{args.listings} listings, {len(rows)} photos, ms a listing: pure core {core['ms_per_listing']} "
          f"(one process); on {args.master}: " + "; ".join(
              f"{k} {v['ms_per_listing']} ({report['over_pure_core'][k]}x)" for k, v in stages.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
