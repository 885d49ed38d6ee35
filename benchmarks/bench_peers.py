"""Benchmark: the same photos, fused model and decoder in the job and in the engines a team would pick.

    make bench-peers                                   # 10,000 photos, 3 rounds (builds the peers venv first)
    PYTHONPATH=src:benchmarks/peers .venv/bin/python benchmarks/bench_peers.py --photos 300 --repeat 1   # a quick look

Photos: a synthetic inventory (``fleetvision.synth``: the marketplace's mix of sizes, formats, EXIF
orientations and ~2% broken files) with at least ``--photos`` decodable photos, rendered once into the
shared cache of rendered inventories (``benchmarks/.cache/inventories/<key>/``, the one ``make bench-cost``
uses: :func:`fleetvision.synth.render_cache.render_cached`; keyed by the settings, the taxonomy and the
generator's code; a killed render resumes) and linked into ``benchmarks/peers/.cache/<key>/photos`` with
the inventory's rows. Every method reads them by uri.

Model: the starter models (``models/starter``, copied once per run so a file edited meanwhile cannot
mix models) fused on one EfficientNet-Lite0 backbone pass (``fuse_task_models``). Decoder:
``fleetvision.decode.decode_batch`` with the job's limits. Methods, each in its own process(es):

* ``plain_loop``: one Python process, 256 photos decoded at a time, the model on 64 at a time: the floor.
* ``spark_pandas_udf``: the job's scoring UDF (``fleetvision.scoring.udf.make_scoring_udf``, which also
  shapes the tag rows) in a Spark ``local[N]`` session, written to the ``noop`` sink.
* ``spark_predict_batch_udf``: ``pyspark.ml.functions.predict_batch_udf`` running the floor's batch function.
* ``ray_data``: Ray Data ``map_batches`` with an actor pool of N actors (peers venv).
* ``daft``: a ``@daft.cls`` UDF class with N processes (peers venv).
* ``job_full``: ``fleetvision score --mode full --no-mlflow`` on an inventory of those photos (the
  starter models registered first; the ``score`` process timed from start to exit, and the run's own
  clock from its log).

N is ``--workers`` (default 2, the machine's cores here). Every reading is cold, in fresh processes: the
timed pass includes loading the model in every worker (what a nightly run pays); engine start-up (Spark
session, ``ray.init``) is outside it except for ``job_full``. Every photo is read once, untimed, before the
first reading, so no method pays for the disk. Peak RSS is sampled every 0.25 s over each method's process
tree. ``--repeat R`` takes R rounds of readings, the order reversed every other round (A B C C B A), each
``job_full`` reading on an empty warehouse; a method reports its median reading with all of them beside it,
and ``head_to_head`` counts the rounds in which the job's UDF beat each peer (cold single readings of one
method spread by ~10% here: one round does not order methods within a few percent). Writes
``benchmarks/results/peers.json`` and prints the markdown table for the runbook.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import pickle
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
CACHE = PEERS / ".cache"
PHOTO_CACHE = ROOT / "benchmarks" / ".cache" / "inventories"  # shared with bench_cost_vs_work
PEERS_PYTHON = PEERS / ".venv" / "bin" / "python"
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
RESULTS = ROOT / "benchmarks" / "results" / "peers.json"
METHODS = ("plain_loop", "spark_pandas_udf", "spark_predict_batch_udf", "ray_data", "daft", "job_full")
SEED = 11
logger = logging.getLogger("bench_peers")

try:
    from peer_work import (
        RssSampler,
        StarterModelSet,
        WorkSettings,
        combine_readings,
        head_to_head,
        machine,
        peers_table,
        round_order,
        starter_loader,
    )
except ImportError as e:  # pragma: no cover - run from make or with PYTHONPATH
    raise SystemExit("bench_peers.py needs PYTHONPATH=src:benchmarks/peers (make bench-peers sets it)") from e


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{ROOT / 'src'}:{PEERS}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def overrides(work: Path, photos_dir: Path, starter: Path, workers: int, decode_batch: int, model_batch: int
              ) -> list[str]:
    """Config overrides for every Spark method and the job: everything under ``work`` but the photos."""
    return [
        f"paths.warehouse={work / 'warehouse'}",
        f"paths.photos={photos_dir}",
        f"paths.artifacts={work / 'artifacts'}",
        f"paths.reports={work / 'reports'}",
        f"paths.starter_models={starter}",
        f"mlflow.tracking_uri=sqlite:///{work / 'mlflow.db'}",
        f"spark.master=local[{workers}]",
        "spark.shuffle_partitions=2",
        f"spark.arrow_max_records_per_batch={decode_batch}",
        f"scoring.batch_size={model_batch}",
        "spark.extra={spark.databricks.delta.snapshotPartitions: '2', spark.ui.enabled: 'false'}",
    ]


# ------------------------------------------------------------------------------------------ photos
def plan_for(n_photos: int, seed: int) -> tuple[Any, Any]:
    """The smallest inventory (listings) with at least ``n_photos`` decodable photos, and its settings."""
    from fleetvision.config import load_config
    from fleetvision.synth.inventory import plan_inventory
    from fleetvision.synth.job import settings_from
    from fleetvision.taxonomy import load_taxonomy

    config = load_config(overrides=[], environ={})
    taxonomy = load_taxonomy()
    listings = max(1, math.ceil(n_photos / 12))
    while True:
        settings = settings_from(config, seed, listings)
        inv = plan_inventory(settings, taxonomy)
        good = sum(1 for p in inv.photos if not p.bad_kind)
        if good >= n_photos:
            return settings, inv
        listings += max(1, math.ceil((n_photos - good) / 12))


def ensure_photos(n_photos: int, seed: int, workers: int, photo_cache: Path = PHOTO_CACHE) -> dict[str, Any]:
    """The inventory's rows and photos: rendered once into ``photo_cache``, linked into ``CACHE/<key>``."""
    from fleetvision.synth.inventory import image_rows, label_rows
    from fleetvision.synth.job import render_inventory
    from fleetvision.synth.render_cache import cache_key
    from fleetvision.taxonomy import load_taxonomy

    settings, _ = plan_for(n_photos, seed)
    key = cache_key(settings, load_taxonomy())
    folder = CACHE / key
    manifest = folder / "inventory.pkl"
    if manifest.is_file():
        logger.info("photos: reusing %s", folder)
        return pickle.loads(manifest.read_bytes())
    photos_dir = folder / "photos"
    inv, files, stats = render_inventory(settings, photos_dir, workers=workers, photo_cache=photo_cache)
    data = {
        "key": key,
        "folder": str(folder),
        "photos_dir": str(photos_dir.resolve()),
        "listings": [lp.row() for lp in inv.listings],
        "images": image_rows(inv.photos, files, inline=False),
        "labels": label_rows(inv.photos, files),
        "photos_good": sum(1 for p in inv.photos if not p.bad_kind),
        "render_seconds": round(stats.seconds, 1),
        "render_workers": stats.workers,
    }
    manifest.write_bytes(pickle.dumps(data))
    return data


