"""Fit the plate-position flank cue (``scoring.plate_flank_*``) on renders, and measure what it does.

Run from the repository root (about 10 minutes on the 2-core machine with a cold cache, seconds with a
warm one)::

    .venv/bin/python benchmarks/fit_plate_flank.py                      # starter models
    .venv/bin/python benchmarks/fit_plate_flank.py --painter 40 --pbr 0 --eval-per-class 0 --out /tmp/x.json

What it does (``fleetvision.scoring.plate_flank`` for the cue itself):

1. Renders front and rear 3/4 exteriors, the four sided classes in turn, with the painter and with the
   path tracer (``fleetvision.synth.render.render_photo`` / ``training_set.path_traced``; every market's
   plate style in turn, the generator's own banners, crops and neighbours), under their own seed, never
   the training or evaluation seeds. Cached under ``benchmarks/.cache/plate_flank`` by renderer, count,
   seed and the generator's code.
2. Scores them with a model set as the scoring job does (decode at the models' size, the task models
   fused on one backbone pass) and keeps the angle softmax, plate presence and plate box.
3. Fits ``(strength, outlier_rate)`` by maximum likelihood (``plate_flank.fit_plate_flank``) on the
   3/4 photos of both renderers, each renderer's photos weighing one half; each renderer's own fit is
   reported beside it. Real photos play no part.
4. Reports the flank accuracy on these renders with the head alone and with the cue, and, on the
   synthetic evaluation set as ``fleetvision generate --eval-set`` draws it (``--eval-per-class`` per
   class, ``synth.eval_seed``; painter), the angle top-1 and mirror-pair accuracy with and without it:
   the synthetic targets the cue must not break.

The real dev figures with the fitted setting come from ``bench_real_dev.py`` (which scores with the
config's ``scoring.plate_flank_*``). Result: ``benchmarks/results/plate_flank_fit.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from bench_cache import pack_photos, save_npz, synth_digest, unpack_photos

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ROOT / "models" / "starter"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "plate_flank_fit.json"
DEFAULT_CACHE = ROOT / "benchmarks" / ".cache" / "plate_flank"
RENDERERS = ("painter", "pbr")
SIDED_3Q = ("front_3q_driver", "front_3q_passenger", "rear_3q_driver", "rear_3q_passenger")
LONG_SIDE = 288  # the starter recipe's synth.train_image_size
PBR_SAMPLES = 12  # synth.pbr_samples' default

logger = logging.getLogger("fit_plate_flank")


def render_one(renderer: str, seed: int, i: int) -> tuple[bytes, str]:
    """Photo ``i`` of a set: JPEG bytes and its flank class (``front_3q_left``, ...)."""
    from fleetvision.synth.files import encode_jpeg
    from fleetvision.synth.overlays import PLATE_STYLES
    from fleetvision.synth.photo_spec import sample_spec
    from fleetvision.synth.render import render_photo
    from fleetvision.synth.rng import derive_rng
    from fleetvision.synth.training_set import path_traced, training_size
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    shot = SIDED_3Q[i % len(SIDED_3Q)]
    rng = derive_rng(seed, "plate-flank", renderer, i)
    spec = sample_spec(rng, taxonomy, shot, driver_side="right", plate_style=PLATE_STYLES[i % len(PLATE_STYLES)],
                       size=training_size(rng, LONG_SIDE))
    image = path_traced(spec, PBR_SAMPLES, taxonomy).image if renderer == "pbr" else render_photo(spec).image
    quality = int(rng.integers(60, 96))
    return encode_jpeg(image, quality), taxonomy.market_to_flank(shot, "right")


def rendered_set(renderer: str, n: int, seed: int, cache: Path, workers: int) -> dict[str, Any]:
    """``n`` sided 3/4 renders (``photos``, ``flank_class``, ``render_s``), cached."""
    path = cache / f"photos-{renderer}-n{n}-s{seed}-{synth_digest()}.npz"
    if not path.is_file():
        start = time.perf_counter()
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                done = list(pool.map(render_one, [renderer] * n, [seed] * n, range(n), chunksize=8))
        else:  # in this process: no fork (a caller that has TensorFlow loaded must not fork)
            done = [render_one(renderer, seed, i) for i in range(n)]
        render_s = time.perf_counter() - start
        save_npz(path, **pack_photos([p for p, _ in done]), flank_class=np.array([c for _, c in done]),
                 render_s=np.array(render_s))
        logger.info("%s: %d photos rendered in %.0f s", renderer, n, render_s)
    with np.load(path) as data:
        return {"photos": unpack_photos(data["jpeg"], data["ends"]), "flank_class": data["flank_class"].astype(str),
                "render_s": float(data["render_s"])}


def scorer(models_dir: Path) -> tuple[Any, int]:
    """``score(list of JPEG bytes) -> outputs`` with the task models fused as the scoring job fuses them."""
    from fleetvision import decode
    from fleetvision.models.serving import read_model_folder
    from fleetvision.scoring.tags import validate_outputs
    from fleetvision.scoring.udf import run_models
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    folder = read_model_folder(models_dir)
    size, models = folder.input_size, folder.predictors()

    def score(photos: Sequence[bytes]) -> dict[str, np.ndarray]:
        batch, decoded = decode.decode_batch(list(photos), size, 64_000_000)
        if not all(p.ok for p in decoded):
            raise ValueError("a rendered photo did not decode")
        return validate_outputs(run_models(models, batch, 32), len(batch), taxonomy)

    return score, size


def signed_offsets(plate_box: np.ndarray, flank_classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The plate's centre x - 0.5 times each photo's pair sign (positive: says left), and the 3/4 mask."""
    from fleetvision.scoring.plate_flank import PAIR_SIGNS

    families = [c.rsplit("_", 1)[0] for c in flank_classes]
    signs = np.array([PAIR_SIGNS.get(f, 0.0) for f in families])
    centre = (np.asarray(plate_box)[:, 0] + np.asarray(plate_box)[:, 2]) / 2.0 - 0.5
    return centre * signs, signs != 0


