"""Model cost per photo: a model set as scoring runs it (fused), unfused, and one backbone pass alone.

    .venv/bin/python benchmarks/bench_model_cost.py                                   # models/starter
    .venv/bin/python benchmarks/bench_model_cost.py --set old=/tmp/old_starter --set new=models/starter

For each set (a folder of ``<task>/head.keras`` + ``backbone.json`` or ``<task>/model.keras``):
* ``fused``: the set as the scoring workers run it (``serving.load_models``: task models on one shared
  pretrained backbone fused into one model, one backbone pass per photo, with the angle and plate heads run
  again on the reversed feature maps for the photo's mirror image, ``fleetvision.scoring.mirror_image``);
* ``fused_no_mirror``: the same without those second head passes, so ``fused / fused_no_mirror`` is
  their cost;
* ``unfused``: every task model on its own (what scoring did before fusion);
* ``backbone``: one pass of the shared backbone alone (pretrained sets), so ``fused / backbone`` is the
  heads' overhead.
Inference only, uint8 photos at the set's input size, batches of 64, best of 3 interleaved rounds (the
machine is shared and noisy; ratios in one run are what to compare). Writes
``benchmarks/results/model_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "model_cost.json"
BATCH = 64
PHOTOS = 256
ROUNDS = 3


def _timed(fn: Callable[[np.ndarray], object], photos: np.ndarray) -> float:
    start = time.perf_counter()
    for i in range(0, len(photos), BATCH):
        fn(photos[i : i + BATCH])
    return (time.perf_counter() - start) / len(photos) * 1000.0


def measure(sets: dict[str, Path]) -> dict[str, object]:
    """ms per photo of each set's variants (see the module docstring)."""
    import tensorflow as tf

    from fleetvision.models.pretrained import fuse_task_models, nested_backbone
    from fleetvision.models.serving import predict_fn_for, read_model_folder
    from fleetvision.models.spec import TASK_OUTPUTS

    variants: dict[str, dict[str, Callable[[np.ndarray], object]]] = {}
    sizes: dict[str, int] = {}
    passes: dict[str, int] = {}
    for name, folder in sets.items():
        loaded = read_model_folder(folder)
        models, size = loaded.models, loaded.input_size
        sizes[name] = size
        fused = loaded.predictors()
        passes[name] = len(fused)
        fns = {
            "fused": list(fused.values()),
            "fused_no_mirror": [
                predict_fn_for(m, size, [o for t in tasks for o in TASK_OUTPUTS[t]])
                for tasks, m in fuse_task_models(models, mirror=False)
            ],
            "unfused": [predict_fn_for(m, size, TASK_OUTPUTS[t]) for t, m in models.items()],
        }
        backbone = nested_backbone(next(iter(models.values())))
        if backbone is not None:
            forward = tf.function(lambda x, b=backbone: b(tf.cast(x, tf.float32), training=False))
            fns["backbone"] = [lambda x, f=forward: f(tf.constant(x))]
        variants[name] = {k: (lambda x, fs=v: [f(x) for f in fs]) for k, v in fns.items()}
    rng = np.random.default_rng(0)
    photos = {n: rng.integers(0, 256, (PHOTOS, s, s, 3), dtype=np.uint8) for n, s in sizes.items()}
    best: dict[str, dict[str, float]] = {n: {} for n in sets}
    for name, fns in variants.items():  # warm up: trace every graph once
        for fn in fns.values():
            fn(photos[name][:BATCH])
    for _ in range(ROUNDS):
        for name, fns in variants.items():
            for key, fn in fns.items():
                ms = _timed(fn, photos[name])
                best[name][key] = min(best[name].get(key, float("inf")), ms)
    report: dict[str, object] = {
        "sets": {
            n: {
                "folder": str(sets[n]),
                "input_size": sizes[n],
                "ms_per_photo": {k: round(v, 3) for k, v in best[n].items()},
                "fused_over_backbone": round(best[n]["fused"] / best[n]["backbone"], 3)
                if "backbone" in best[n]
                else None,
                "fused_over_fused_no_mirror": round(best[n]["fused"] / best[n]["fused_no_mirror"], 3),
                "passes_fused": passes[n],
            }
            for n in sets
        },
        "batch": BATCH,
        "photos": PHOTOS,
        "rounds": ROUNDS,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()[0]},
    }
    names = list(sets)
    if len(names) == 2:
        a, b = names
        report[f"{b}_over_{a}"] = round(best[b]["fused"] / best[a]["fused"], 3)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=DIR", help="a model set (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sets = dict(s.split("=", 1) for s in args.set) if args.set else {"starter": str(ROOT / "models" / "starter")}
    report = measure({n: Path(d) for n, d in sets.items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, row in report["sets"].items():  # type: ignore[union-attr]
        print(f"{name}: {row['input_size']} px, ms/photo {row['ms_per_photo']}, "
              f"fused/backbone {row['fused_over_backbone']}, mirror heads {row['fused_over_fused_no_mirror']}")
    for key, value in report.items():
        if key.endswith("_over_" + next(iter(sets))):
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