def photo_sizes(images: list[dict[str, Any]]) -> dict[str, Any]:
    """Bytes and pixel sizes of the photo files (header reads only), and the formats."""
    from urllib.parse import unquote, urlparse

    from PIL import Image

    sizes, pixels, formats = [], [], {}
    for row in images:
        path = Path(unquote(urlparse(row["uri"]).path))
        try:
            sizes.append(path.stat().st_size)
            with Image.open(path) as im:
                pixels.append(im.size[0] * im.size[1])
                formats[im.format] = formats.get(im.format, 0) + 1
        except Exception:  # broken files are part of the feed: counted, not measured
            formats["unreadable"] = formats.get("unreadable", 0) + 1

    def q(values: list[int], f: float) -> int:
        return sorted(values)[min(len(values) - 1, int(f * len(values)))] if values else 0

    return {
        "files": len(images),
        "bytes_total_mib": round(sum(sizes) / 2**20, 1),
        "bytes_median_kib": round(q(sizes, 0.5) / 1024, 1),
        "bytes_p95_kib": round(q(sizes, 0.95) / 1024, 1),
        "bytes_max_kib": round(max(sizes, default=0) / 1024, 1),
        "megapixels_median": round(q(pixels, 0.5) / 1e6, 2),
        "megapixels_p95": round(q(pixels, 0.95) / 1e6, 2),
        "megapixels_max": round(max(pixels, default=0) / 1e6, 2),
        "formats": formats,
    }


