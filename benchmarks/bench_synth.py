"""Benchmark the synthetic photo generator: photos per second per core.

Three measurements, each reported as wall-clock photos/s per worker and CPU-time photos/s (the
latter is what a core can do when it is not shared):

- ``train_256``: :func:`fleetvision.synth.training_set.training_rows` at 256 px (render + JPEG), one process;
- ``inventory_1p``: inventory photos at their real file sizes (640x480 .. 2560x1920, JPEG/PNG/WebP),
  rendered and written by one process;
- ``inventory_np``: the same photos on ``--workers`` processes (spawned; includes their start-up).

Usage::

    .venv/bin/python benchmarks/bench_synth.py [--photos 270] [--listings 20] [--workers 0] [--out FILE]

Prints one JSON object (and writes it to ``--out`` if given). No Spark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    from fleetvision.config import MarketConfig
    from fleetvision.synth.inventory import InventorySettings, plan_inventory, render_plans, resolve_workers
    from fleetvision.synth.training_set import training_rows
    from fleetvision.taxonomy import load_taxonomy

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=270, help="training photos to render (multiple of 27)")
    parser.add_argument("--listings", type=int, default=20, help="inventory listings to render")
    parser.add_argument("--workers", type=int, default=0, help="processes for inventory_np (0 = cores)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    taxonomy = load_taxonomy()
    results: dict[str, object] = {
        "host": platform.node(), "cores": len(os.sched_getaffinity(0)), "loadavg_before": os.getloadavg()[0],
    }

    per_class = max(1, args.photos // taxonomy.num_classes)
    t, c = time.perf_counter(), time.process_time()
    n = sum(1 for _ in training_rows(taxonomy, MarketConfig(), args.seed, per_class, "train", "bench", 256))
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    results["train_256"] = {"photos": n, "wall_s": round(wall, 2), "photos_per_s_per_core": round(n / wall, 1),
                            "photos_per_cpu_s": round(n / cpu, 1)}

    inv = plan_inventory(InventorySettings(seed=args.seed, n_listings=args.listings), taxonomy)
    with tempfile.TemporaryDirectory() as tmp:
        t, c = time.perf_counter(), time.process_time()
        _, stats = render_plans(inv.photos, Path(tmp) / "one", keep_bytes=False, workers=1)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        sizes = [p.stat().st_size for p in (Path(tmp) / "one").iterdir()]
        results["inventory_1p"] = {
            "photos": stats.photos, "wall_s": round(wall, 2), "photos_per_s_per_core": round(stats.photos / wall, 1),
            "photos_per_cpu_s": round(stats.photos / cpu, 1),
            "mean_file_kb": round(sum(sizes) / len(sizes) / 1024, 1), "total_mb": round(sum(sizes) / 2**20, 1),
        }
        workers = resolve_workers(args.workers)
        t, c = time.perf_counter(), _cpu_children()
        _, stats = render_plans(inv.photos, Path(tmp) / "many", keep_bytes=False, workers=workers, chunk=8)
        wall, cpu = time.perf_counter() - t, _cpu_children() - c
        results["inventory_np"] = {
            "photos": stats.photos, "workers": stats.workers, "wall_s": round(wall, 2),
            "photos_per_s_per_core": round(stats.per_second_per_core, 1),
            "photos_per_cpu_s": round(stats.photos / cpu, 1) if cpu > 0 else None,
        }
    results["loadavg_after"] = os.getloadavg()[0]
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
