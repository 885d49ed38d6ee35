"""Benchmark: what a scoring run costs against the work it has, full and incremental.

* **Full runs** on inventories of growing size (each in a fresh warehouse, photos as files read by uri,
  an empty prediction cache): seconds against photos, fitted as ``fixed + per_photo * photos``.
* **Incremental runs** after a day of churn at each rate (``synth.evolve_rate``: the share of listings
  that change; new, replaced and removed photos, sold and edited listings) on the largest inventory,
  one after the other: seconds against the photos selected, fitted the same way, and each run as a
  share of that inventory's full run.

Every run is the job's own ``run_scoring`` in one Spark session (``local[N]``; JVM and session start-up
are outside the times, MLflow logging off), with the starter models from a registry in a temporary
folder. Results, the fits and every run's stage seconds go to ``benchmarks/results/cost_vs_work.json``.

    python benchmarks/bench_cost_vs_work.py                       # 80, 800, 4000 listings: ~1k, 10k, 50k photos
    python benchmarks/bench_cost_vs_work.py --listings 40,80,160  # ~0.5k-2k photos: minutes, not hours
    python benchmarks/bench_cost_vs_work.py --churn ''            # full runs only
    python benchmarks/bench_cost_vs_work.py --listings 4000 --render-only   # fill the photo cache, no runs

``--render-only`` renders the inventories into the photo cache and stops: the 50k inventory takes about
an hour here, so render it ahead (at low priority, beside other work; a killed render resumes where it
stopped) and time the runs later with nothing else on the machine.
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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cost_vs_work.json"
PHOTO_CACHE = ROOT / "benchmarks" / ".cache" / "inventories"  # rendered once per settings and generator code
logger = logging.getLogger("bench_cost_vs_work")


def fit_fixed_and_per_unit(units: Sequence[float], seconds: Sequence[float]) -> dict[str, float | None]:
    """Least-squares ``seconds = fixed + per_unit * units``; ``r2`` says how well a line explains them.

    Raises:
        ValueError: Fewer than two points, different lengths, or every point at the same ``units``.
    """
    if len(units) != len(seconds):
        raise ValueError(f"{len(units)} unit counts but {len(seconds)} times")
    if len(units) < 2:
        raise ValueError("a line needs at least two runs")
    n = len(units)
    mean_u = sum(units) / n
    mean_s = sum(seconds) / n
    var_u = sum((u - mean_u) ** 2 for u in units)
    if var_u == 0:
        raise ValueError("every run had the same amount of work: no slope to fit")
    per_unit = sum((u - mean_u) * (s - mean_s) for u, s in zip(units, seconds)) / var_u
    fixed = mean_s - per_unit * mean_u
    total = sum((s - mean_s) ** 2 for s in seconds)
    residual = sum((s - fixed - per_unit * u) ** 2 for u, s in zip(units, seconds))
    return {
        "fixed_seconds": round(fixed, 2),
        "seconds_per_unit": round(per_unit, 5),
        "r2": round(1 - residual / total, 4) if total > 0 else None,
    }


def _run_record(summary: Any) -> dict[str, Any]:
    return {
        "seconds": round(summary.total_seconds, 2),
        "images_in": summary.images_in,
        "photos_inferred": summary.photos_inferred,
        "listings_updated": summary.listings_updated,
        "listings_removed": summary.listings_removed,
        "images_deleted": summary.images_deleted,
        "stage_seconds": {k: round(v, 2) for k, v in summary.stage_seconds.items()},
    }


def _config_for(tmp: Path, listings: int, args: argparse.Namespace) -> Any:
    """The bench's config for an inventory of ``listings`` listings in the scratch folder ``tmp``."""
    from bench_scoring import _config

    ns = argparse.Namespace(
        master=args.master, arrow_batch=args.arrow_batch, model_batch=args.model_batch, listings=listings
    )
    return _config(tmp, ns)


