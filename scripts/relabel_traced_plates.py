"""Give a rendered training set the plate labels the current code would give it, without rendering it again.

A path-traced row's plate label comes from its scene's geometry alone
(:func:`fleetvision.synth.training_set.traced_plate`), so when the labelling rule changes (session 34: a plate
partly in view became *unknown*, ``plate_present`` -1, instead of "no plate") a set that took half an hour to
render can be relabelled in a minute or two. The pixels stay exactly as they were, which also makes the
relabelled set the cleanest test of the rule: nothing else differs.

Pass the settings the set was generated with (the same ``--conf``/``--set``/``--seed`` as its ``fleetvision
generate --training-set`` command); the script plans the rows again (:func:`row_plans`), checks the name and
row count against the stored set, checks that every stored box comes out the same and no new one appears (the
plans and the geometry are those the set was rendered from), and writes the rows with their new labels as the
dataset ``--out`` (sample ids prefixed by it) into the same ``training_images`` table::

    .venv/bin/python scripts/relabel_traced_plates.py --conf dev.yaml --seed 26 --set synth.pbr_share=1.0 \
        --set synth.pbr_detail_share=1.0 ... --out relabel-synthpbr100d100-train-s26
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter

logger = logging.getLogger("relabel_traced_plates")


def new_labels(config, seed: int) -> tuple[str, dict[str, dict], Counter]:
    """The set's name, {sample_id: plate columns} of its path-traced rows, and counts of the new labels by
    (class group, or the detail class for a traced close-up; ``plate_present``)."""
    from fleetvision.synth.job import training_set_name
    from fleetvision.synth.pbr_camera import DETAIL_PARTS
    from fleetvision.synth.training_set import plate_label, row_plans, traced_plate
    from fleetvision.taxonomy import load_taxonomy

    s = config.synth
    taxonomy = load_taxonomy()
    dataset = training_set_name("train", seed, s.pbr_share, s.pbr_detail_share)
    labels: dict[str, dict] = {}
    counts: Counter = Counter()
    for split, per_class in (("train", s.train_per_class), ("val", s.val_per_class)):
        if per_class < 1:
            continue
        for plan in row_plans(taxonomy, config.market, seed, per_class, split, s.train_image_size,
                              exterior_weight=s.train_exterior_weight, body_mix=s.train_body_mix,
                              plate_styles=tuple(s.train_plate_styles), pbr_share=s.pbr_share,
                              yaw_band=s.train_yaw_band, pbr_detail_share=s.pbr_detail_share):
            if not plan.traced:
                continue
            label = plate_label(traced_plate(plan.spec, taxonomy))
            labels[f"{dataset}/{split}/{plan.index:07d}"] = label
            kind = plan.cls.name if plan.cls.name in DETAIL_PARTS else plan.cls.group
            counts[(kind, label["plate_present"])] += 1
    return dataset, labels, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conf", required=True)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--seed", type=int, default=None, help="the generate command's --seed (default synth.seed)")
    parser.add_argument("--out", required=True, help="the relabelled dataset's name (must not start with the old one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    from pyspark.sql import functions as F

    from fleetvision.config import load_config
    from fleetvision.delta_writes import overwrite_where
    from fleetvision.spark import build_spark
    from fleetvision.tables import TRAINING_IMAGES

    config = load_config(args.conf, args.overrides)
    seed = config.synth.seed if args.seed is None else args.seed
    dataset, labels, counts = new_labels(config, seed)
    if args.out.startswith(dataset):
        raise SystemExit(f"--out {args.out!r} starts with {dataset!r}: training reads datasets by prefix")
    logger.info("new plate labels of %s's traced rows: %s", dataset,
                json.dumps({f"{g}:{p}": n for (g, p), n in sorted(counts.items())}))
    spark = build_spark(config)
    table = f"{config.tables.database}.{TRAINING_IMAGES.name}"
    rows = spark.table(table).where(F.col("dataset") == dataset)
    stored = {r.sample_id: (r.plate_present, list(r.plate_box or []))
              for r in rows.select("sample_id", "plate_present", "plate_box").collect()}
    missing = set(labels) - set(stored)
    if missing or not stored:
        raise SystemExit(f"{dataset}: {len(stored)} rows stored, {len(missing)} planned traced rows not among them: "
                         "pass the settings the set was generated with")
    changed = Counter()
    for sid, label in labels.items():
        old_present, old_box = stored[sid]
        boxed = label["plate_present"] == 1
        moved = boxed and max(abs(a - b) for a, b in zip(old_box, label["plate_box"])) > 1e-5
        if boxed != (old_present == 1) or moved:
            raise SystemExit(f"{sid}: stored {stored[sid]}, geometry gives {label}: not the set's plans")
        changed[(old_present, label["plate_present"])] += 1
    logger.info("(stored, new) plate_present of the traced rows: %s", dict(changed))
    fix = spark.createDataFrame([(sid, v["plate_present"], v["plate_box"]) for sid, v in labels.items()],
                                "sample_id string, new_present int, new_box array<float>")
    out = (rows.join(fix, "sample_id", "left")
           .withColumn("plate_present", F.coalesce(F.col("new_present"), F.col("plate_present")))
           .withColumn("plate_box", F.coalesce(F.col("new_box"), F.col("plate_box")))
           .drop("new_present", "new_box")
           .withColumn("sample_id", F.concat(F.lit(args.out + "/"), F.col("sample_id")))
           .withColumn("dataset", F.lit(args.out)))
    overwrite_where(spark, config.tables.database, TRAINING_IMAGES, out, f"dataset = '{args.out}'",
                    run_id=f"relabel-{args.out}")
    logger.info("wrote %s: %d rows", args.out, spark.table(table).where(F.col("dataset") == args.out).count())


if __name__ == "__main__":
    main()