def flank_accuracy(angle: np.ndarray, flank_classes: Sequence[str]) -> float:
    """Share of photos whose own 3/4 pair is split towards the labelled flank."""
    from fleetvision.taxonomy import load_taxonomy

    names = list(load_taxonomy().flank_names)
    hits = []
    for row, cls in zip(angle, flank_classes):
        family, flank = cls.rsplit("_", 1)
        other = "right" if flank == "left" else "left"
        hits.append(row[names.index(cls)] > row[names.index(f"{family}_{other}")])
    return round(float(np.mean(hits)), 4) if hits else float("nan")


def eval_set_effect(score: Any, per_class: int, fitted: tuple[float, float]) -> dict[str, Any]:
    """Angle top-1 and mirror-pair accuracy on the synthetic eval set, without and with the cue."""
    from fleetvision.config import load_config
    from fleetvision.models.eval_metrics import EvalLabels, evaluate_angle
    from fleetvision.scoring.plate_flank import plate_flank
    from fleetvision.synth.training_set import training_rows
    from fleetvision.taxonomy import load_taxonomy

    config = load_config(None, environ={})
    taxonomy = load_taxonomy()
    start = time.perf_counter()
    rows = list(training_rows(taxonomy, config.market, config.synth.eval_seed, per_class, "eval", "synthetic-eval",
                              LONG_SIDE))
    render_s = time.perf_counter() - start
    out = score([r["content"] for r in rows])
    index = np.array([taxonomy.flank_permutation(config.market.driver_side)[r["angle_index"]] for r in rows])
    n = len(rows)
    labels = EvalLabels(index, np.full(n, -1), np.full(n, -1), np.zeros((n, 4)), np.zeros(n, int), np.full(n, -1))
    report: dict[str, Any] = {"photos": n, "per_class": per_class, "seed": config.synth.eval_seed,
                              "render_seconds": round(render_s, 1)}
    for name, setting in (("head", (0.0, 0.0)), ("with_cue", fitted)):
        angle = plate_flank(out["angle"], out["plate_presence"], out["plate_box"], taxonomy, *setting)
        m = evaluate_angle(angle, labels, taxonomy).metrics
        report[name] = {k: round(v, 4) for k, v in m.items() if k != "n"}
    return report


