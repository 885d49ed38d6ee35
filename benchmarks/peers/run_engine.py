"""One engine's pass over the photos, in its own process (``benchmarks/bench_peers.py`` starts it).

    PYTHONPATH=src:benchmarks/peers python benchmarks/peers/run_engine.py ENGINE --uris U.json \
        --settings '<WorkSettings JSON>' --workers 2 --out result.json

Engines: ``plain_loop`` (this process, one batch after another: the floor), ``ray`` (Ray Data
``map_batches`` with an actor pool of ``--workers`` actors) and ``daft`` (a ``@daft.cls`` UDF class
with ``--workers`` processes). ``ray`` and ``daft`` need the peers venv (pyarrow >= 15, numpy 2);
``plain_loop`` runs in either. Each loads the fused starter model once per worker (inside the timed
pass, as a nightly run pays it) and times everything from the first batch to the last result held
in memory. The engine's own start (``ray.init``) is outside the pass and reported as ``setup_seconds``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from peer_work import OUTPUT_WIDTH, WorkSettings, infer_uris, load_fused_model

logger = logging.getLogger("run_engine")


def run_plain_loop(uris: list[str], settings: WorkSettings, workers: int) -> dict[str, Any]:
    start = time.perf_counter()
    predict = load_fused_model(settings)
    load = time.perf_counter() - start
    parts = [infer_uris(uris[i : i + settings.decode_batch], predict, settings)
             for i in range(0, len(uris), settings.decode_batch)]
    seconds = time.perf_counter() - start
    out = np.concatenate(parts)
    return {"seconds": seconds, "model_load_seconds": round(load, 2), "out": out, "workers": 1}


class RayScorer:
    """A Ray Data actor: the fused model loaded once, then one decoded batch per call."""

    def __init__(self, settings_json: str) -> None:
        self.settings = WorkSettings.from_json(settings_json)
        self.predict = load_fused_model(self.settings)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"scores": infer_uris(batch["uri"].tolist(), self.predict, self.settings)}


def run_ray(uris: list[str], settings: WorkSettings, workers: int) -> dict[str, Any]:
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", ""),
                                       "TF_CPP_MIN_LOG_LEVEL": "2"}})
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    setup = time.perf_counter() - start
    try:
        start = time.perf_counter()
        ds = ray.data.from_items([{"uri": u} for u in uris], override_num_blocks=max(workers * 4, 1))
        scored = ds.map_batches(
            RayScorer,
            fn_constructor_kwargs={"settings_json": settings.to_json()},
            batch_size=settings.decode_batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        out = np.concatenate([b["scores"] for b in scored.iter_batches(batch_size=None, batch_format="numpy")])
        seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    return {"seconds": seconds, "setup_seconds": round(setup, 2), "out": out, "workers": workers,
            "engine_version": ray.__version__}


def run_daft(uris: list[str], settings: WorkSettings, workers: int) -> dict[str, Any]:
    import daft
    import pyarrow as pa

    @daft.cls(max_concurrency=workers, use_process=True)
    class DaftScorer:
        """A Daft UDF class: the fused model loaded once per process, one decoded batch per call."""

        def __init__(self, settings_json: str) -> None:
            self.settings = WorkSettings.from_json(settings_json)
            self.predict = load_fused_model(self.settings)

        @daft.method.batch(return_dtype=daft.DataType.fixed_size_list(daft.DataType.float32(), OUTPUT_WIDTH),
                           batch_size=settings.decode_batch)
        def __call__(self, uri: daft.Series) -> pa.Array:
            scores = infer_uris(uri.to_pylist(), self.predict, self.settings)
            return pa.FixedSizeListArray.from_arrays(pa.array(scores.ravel()), OUTPUT_WIDTH)

    start = time.perf_counter()
    scorer = DaftScorer(settings.to_json())
    df = daft.from_pydict({"uri": uris}).into_partitions(max(workers * 4, 1))
    result = df.select(scorer(df["uri"]).alias("scores")).to_arrow()
    seconds = time.perf_counter() - start
    col = result.column("scores").combine_chunks()
    out = col.values.to_numpy(zero_copy_only=False).reshape(-1, OUTPUT_WIDTH)
    return {"seconds": seconds, "out": out, "workers": workers, "engine_version": daft.__version__}


ENGINES = {"plain_loop": run_plain_loop, "ray": run_ray, "daft": run_daft}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=sorted(ENGINES))
    parser.add_argument("--uris", type=Path, required=True, help="JSON list of photo uris")
    parser.add_argument("--settings", required=True, help="WorkSettings as JSON")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uris = json.loads(args.uris.read_text())
    settings = WorkSettings.from_json(args.settings)
    result = ENGINES[args.engine](uris, settings, args.workers)
    out = result.pop("out")
    if out.shape != (len(uris), OUTPUT_WIDTH):
        raise ValueError(f"{args.engine}: output shape {out.shape}, expected ({len(uris)}, {OUTPUT_WIDTH})")
    ok = ~np.isnan(out).any(axis=1)
    result.update({
        "photos": len(uris), "photos_decoded": int(ok.sum()), "seconds": round(result["seconds"], 3),
        "mean_angle_score_sum": round(float(out[ok, :27].sum(axis=1).mean()), 4) if ok.any() else None,
        "checksum": round(float(np.nansum(out)), 3), "numpy": np.__version__,
        "python_env": sys.prefix,
    })
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    logger.info("%s: %d photos in %.1fs", args.engine, len(uris), result["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