# --------------------------------------------------------------------------------- spark (in a child)
def spark_child(method: str, args: argparse.Namespace) -> int:
    """Run one Spark method (or write the inventory tables) in this process; result JSON to ``--child-out``."""
    import pandas as pd

    from fleetvision.config import load_config
    from fleetvision.spark import build_spark

    work = Path(args.child_work)
    settings = WorkSettings.from_json(args.child_settings)
    config = load_config(overrides=json.loads(args.child_overrides), environ={})
    spark = build_spark(config, app_name=f"fleetvision-bench-peers-{method}")
    try:
        if method == "write_inventory":
            from fleetvision.delta_writes import overwrite_table
            from fleetvision.synth.job import frame
            from fleetvision.tables import IMAGE_LABELS, LISTING_IMAGES, LISTINGS

            data = pickle.loads(Path(args.child_inventory).read_bytes())
            db = config.tables.database
            for spec, rows in ((LISTINGS, data["listings"]), (LISTING_IMAGES, data["images"]),
                               (IMAGE_LABELS, data["labels"])):
                overwrite_table(spark, db, spec, frame(spark, rows, spec), "bench-peers-inventory")
            Path(args.child_out).write_text(json.dumps({"images": len(data["images"])}))
            return 0
        uris = json.loads(Path(args.child_uris).read_text())
        pdf = pd.DataFrame({"uri": uris, "content": [None] * len(uris)})
        images = spark.createDataFrame(pdf, "uri string, content binary").repartition(args.workers).cache()
        images.count()
        if method == "spark_pandas_udf":
            from fleetvision.scoring import ScoringRules
            from fleetvision.scoring.udf import UdfSettings, make_scoring_udf
            from fleetvision.taxonomy import load_taxonomy

            taxonomy = load_taxonomy()
            model_set = StarterModelSet(settings.to_json(), args.child_model_id)
            score = make_scoring_udf(model_set, UdfSettings.from_config(config, environ={}), taxonomy,
                                     ScoringRules.from_config(config.scoring, taxonomy), loader=starter_loader)
            out = images.select(score("uri", "content").alias("p"))
        elif method == "spark_predict_batch_udf":
            from pyspark.ml.functions import predict_batch_udf
            from pyspark.sql import types as T

            settings_json = settings.to_json()

            def make_predict_fn() -> Any:
                from peer_work import infer_uris, load_fused_model

                s = WorkSettings.from_json(settings_json)
                predict = load_fused_model(s)
                return lambda batch: infer_uris(batch.tolist(), predict, s)

            score = predict_batch_udf(make_predict_fn, return_type=T.ArrayType(T.FloatType()),
                                      batch_size=settings.decode_batch)
            out = images.select(score("uri").alias("p"))
        else:
            raise ValueError(f"unknown Spark method {method!r}")
        start = time.perf_counter()
        out.write.format("noop").mode("overwrite").save()
        seconds = time.perf_counter() - start
        Path(args.child_out).write_text(json.dumps({"seconds": round(seconds, 3), "photos": len(uris),
                                                    "workers": args.workers,
                                                    "partitions": images.rdd.getNumPartitions()}))
        return 0
    finally:
        spark.stop()
        shutil.rmtree(work / "spark-tmp", ignore_errors=True)