def _inventory(tmp: Path, listings: int, args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """A fresh warehouse with ``listings`` listings (photos as files), the Spark session and the model set."""
    from bench_scoring import _models

    from fleetvision.spark import build_spark
    from fleetvision.synth import job as synth_job

    config = _config_for(tmp, listings, args)
    spark = build_spark(config, app_name="fleetvision-bench-cost")
    made = synth_job.write_inventory(
        spark, config, n_listings=listings, inline=False, workers=args.render_workers, photo_cache=args.photo_cache
    )
    logger.info("inventory of %d listings: %s", listings, made)
    model_set, kind = _models(config, tmp)
    return config, spark, (model_set, kind)


def render_only(listings: int, args: argparse.Namespace) -> dict[str, Any]:
    """Render the inventory that a run of ``listings`` listings reads into the photo cache (no Spark)."""
    from fleetvision.synth.job import render_inventory, settings_from

    tmp = Path(tempfile.mkdtemp(prefix=f"fv-render-{listings}-"))
    try:
        settings = settings_from(_config_for(tmp, listings, args), None, listings)
        _, files, stats = render_inventory(settings, tmp / "photos", workers=args.render_workers,
                                           photo_cache=args.photo_cache)
        return {"photos": len(files), "rendered_now": stats.photos, "seconds": round(stats.seconds, 1)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listings", default="80,800,4000", help="inventory sizes (~12.5 photos each)")
    parser.add_argument("--churn", default="0.01,0.05,0.10",
                        help="daily churn rates for the incremental runs on the largest inventory ('' for none)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--arrow-batch", type=int, default=64)
    parser.add_argument("--model-batch", type=int, default=64)
    parser.add_argument("--render-workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--photo-cache", type=Path, default=PHOTO_CACHE,
                        help="rendered inventories, reused by settings and generator code ('' renders every time)")
    parser.add_argument("--render-only", action="store_true",
                        help="render the inventories into --photo-cache (resumable) and stop: no Spark, no runs")
    args = parser.parse_args(argv)
    if args.photo_cache is not None and str(args.photo_cache) in ("", "."):
        args.photo_cache = None
    if args.render_only and args.photo_cache is None:
        parser.error("--render-only needs a --photo-cache")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "absl", "tensorflow", "alembic", "urllib3", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from fleetvision.scoring.run import RunOptions, run_scoring
    from fleetvision.synth import job as synth_job

    sizes = sorted(int(x) for x in args.listings.split(","))
    if args.render_only:
        for listings in sizes:
            print(f"{listings} listings: {render_only(listings, args)}")
        return 0
    rates = [float(x) for x in args.churn.split(",") if x.strip()]
    full_runs: list[dict[str, Any]] = []
    incremental_runs: list[dict[str, Any]] = []
    load_start = os.getloadavg()[0]
    model_kind = None
    for i, listings in enumerate(sizes):
        tmp = Path(tempfile.mkdtemp(prefix=f"fv-cost-{listings}-"))
        try:
            config, spark, (model_set, model_kind) = _inventory(tmp, listings, args)
            full = run_scoring(spark, config, RunOptions(mode="full", model_set=model_set, log_to_mlflow=False))
            full_runs.append({"listings": listings, **_run_record(full)})
            logger.info("full run, %d listings: %s", listings, full_runs[-1])
            if i == len(sizes) - 1:  # the churn runs, one day after the other, on the largest inventory
                for rate in rates:
                    day_config = config.model_copy(
                        update={"synth": config.synth.model_copy(update={"evolve_rate": rate})}
                    )
                    day = synth_job.evolve_inventory(spark, day_config, workers=args.render_workers)
                    options = RunOptions(mode="incremental", model_set=model_set, log_to_mlflow=False)
                    run = run_scoring(spark, day_config, options)
                    record = {"churn_rate": rate, "evolve_counts": day["counts"], **_run_record(run)}
                    record["share_of_full_run_seconds"] = round(run.total_seconds / full.total_seconds, 3)
                    incremental_runs.append(record)
                    logger.info("incremental at %.0f%% churn: %s", 100 * rate, record)
            spark.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    result: dict[str, Any] = {
        "benchmark": "cost_vs_work",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_cost_vs_work.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_start": round(load_start, 2),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "spark_master": args.master,
        "models": model_kind,
        "full_runs": full_runs,
        "incremental_runs": incremental_runs,
    }
    if len(full_runs) >= 2:
        result["full_fit"] = fit_fixed_and_per_unit(
            [r["images_in"] for r in full_runs], [r["seconds"] for r in full_runs]
        )
    if len(incremental_runs) >= 2:
        result["incremental_fit"] = fit_fixed_and_per_unit(
            [r["images_in"] for r in incremental_runs], [r["seconds"] for r in incremental_runs]
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"cost against work ({args.master}, models {model_kind}):")
    for r in full_runs:
        rate = r["images_in"] / r["seconds"]
        print(f"  full        {r['images_in']:>6} photos  {r['seconds']:8.1f} s  ({rate:.1f} photos/s)")
    for r in incremental_runs:
        print(
            f"  incremental {r['images_in']:>6} photos  {r['seconds']:8.1f} s  at {100 * r['churn_rate']:.0f}% churn"
            f" = {100 * r['share_of_full_run_seconds']:.1f}% of the full run"
        )
    for name in ("full_fit", "incremental_fit"):
        if name in result:
            fit = result[name]
            print(f"  {name}: {fit['fixed_seconds']} s fixed + {fit['seconds_per_unit']} s per photo (r2 {fit['r2']})")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
