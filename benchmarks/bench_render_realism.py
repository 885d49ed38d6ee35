"""Benchmark: how car-like do the renders look to an ImageNet classifier? No labels, no training.

Run from the repository root::

    .venv/bin/python benchmarks/bench_render_realism.py                      # painter and pbr, 100 renders each
    .venv/bin/python benchmarks/bench_render_realism.py --renderers pbr,pbr-undenoised --out FILE

Each renderer's exterior photos (``painter``, ``pbr``, ``pbr-undenoised``;
``bench_render_transfer.render_set``: 5 view families x ``--per-family``, body types in turn, JPEG 50-95;
cached under ``--cache``, shared with that benchmark, by renderer, count, seed and generator code) and,
as the reference, the real dev photos (``../shared/realdev``, evaluation only, read in place; skipped
when absent) are decoded by the scoring decoder at 224 and
classified by the converted ImageNet EfficientNet-Lite0 classifier. For each set: the **car mass** (the
probability on the ImageNet classes of cars, vans, light trucks and two car parts,
``fleetvision.models.imagenet_cars``) and how often the top class is one of them; for renders also by
view family and body type, and the commonest top classes of the renders it does not call a car.

Why: a head trained on renders learns from whatever separates them; when an ImageNet network does not
see a car in a render, its features of that render are far from those of a real car, and what the head
learns there is unlikely to carry to real photos. The measure needs no labels and takes minutes, so a
change to a renderer can be judged before rendering a training set and training on it. It says how
car-like a render looks (the whole photo: parked neighbours count too), not whether its body type or
view reads right (``bench_render_transfer.py`` and the trained heads on ``bench_real_dev.py`` say that).
Result: ``benchmarks/results/render_realism.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shlex
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from bench_render_transfer import DEFAULT_CACHE, FAMILIES, cached_photos, decode_all

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "realdev"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "render_realism.json"
SIZE = 224

if TYPE_CHECKING:
    from fleetvision.models.imagenet_cars import CarLikeness


@functools.lru_cache(maxsize=1)  # built once for the real photos and every renderer
def classifier() -> Any:
    """The converted ImageNet EfficientNet-Lite0 classifier at :data:`SIZE` (float RGB -> 1,000 logits)."""
    from fleetvision.models.efficientnet_lite import imagenet_classifier

    return imagenet_classifier("efficientnet_lite0", SIZE)


def classify(photos: Sequence[bytes]) -> np.ndarray:
    """ImageNet logits [N, 1000] of JPEG/PNG bytes, decoded as the scoring job decodes (squash to 224)."""
    x = decode_all(photos, SIZE).astype(np.float32)
    model = classifier()
    return np.concatenate([np.asarray(model(x[i:i + 64], training=False)) for i in range(0, len(x), 64)])


def summary(logits: np.ndarray, likeness: CarLikeness) -> dict[str, Any]:
    """Car mass (mean, median) and top-class-is-a-car share of a set; the commonest other top classes."""
    mass, top = likeness
    others = Counter(int(c) for c in logits.argmax(axis=1)[~top]).most_common(5)
    return {"n": len(mass), "car_mass_mean": round(float(mass.mean()), 4),
            "car_mass_median": round(float(np.median(mass)), 4), "top_is_car": round(float(top.mean()), 4),
            "commonest_other_top_classes": [{"imagenet_index": c, "photos": n} for c, n in others]}


def by_group(likeness: CarLikeness, groups: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Car mass and top-is-car share per group (``groups`` index into ``names``)."""
    mass, top = likeness
    return {name: {"n": int((groups == i).sum()), "car_mass_mean": round(float(mass[groups == i].mean()), 4),
                   "top_is_car": round(float(top[groups == i].mean()), 4)}
            for i, name in enumerate(names) if (groups == i).any()}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--renderers", default="painter,pbr")
    ap.add_argument("--per-family", type=int, default=20)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS,
                    help="real photos (plates/*.jpg or .png): the reference")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT / "src"))
    from fleetvision.models.imagenet_cars import car_likeness
    from fleetvision.taxonomy import load_taxonomy

    bodies = load_taxonomy().body_types
    result: dict[str, Any] = {
        "benchmark": "render_realism", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_render_realism.py " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "classifier": f"efficientnet_lite0 ImageNet classifier at {SIZE}, scoring decoder (squash)",
        "per_family": args.per_family, "seed": args.seed,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "renderers": {},
    }
    plates = args.photos / "plates"
    real_files = sorted(p for p in plates.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if real_files:  # aggregates only: the photos are for evaluation, read in place
        logits = classify([p.read_bytes() for p in real_files])
        result["real_photos"] = {"source": str(args.photos), **summary(logits, car_likeness(logits))}
    for renderer in [r for r in args.renderers.split(",") if r]:
        rendered = cached_photos(renderer, args.per_family, args.seed, args.cache)
        logits = classify(rendered["photos"])
        likeness = car_likeness(logits)
        result["renderers"][renderer] = {
            **summary(logits, likeness), "render_s": round(rendered["render_s"], 1),
            "by_view": by_group(likeness, rendered["view"], FAMILIES),
            "by_body": by_group(likeness, rendered["body"], bodies)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    rows = ([("real photos", result["real_photos"])] if "real_photos" in result else []) + list(
        result["renderers"].items())
    for name, s in rows:
        line = f"{name:12s} n={s['n']:4d}  car mass {s['car_mass_mean']:.3f} (median {s['car_mass_median']:.3f})"
        line += f"  top class a car {s['top_is_car']:.3f}"
        if "by_view" in s:
            line += "  by view " + " ".join(f"{k}={v['car_mass_mean']:.2f}" for k, v in s["by_view"].items())
        print(line)
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