# ------------------------------------------------------------------------------------------ methods
def run_measured(cmd: list[str], log: Path, cwd: Path | None = None, timeout: float | None = None
                 ) -> tuple[float, dict[str, Any], int]:
    """Run a command, sampling its process tree's RSS; returns wall seconds, the memory report, exit code."""
    logger.info("running: %s", " ".join(cmd[:4]) + (" ..." if len(cmd) > 4 else ""))
    with log.open("ab") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd=cwd or ROOT)
        with RssSampler(proc.pid) as sampler:
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        wall = time.perf_counter() - start
    return wall, sampler.report(), rc


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def method_engine(name: str, python: Path, uris_file: Path, settings: WorkSettings, workers: int, work: Path,
                  log: Path) -> dict[str, Any]:
    engine = {"plain_loop": "plain_loop", "ray_data": "ray", "daft": "daft"}[name]
    result_file = work / f"{name}.json"
    cmd = [str(python), str(PEERS / "run_engine.py"), engine, "--uris", str(uris_file), "--settings",
           settings.to_json(), "--workers", str(workers), "--out", str(result_file)]
    wall, memory, rc = run_measured(cmd, log)
    if rc != 0 or not result_file.is_file():
        return {"error": f"exit {rc}: {_tail(log)}", "wall_seconds": round(wall, 1), **memory}
    return {**json.loads(result_file.read_text()), "wall_seconds": round(wall, 1), **memory}


def method_spark(name: str, uris_file: Path, settings: WorkSettings, over: list[str], workers: int,
                 work: Path, log: Path, model_id: str, inventory: Path | None = None) -> dict[str, Any]:
    result_file = work / f"{name}.json"
    cmd = [str(MAIN_PYTHON), str(Path(__file__).resolve()), "--child", name, "--workers", str(workers),
           "--child-out", str(result_file), "--child-work", str(work), "--child-settings", settings.to_json(),
           "--child-overrides", json.dumps(over), "--child-uris", str(uris_file), "--child-model-id", model_id]
    if inventory is not None:
        cmd += ["--child-inventory", str(inventory)]
    wall, memory, rc = run_measured(cmd, log)
    if rc != 0 or not result_file.is_file():
        return {"error": f"exit {rc}: {_tail(log)}", "wall_seconds": round(wall, 1), **memory}
    return {**json.loads(result_file.read_text()), "wall_seconds": round(wall, 1), **memory}


_RUN_CLOCK = re.compile(r"^\s*time\s+(\d+(?:\.\d+)?)s\b")  # the summary's "time  514.1s (...): stages"


def method_job(over: list[str], work: Path, log: Path, n_images: int) -> dict[str, Any]:
    """Register the starter models (untimed), then time ``fleetvision score --mode full``."""
    cli = ROOT / ".venv" / "bin" / "fleetvision"
    sets = ["--conf", str(ROOT / "conf" / "local.yaml"), *(a for o in over for a in ("--set", o))]
    with log.open("ab") as out:
        rc = subprocess.run([str(cli), "promote", "--starter", *sets], stdout=out, stderr=subprocess.STDOUT,
                            env=_env(), cwd=work).returncode
    if rc != 0:
        return {"error": f"promote --starter exit {rc}: {_tail(log)}"}
    job_log = work / "job_full.log"
    wall, memory, rc = run_measured([str(cli), "score", "--mode", "full", "--no-mlflow", *sets], job_log, cwd=work)
    text = job_log.read_text(errors="replace")
    with log.open("a") as out:
        out.write(text)
    if rc != 0:
        return {"error": f"score exit {rc}: {_tail(job_log, 25)}", "wall_seconds": round(wall, 1), **memory}
    summary = [line for line in text.splitlines() if re.search(r"seconds|images|photos/s|stage|infer", line)]
    clock = [float(m.group(1)) for line in summary if (m := _RUN_CLOCK.search(line))]
    return {"seconds": round(wall, 3), "photos": n_images, "workers": None, "timed": "the score process, start to exit",
            "run_clock_seconds": clock[-1] if clock else None, "summary_lines": summary[-40:], **memory}