def run(models_dir: Path, counts: dict[str, int], seed: int, eval_per_class: int, cache: Path,
        workers: int) -> dict[str, Any]:
    from fleetvision.scoring.plate_flank import fit_plate_flank, plate_flank
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    # every set rendered before TensorFlow loads: the rendering processes fork from this one
    renders = {r: rendered_set(r, n, seed, cache, workers) for r, n in counts.items() if n > 0}
    score, size = scorer(models_dir)
    sets: dict[str, dict[str, Any]] = {}
    for renderer, rendered in renders.items():
        out = score(rendered["photos"])
        z, three = signed_offsets(out["plate_box"], rendered["flank_class"])
        sets[renderer] = {"rendered": rendered, "out": out, "z": z, "three": three,
                          "left": np.char.endswith(rendered["flank_class"], "_left")}
    if not sets:
        raise ValueError("nothing to fit on: every renderer's count is 0")

    def fit(names: Sequence[str]) -> dict[str, float]:
        parts = [sets[r] for r in names]
        weights = np.concatenate([np.full(int(p["three"].sum()), 1.0 / p["three"].sum()) for p in parts])
        strength, outlier, loss = fit_plate_flank(
            np.concatenate([p["z"][p["three"]] for p in parts]),
            np.concatenate([p["out"]["plate_presence"][p["three"], 0] for p in parts]),
            np.concatenate([p["left"][p["three"]] for p in parts]), weights)
        return {"strength": round(strength, 2), "outlier_rate": round(outlier, 4), "mean_log_loss": round(loss, 4)}

    pooled = fit(list(sets))
    fitted = (pooled["strength"], pooled["outlier_rate"])
    by_renderer = {}
    for renderer, s in sets.items():
        out, classes = s["out"], s["rendered"]["flank_class"]
        cued = plate_flank(out["angle"], out["plate_presence"], out["plate_box"], taxonomy, *fitted)
        present = out["plate_presence"][:, 0] >= 0.5
        by_renderer[renderer] = {
            "photos": len(classes),
            "render_seconds_per_photo": round(s["rendered"]["render_s"] / len(classes), 3),
            "plate_found_share": round(float(present.mean()), 4),
            "position_alone_right_where_plate_found": round(float(((s["z"] > 0) == s["left"])[present].mean()), 4)
            if present.any() else None,
            "flank_head": flank_accuracy(out["angle"], classes),
            "flank_with_cue": flank_accuracy(cued, classes),
            "own_fit": fit([renderer]),
        }
    return {
        "benchmark": "plate-position flank cue: fitted on renders (never real photos), its effect on renders",
        "models": str(models_dir.relative_to(ROOT)) if models_dir.is_relative_to(ROOT) else str(models_dir),
        "input_size": size,
        "seed": seed,
        "fit": {**pooled, "weighting": "each renderer's 3/4 photos weigh one half"},
        "config": {"scoring.plate_flank_strength": pooled["strength"],
                   "scoring.plate_flank_outlier_rate": pooled["outlier_rate"]},
        "by_renderer": by_renderer,
        **({"eval_set": eval_set_effect(score, eval_per_class, fitted)} if eval_per_class > 0 else {}),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="a model set: <task>/ folders")
    ap.add_argument("--painter", type=int, default=800, help="painted 3/4 photos")
    ap.add_argument("--pbr", type=int, default=400, help="path-traced 3/4 photos (about 1 s each)")
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--eval-per-class", type=int, default=60, help="synthetic eval set per class; 0 = skip")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="rendering processes")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT / "src"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result = run(args.models.resolve(), {"painter": args.painter, "pbr": args.pbr}, args.seed, args.eval_per_class,
                 args.cache, args.workers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    fit = result["fit"]
    print(f"fitted on renders: strength {fit['strength']}, outlier rate {fit['outlier_rate']}")
    for renderer, r in result["by_renderer"].items():
        print(f"{renderer}: flank {r['flank_head']} head -> {r['flank_with_cue']} with the cue ({r['photos']} photos)")
    if "eval_set" in result:
        e = result["eval_set"]
        print(f"synthetic eval: top-1 {e['head']['top1']} -> {e['with_cue']['top1']}, mirror pairs "
              f"{e['head']['mirror_pair_accuracy']} -> {e['with_cue']['mirror_pair_accuracy']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
