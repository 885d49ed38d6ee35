"""Render stand-in "real" photos in another visual domain: the project's OLD renderer, split by car.

Run with the old renderer's package on the path (``bench_label_efficiency.py`` does it)::

    git worktree add /tmp/oldsynth d773b3f
    PYTHONPATH=/tmp/oldsynth/src .venv/bin/python benchmarks/render_standin_photos.py --out /tmp/standin

Commit d773b3f draws flat-shaded low-poly cars on cartoon backdrops: a domain the current renderer (smooth
shading, textures, randomisation) never shows, so labels from it stand in for a new domain's real labels.

Each car (a seeded listing) gets one photo of each of the 10 shot buckets of the issue's 10-way metric:
the 8 exterior views, one interior class and one detail class drawn at random (labelled with their
group, ``interior`` / ``detail``, as real labellers do). Cars are split BY CAR and BY MODEL: the train
pool's cars come from one seed stream and the even-indexed models of each body type, the test pool's
from another seed stream and the odd-indexed models, so no car (nor car model) is on both sides.

Writes ``<out>/photos/<pool>/<car>/<shot>.jpg`` and ``<out>/<pool>.csv`` with the columns
``fleetvision import-labels --votes`` reads (``image``, ``labeller``, ``label``: the 10-way label) plus
``car``, ``shot`` (the rendered class), ``bucket`` (10-way), ``group`` and ``body_type`` (exterior only).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from fleetvision.synth.catalog import MODELS
from fleetvision.synth.files import encode_jpeg
from fleetvision.synth.photo_spec import sample_spec
from fleetvision.synth.render import render_photo
from fleetvision.synth.rng import derive_rng
from fleetvision.synth.training_set import training_size
from fleetvision.taxonomy import load_taxonomy

EXTERIOR_VIEWS = (
    "full_front",
    "front_3q_driver",
    "front_3q_passenger",
    "side_driver",
    "side_passenger",
    "rear_3q_driver",
    "rear_3q_passenger",
    "full_rear",
)
POOL_STREAM = {"train": "standin-train-cars", "test": "standin-test-cars"}
POOL_MODEL_PARITY = {"train": 0, "test": 1}
LABELLER = "standin"


def render_pool(out: Path, pool: str, cars: int, seed: int, image_size: int, driver_side: str) -> int:
    taxonomy = load_taxonomy()
    interior = [c.name for c in taxonomy.classes if c.group == "interior"]
    detail = [c.name for c in taxonomy.classes if c.group == "detail"]
    body_types = list(taxonomy.body_types)
    folder = out / "photos" / pool
    rows = []
    for k in range(cars):
        rng = derive_rng(seed, POOL_STREAM[pool], k)
        body = body_types[int(rng.integers(len(body_types)))]
        models = [m for i, m in enumerate(MODELS[body]) if i % 2 == POOL_MODEL_PARITY[pool]]
        make_model = models[int(rng.integers(len(models)))]
        car = f"{pool}-car{k:04d}"
        shots = [*EXTERIOR_VIEWS, interior[int(rng.integers(len(interior)))], detail[int(rng.integers(len(detail)))]]
        pinned = sample_spec(rng, taxonomy, "full_front", driver_side=driver_side, plate_style="AU",
                             size=(image_size, image_size), body_type=body, make_model=make_model)
        for shot in shots:
            srng = derive_rng(seed, POOL_STREAM[pool], k, shot)
            spec = sample_spec(srng, taxonomy, shot, driver_side=driver_side, plate_style="AU",
                               size=training_size(srng, image_size), body_type=body, paint=pinned.paint,
                               trim=pinned.trim, make_model=make_model, banner_rate=0.2,
                               plate_seed=pinned.scene_seed)
            photo = render_photo(spec)
            rel = f"{car}/{shot}.jpg"
            (folder / car).mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(encode_jpeg(photo.image, int(srng.integers(75, 95))))
            group = taxonomy[shot].group
            bucket = shot if group == "exterior" else group
            rows.append({"image": rel, "labeller": LABELLER, "label": bucket, "car": car, "shot": shot,
                         "bucket": bucket, "group": group, "body_type": body if group == "exterior" else "",
                         "model": " ".join(make_model)})
    with (out / f"{pool}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-cars", type=int, default=100, help="train pool: photos per 10-way bucket")
    parser.add_argument("--test-cars", type=int, default=50, help="test pool: photos per 10-way bucket")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--image-size", type=int, default=320, help="long side of each photo (px)")
    parser.add_argument("--driver-side", default="right", choices=("left", "right"))
    args = parser.parse_args(argv)
    for pool, cars in (("train", args.train_cars), ("test", args.test_cars)):
        n = render_pool(args.out, pool, cars, args.seed, args.image_size, args.driver_side)
        print(f"{pool}: {n} photos of {cars} cars -> {args.out / (pool + '.csv')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