def run_method(name: str, args: argparse.Namespace, work: Path, log: Path, uris: list[str], uris_file: Path,
               settings: WorkSettings, over: list[str], model_id: str, inventory: Path) -> dict[str, Any]:
    """One cold reading of one method, with the load average before and after it."""
    load_before = round(os.getloadavg()[0], 2)
    logger.info("method %s: %d photos", name, len(uris))
    if name == "plain_loop":
        r = method_engine(name, MAIN_PYTHON, uris_file, settings, args.workers, work, log)
    elif name in ("ray_data", "daft"):
        r = method_engine(name, args.peers_python, uris_file, settings, args.workers, work, log)
    elif name.startswith("spark_"):
        r = method_spark(name, uris_file, settings, over, args.workers, work, log, model_id)
    else:
        prep = method_spark("write_inventory", uris_file, settings, over, args.workers, work, log, model_id,
                            inventory)
        r = prep if "error" in prep else method_job(over, work, log, len(uris))
    r["load_average_1m_before"] = load_before
    r["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return r


def fresh_job_state(work: Path) -> None:
    """Remove what a ``job_full`` reading left (warehouse with its metastore, MLflow store, artifacts)."""
    for name in ("warehouse", "artifacts", "reports", "spark-tmp"):
        shutil.rmtree(work / name, ignore_errors=True)
    (work / "mlflow.db").unlink(missing_ok=True)


def warm_page_cache(photos_dir: Path) -> tuple[int, float, float]:
    """Read every photo once, untimed, so no method pays for the first read from disk."""
    start, files, size = time.perf_counter(), 0, 0
    for path in sorted(photos_dir.rglob("*")):
        if path.is_file():
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    size += len(chunk)
            files += 1
    return files, size / (1 << 20), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--photos", type=int, default=10_000, help="at least this many decodable photos")
    parser.add_argument("--workers", type=int, default=2, help="Spark cores, Ray actors, Daft processes")
    parser.add_argument("--decode-batch", type=int, default=256)
    parser.add_argument("--model-batch", type=int, default=64)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    parser.add_argument("--peers-python", type=Path, default=PEERS_PYTHON)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of readings, the methods' order reversed every other round (A B C C B A); "
                             "each method reports its median reading (default 3; 1 for a quick look)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for the Spark methods and job_full, e.g. scoring.one_pass=never "
                             "(repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for hidden in ("out", "work", "settings", "overrides", "uris", "model-id", "inventory"):
        parser.add_argument(f"--child-{hidden}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "absl", "tensorflow", "alembic", "urllib3", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.child:
        return spark_child(args.child, args)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if {"ray_data", "daft"} & set(methods) and not args.peers_python.is_file():
        parser.error(f"{args.peers_python} is missing: build the peers venv first (make bench-peers does)")
    host = machine()
    from fleetvision.config import load_config

    defaults = load_config(overrides=[], environ={})
    data = ensure_photos(args.photos, SEED, args.workers)
    photos_dir = Path(data["photos_dir"])
    uris = [row["uri"] for row in data["images"]]
    sizes = photo_sizes(data["images"])
    logger.info("photos: %d images (%s MiB) in %s", len(uris), sizes["bytes_total_mib"], photos_dir)

    work = Path(tempfile.mkdtemp(prefix="fv-peers-"))
    log = work / "bench_peers.log"
    try:
        starter = work / "starter"
        shutil.copytree(ROOT / "models" / "starter", starter)
        digest = hashlib.sha256()
        for path in sorted(starter.rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(starter).as_posix().encode() + path.read_bytes())
        model_id = f"starter-{digest.hexdigest()[:12]}"
        settings = WorkSettings(
            starter_dir=str(starter), photo_root=str(photos_dir), image_size=defaults.models.input_size,
            max_pixels=defaults.scoring.max_image_pixels, max_declared_pixels=defaults.scoring.max_declared_pixels,
            max_bytes=defaults.scoring.max_image_bytes, decode_batch=args.decode_batch, model_batch=args.model_batch,
        )
        uris_file = work / "uris.json"
        uris_file.write_text(json.dumps(uris))
        inventory = work / "inventory.pkl"
        shutil.copy(Path(data["folder"]) / "inventory.pkl", inventory)
        over = overrides(work, photos_dir, starter, args.workers, args.decode_batch, args.model_batch)
        over += args.overrides

        warm = warm_page_cache(photos_dir)
        logger.info("page cache: read %d files (%.0f MiB) in %.1f s before timing", *warm)
        rounds: list[dict[str, dict[str, Any]]] = []
        results: dict[str, dict[str, Any]] = {}
        for round_index in range(args.repeat):
            rounds.append({})
            for name in round_order(methods, round_index):
                if name == "job_full" and round_index:
                    fresh_job_state(work)  # each reading of the job starts from an empty warehouse
                r = run_method(name, args, work, log, uris, uris_file, settings, over, model_id, inventory)
                rounds[-1][name] = r
                logger.info("round %d, method %s: %s", round_index + 1, name,
                            {k: r.get(k) for k in ("seconds", "photos_decoded", "error", "peak_rss_mib_per_worker")})
                results = {m: combine_readings([rd[m] for rd in rounds if m in rd])
                           for m in methods if any(m in rd for rd in rounds)}
                # written after every reading, so a run stopped part-way still leaves what it measured
                write_report(args, data, sizes, settings, model_id, host, results, methods, rounds)
        report = write_report(args, data, sizes, settings, model_id, host, results, methods, rounds)
        print(markdown_table(report))
        print(f"results: {args.out}; log: {log}")
        return 0 if all("error" not in r for r in results.values()) else 1
    finally:
        if os.environ.get("BENCH_PEERS_KEEP"):
            logger.info("kept %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def write_report(args: argparse.Namespace, data: dict[str, Any], sizes: dict[str, Any], settings: WorkSettings,
                 model_id: str, host: dict[str, Any], results: dict[str, dict[str, Any]], methods: list[str],
                 rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """peers.json from what has been measured so far (``methods_pending`` names the rest).

    With ``--repeat`` each method's entry is its median reading (``readings_seconds`` holds them all), and
    ``head_to_head`` compares the job's UDF with each peer round by round, in the same round's readings.
    """
    n = len(data["images"])
    report = {
        "benchmark": "peers",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "PYTHONPATH=src:benchmarks/peers .venv/bin/python benchmarks/bench_peers.py "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "photos": n,
        "photos_planned_good": data["photos_good"],
        "photos_planned_broken": n - data["photos_good"],
        "photo_files": sizes,
        "photos_cache": data["key"],
        "model": {"starter_models": "models/starter", "model_set_id": model_id, "fused": "one backbone pass"},
        "settings": {"workers": args.workers, "decode_batch": args.decode_batch, "model_batch": args.model_batch,
                     "input_size": settings.image_size, "overrides": args.overrides},
        "machine": host,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "methods": peers_table(results),
        "methods_pending": [m for m in methods if m not in results],
        "rounds": len(rounds),
        "rounds_planned": args.repeat,
        "rounds_seconds": [{m: r.get("seconds") for m, r in rd.items()} for rd in rounds],
        # each method against the floor read in the same round (median over rounds; robust to a slow round)
        "ratio_to_floor_by_round": {m: head_to_head(rounds, m, ["plain_loop"])["plain_loop"]["median_speed_ratio"]
                                    for m in methods if m != "plain_loop"} if "plain_loop" in methods else {},
        "head_to_head": {"spark_pandas_udf": head_to_head(
            rounds, "spark_pandas_udf", [m for m in ("spark_predict_batch_udf", "ray_data", "daft") if m in methods])}
        if "spark_pandas_udf" in methods else {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def markdown_table(report: dict[str, Any]) -> str:
    """The runbook's table, from the JSON (with the spread of the readings when a method has several)."""
    rows = ["| method | photos/s | vs the plain loop | readings (s) | peak RSS per worker (MiB) | workers |",
            "|---|---|---|---|---|---|"]
    for name, m in report["methods"].items():
        if m.get("photos_per_second") is None:
            rows.append(f"| {name} | failed | | | | |")
            continue
        ratio = "" if m.get("ratio_to_floor") is None else f"{m['ratio_to_floor']:.2f}"
        readings = " / ".join(f"{x:.1f}" for x in m.get("readings_seconds", [m["seconds"]]))
        rows.append(f"| {name} | {m['photos_per_second']:.1f} | {ratio} | {readings} | "
                    f"{m.get('peak_rss_mib_per_worker')} | {m.get('workers_seen')} |")
    for i, (other, h) in enumerate(report.get("head_to_head", {}).get("spark_pandas_udf", {}).items()):
        lead = "" if i else "\n"
        rows.append(f"{lead}the job's UDF against {other}: faster in {h['wins']} of {h['rounds']} rounds, "
                    f"median speed ratio {h['median_speed_ratio']}")
    return "\n".join(rows)

if __name__ == "__main__":
    sys.exit(main())
