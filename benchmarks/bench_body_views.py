"""Body model with 1, 2 and 4 views: accuracy on the frozen evaluation photos and compute, in one run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_body_views.py --model path/to/body/model.keras
    .venv/bin/python benchmarks/bench_body_views.py --model path/to/body/model.keras --seed 4004

Multi-view body models exist for end-to-end backbones (``mobilenet_v3_small``); the default pretrained
backbone's body head answers from one view, so this benchmark is no longer part of ``make bench``. The
committed ``benchmarks/results/body_views.json`` is the MobileNetV3 starter body model's (before the
pretrained backbone). The angle, banner and plate models beside ``--model`` are timed when they exist.

The photos are rendered in-process exactly as ``fleetvision generate --eval-set`` renders the frozen set
(``synth.eval_seed``, ``synth.eval_per_class``, ``synth.train_image_size`` by default, market body mix),
decoded by the scoring decoder at ``models.input_size``; only exterior shots carry a body label.
Accuracy and macro recall come from :func:`fleetvision.models.eval_metrics.evaluate_body`, as in
``fleetvision evaluate``. The three variants are the same weights
(:func:`fleetvision.models.architecture.with_body_views`). Time is model inference only, batches of
128, interleaved round by round, best round; for scale, the angle, banner and plate starter models are
timed the same way, so ``model_set_ratio`` is what the views cost the four models together. Results are
ratios and go to ``benchmarks/results/body_views.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "body_views.json"
BATCH = 128

logger = logging.getLogger("bench_body_views")


def _predict_seconds(predict, images: np.ndarray) -> float:
    start = time.perf_counter()
    for i in range(0, len(images), BATCH):
        predict(images[i : i + BATCH])
    return time.perf_counter() - start


def run(model_path: Path, seed: int | None, per_class: int | None, repeats: int) -> dict[str, object]:
    import keras

    from fleetvision.config import load_config
    from fleetvision.decode import decode_batch
    from fleetvision.models.architecture import with_body_views
    from fleetvision.models.eval_metrics import EvalLabels, evaluate_body
    from fleetvision.models.serving import predict_fn_for
    from fleetvision.synth.training_set import training_rows
    from fleetvision.taxonomy import load_taxonomy

    config = load_config(environ={})
    taxonomy = load_taxonomy()
    size, seed = config.models.input_size, config.synth.eval_seed if seed is None else seed
    per_class = config.synth.eval_per_class if per_class is None else per_class
    rows = [
        r
        for r in training_rows(
            taxonomy, config.market, seed, per_class, "eval", f"bench-s{seed}", config.synth.train_image_size
        )
        if r["body_index"] >= 0
    ]
    images, _ = decode_batch([r["content"] for r in rows], size, config.scoring.max_image_pixels)
    truth = np.array([r["body_index"] for r in rows])
    unknown = np.full(len(rows), -1)  # only the body labels are scored here
    labels = EvalLabels(unknown, unknown, unknown, np.zeros((len(rows), 4), np.float32), unknown, truth)
    source = keras.saving.load_model(model_path, compile=False)
    variants = {v: predict_fn_for(with_body_views(source, v, config.models.body_zoom), size) for v in (1, 2, 4)}
    others = {
        t: predict_fn_for(keras.saving.load_model(model_path.parent.parent / t / "model.keras", compile=False), size)
        for t in ("angle", "banner", "plate")
        if (model_path.parent.parent / t / "model.keras").is_file()
    }
    results: dict[int, dict[str, object]] = {}
    for views, predict in variants.items():
        scores = np.concatenate([predict(images[i : i + BATCH])["body"] for i in range(0, len(images), BATCH)])
        guess = scores.argmax(axis=1)
        by_shot: dict[str, list[bool]] = defaultdict(list)
        for row, g, t in zip(rows, guess, truth, strict=True):
            by_shot[row["angle"]].append(bool(g == t))
        metrics = evaluate_body(scores, labels, taxonomy).metrics  # what `fleetvision evaluate body` reports
        results[views] = {
            "accuracy": round(metrics["accuracy"], 4),
            "macro_recall": round(metrics["macro_recall"], 4),
            "accuracy_by_shot": {k: round(float(np.mean(v)), 3) for k, v in sorted(by_shot.items())},
        }
    for predict in (*variants.values(), *others.values()):
        predict(images[:BATCH])  # warm up: the first call of each model traces its graph
    timed: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):  # interleaved: every variant sees the same machine state in each round
        for views, predict in variants.items():
            timed[f"body_{views}"].append(_predict_seconds(predict, images))
        for task, predict in others.items():
            timed[task].append(_predict_seconds(predict, images))
    best = {k: min(v) for k, v in timed.items()}
    rest = best["angle"] + best["banner"] + best["plate"]
    for views in variants:
        body = best[f"body_{views}"]
        results[views].update(
            {
                "body_ms_per_photo": round(1000 * body / len(images), 3),
                "body_ratio": round(body / best["body_1"], 2),
                "model_set_ms_per_photo": round(1000 * (rest + body) / len(images), 3),
                "model_set_ratio": round((rest + body) / (rest + best["body_1"]), 2),
            }
        )
    return {
        "benchmark": "body model views: accuracy and inference time",
        "model": str(model_path.relative_to(ROOT) if model_path.is_relative_to(ROOT) else model_path),
        "eval_seed": seed,
        "photos": len(images),
        "input_size": size,
        "zoom": config.models.body_zoom,
        "batch": BATCH,
        "repeats": repeats,
        "views": {str(k): v for k, v in results.items()},
        "ms_per_photo_other_models": {t: round(1000 * best[t] / len(images), 3) for t in others},
        "seconds_rounds": {k: [round(t, 3) for t in v] for k, v in timed.items()},
        "python": platform.python_version(),
        "keras": keras.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, required=True,
        help="a body model with flat head layers (an end-to-end backbone such as mobilenet_v3_small); the "
        "default pretrained-backbone body heads answer from one view",
    )
    parser.add_argument("--seed", type=int, default=None, help="render seed (default synth.eval_seed)")
    parser.add_argument("--per-class", type=int, default=None, help="photos per class (default synth.eval_per_class)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = run(args.model.resolve(), args.seed, args.per_class, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for views, r in result["views"].items():
        logger.info(
            "%s view(s): accuracy %.4f, body %.2f ms/photo (x%.2f), four models %.2f ms/photo (x%.2f)",
            views, r["accuracy"], r["body_ms_per_photo"], r["body_ratio"], r["model_set_ms_per_photo"],
            r["model_set_ratio"],
        )
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
