"""``fleetvision generate``: the synthetic inventory, one day of churn, training sets, contact sheet.

The thin Spark layer over the pure generator: photos are planned and rendered in worker processes
(:mod:`fleetvision.synth.inventory`), and the rows are written through :mod:`fleetvision.tables`:

- default (or ``--inventory``): replace ``listings``, ``listing_images`` and ``image_labels`` with a
  new inventory of ``--listings`` listings (photos under ``paths.photos``, or inline with ``--inline``);
- ``--evolve``: apply the next day's churn as Delta MERGEs, so the change data feed of
  ``listing_images`` shows exactly what changed; returns/logs the report and writes it to
  ``paths.reports/generate-day<N>.json``;
- ``--training-set`` / ``--eval-set``: (re)write the labelled sets in ``training_images``;
- ``--contact-sheet PATH``: one image per class plus banner, plate and mirror variants.

The generator's state (seed, listing count, day, content mode) is kept as table properties on
``listings``, so ``--evolve`` continues the inventory it finds.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from fleetvision.config import Config
from fleetvision.delta_writes import ACTION_COLUMN, merge_actions, merge_upsert, overwrite_table, overwrite_where
from fleetvision.exit_codes import ExitCode
from fleetvision.synth.evolve import plan_day
from fleetvision.synth.inventory import (
    Inventory,
    InventorySettings,
    RenderedFile,
    RenderStats,
    image_rows,
    label_rows,
    plan_inventory,
    render_plans,
)
from fleetvision.synth.training_set import render_training_set
from fleetvision.tables import (
    IMAGE_LABELS,
    LISTING_IMAGES,
    LISTINGS,
    TRAINING_IMAGES,
    TableSpec,
    conform,
    ensure_table,
    qualified,
    validate_input_table,
)
from fleetvision.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)

NEEDS_SPARK = True
PROP = "fleetvision.synth."
OP = ACTION_COLUMN  # the merge-action column of :func:`frame` (``tables.merge_actions``)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``generate`` job's flags."""
    what = parser.add_argument_group("what to make (default: a new inventory)")
    what.add_argument("--inventory", action="store_true", help="make a new inventory (replaces the tables)")
    what.add_argument("--evolve", action="store_true", help="apply one day of churn to the existing inventory")
    what.add_argument("--days", type=int, default=1, help="with --evolve: how many days to apply (default 1)")
    what.add_argument("--training-set", action="store_true", help="write the labelled train/val set")
    what.add_argument("--eval-set", action="store_true", help="write the frozen evaluation set")
    what.add_argument("--contact-sheet", metavar="PATH", help="render the contact sheet PNG to PATH")
    how = parser.add_argument_group("how")
    how.add_argument("--listings", type=int, default=None, help="listings to make (default synth.n_listings)")
    how.add_argument("--seed", type=int, default=None, help="random seed (default synth.seed)")
    how.add_argument("--inline", action="store_true", help="store photo bytes inline (synth.content_mode=inline)")
    how.add_argument("--workers", type=int, default=None, help="render processes (default synth.workers; 0 = cores)")


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run the requested generation steps; returns ``ExitCode.OK`` (a failure raises)."""
    if spark is None:
        raise ValueError("fleetvision generate needs a SparkSession")
    explicit = args.evolve or args.training_set or args.eval_set or args.contact_sheet
    workers = config.synth.workers if args.workers is None else args.workers
    if args.days < 1:
        raise ValueError(f"--days must be >= 1, got {args.days}")
    summary: dict[str, Any] = {}
    if args.inventory or not explicit:
        summary["inventory"] = write_inventory(
            spark, config, seed=args.seed, n_listings=args.listings,
            inline=args.inline or config.synth.content_mode == "inline", workers=workers,
        )
    if args.evolve:
        summary["evolve"] = [evolve_inventory(spark, config, workers=workers) for _ in range(args.days)]
    if args.training_set:
        summary["training_set"] = write_training_set(spark, config, "train", seed=args.seed, workers=workers)
    if args.eval_set:
        summary["eval_set"] = write_training_set(spark, config, "eval", workers=workers)
    if args.contact_sheet:
        from fleetvision.synth.contact_sheet import save_contact_sheet

        path = save_contact_sheet(Path(args.contact_sheet), load_taxonomy(), config.market,
                                  seed=config.synth.seed if args.seed is None else args.seed)
        summary["contact_sheet"] = str(path)
    logger.info("generate summary: %s", json.dumps(_brief(summary), default=str))
    return ExitCode.OK


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    out = dict(summary)
    if "evolve" in out:
        out["evolve"] = [{"day": r["day"], **r["counts"]} for r in out["evolve"]]
    return out


# ------------------------------------------------------------------------------------------ helpers
def settings_from(config: Config, seed: int | None = None, n_listings: int | None = None) -> InventorySettings:
    """Inventory settings from the config (and the job's overrides)."""
    s = config.synth
    return InventorySettings(
        seed=s.seed if seed is None else seed,
        n_listings=s.n_listings if n_listings is None else n_listings,
        min_photos=s.min_photos,
        max_photos=s.max_photos,
        dealer_share=s.dealer_share,
        bad_file_rate=s.bad_file_rate,
        bad_kinds=tuple(sorted(s.bad_kinds.items())),
        driver_side=config.market.driver_side,
        plate_style=config.market.plate_style,
        photo_scale=s.photo_scale,
    )


def frame(spark: SparkSession, rows: Sequence[dict[str, Any]], spec: TableSpec, op: str | None = None) -> DataFrame:
    """Rows (dicts) as a DataFrame with ``spec``'s schema, via Arrow; ``op`` adds a merge-action column."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = spec.schema if op is None else T.StructType([*spec.schema.fields, T.StructField(OP, T.StringType())])
    arrow_schema = to_arrow_schema(schema)
    cols = [f.name for f in schema.fields]
    data = [{c: (op if c == OP else r.get(c)) for c in cols} for r in rows]
    table = pa.Table.from_pylist(data, schema=arrow_schema)
    return spark.createDataFrame(table) if data else spark.createDataFrame([], schema)


def _set_state(spark: SparkSession, database: str, state: dict[str, Any]) -> None:
    props = ", ".join(f"'{PROP}{k}' = '{v}'" for k, v in sorted(state.items()))
    spark.sql(f"ALTER TABLE {qualified(database, LISTINGS)} SET TBLPROPERTIES ({props})")


def _get_state(spark: SparkSession, database: str) -> dict[str, str]:
    rows = spark.sql(f"SHOW TBLPROPERTIES {qualified(database, LISTINGS)}").collect()
    return {r["key"][len(PROP):]: r["value"] for r in rows if r["key"].startswith(PROP)}


# ---------------------------------------------------------------------------------------- inventory
def render_inventory(
    settings: InventorySettings, photos_dir: Path, inline: bool = False, workers: int = 0,
    photo_cache: Path | None = None,
) -> tuple[Inventory, dict[str, RenderedFile], RenderStats]:
    """Plan the inventory of ``settings`` and render its photos into ``photos_dir`` (no Spark).

    With ``photo_cache`` (uri mode only) the photos come from :func:`~fleetvision.synth.render_cache.render_cached`:
    rendered once per settings, taxonomy and generator code, resumed where a killed render stopped.
    """
    taxonomy = load_taxonomy()
    inv = plan_inventory(settings, taxonomy)
    if photo_cache is not None and not inline:
        from fleetvision.synth.render_cache import cache_key, render_cached

        key = cache_key(settings, taxonomy)
        files, stats = render_cached(inv.photos, photos_dir, photo_cache, key, workers=workers)
    else:
        files, stats = render_plans(inv.photos, photos_dir, keep_bytes=inline, workers=workers)
    return inv, files, stats


def write_inventory(
    spark: SparkSession,
    config: Config,
    seed: int | None = None,
    n_listings: int | None = None,
    inline: bool = False,
    workers: int = 0,
    photo_cache: Path | None = None,
) -> dict[str, Any]:
    """Make a new inventory and replace ``listings``, ``listing_images`` and ``image_labels`` with it.

    Args:
        photo_cache: A folder of rendered inventories (:mod:`fleetvision.synth.render_cache`): the
            photos are rendered there once per settings, taxonomy and generator code, and linked into
            ``paths.photos``; uri mode only. None renders every photo.

    Returns:
        Counts and throughput (photos rendered, seconds, photos/s/core).
    """
    settings = settings_from(config, seed, n_listings)
    database = config.tables.database
    photos_dir = config.paths.resolve("photos")
    inv, files, stats = render_inventory(settings, photos_dir, inline, workers, photo_cache)
    run_id = f"generate-s{settings.seed}-day0"
    overwrite_table(spark, database, LISTINGS, frame(spark, [lp.row() for lp in inv.listings], LISTINGS), run_id)
    overwrite_table(spark, database, LISTING_IMAGES, frame(spark, image_rows(inv.photos, files, inline),
                                                           LISTING_IMAGES), run_id)
    overwrite_table(spark, database, IMAGE_LABELS, frame(spark, label_rows(inv.photos, files), IMAGE_LABELS), run_id)
    _set_state(spark, database, {"seed": settings.seed, "listings": settings.n_listings, "day": 0,
                                 "content_mode": "inline" if inline else "uri"})
    bad = sum(1 for p in inv.photos if p.bad_kind)
    result = {
        "listings": len(inv.listings), "images": len(inv.photos), "photos_rendered": stats.photos,
        "bad_files": bad, "seconds": round(stats.seconds, 2), "workers": stats.workers,
        "photos_per_s_per_core": round(stats.per_second_per_core, 1), "content_mode": "inline" if inline else "uri",
        "photos_dir": str(photos_dir),
    }
    logger.info("inventory: %s", result)
    return result


def evolve_inventory(spark: SparkSession, config: Config, workers: int = 0) -> dict[str, Any]:
    """Apply the next day's churn to the inventory in the tables (Delta MERGEs).

    Returns:
        The report: day, counts, and the ids of every listing and image added, removed, replaced,
        sold or edited. Also written to ``paths.reports/generate-day<N>.json``.

    Raises:
        TableContractError: There is no inventory to evolve.
    """
    database = config.tables.database
    listings_df = validate_input_table(spark, database, LISTINGS)
    images_df = validate_input_table(spark, database, LISTING_IMAGES)
    state = _get_state(spark, database)
    seed = int(state.get("seed", config.synth.seed))
    settings = settings_from(config, seed, int(state.get("listings", config.synth.n_listings)))
    inline = state.get("content_mode", config.synth.content_mode) == "inline"
    day = int(state.get("day", 0)) + 1
    taxonomy = load_taxonomy()
    listings = [r.asDict() for r in conform(listings_df, LISTINGS).collect()]
    images = [r.asDict() for r in images_df.select("image_id", "listing_id", "position").collect()]
    angles: dict[str, str | None] = {}
    if spark.catalog.tableExists(qualified(database, IMAGE_LABELS)):
        angles = {r["image_id"]: r["angle"] for r in spark.table(qualified(database, IMAGE_LABELS))
                  .select("image_id", "angle").collect()}
    change = plan_day(settings, taxonomy, listings, images, day, config.synth.evolve_rate, angles)
    files, stats = render_plans(change.added + change.replaced, config.paths.resolve("photos"), keep_bytes=inline,
                                workers=workers)
    run_id = f"generate-s{seed}-day{day}"
    new_rows = image_rows(change.added, files, inline)
    upd_rows = image_rows(change.replaced, files, inline)
    gone = [{"image_id": i, "listing_id": ""} for i in change.removed]
    source = frame(spark, new_rows, LISTING_IMAGES, "insert").unionByName(
        frame(spark, upd_rows, LISTING_IMAGES, "update")).unionByName(frame(spark, gone, LISTING_IMAGES, "delete"))
    merge_actions(spark, database, LISTING_IMAGES, source, run_id, action_column=OP)
    if change.listing_rows:
        merge_upsert(spark, database, LISTINGS, frame(spark, change.listing_rows, LISTINGS), run_id)
    ensure_table(spark, database, IMAGE_LABELS)
    labels = frame(spark, label_rows(change.added + change.replaced, files), IMAGE_LABELS, "update").unionByName(
        frame(spark, gone, IMAGE_LABELS, "delete"))
    merge_actions(spark, database, IMAGE_LABELS, labels, run_id, action_column=OP)
    _set_state(spark, database, {**state, "day": day})
    report = change.report()
    report.update(seed=seed, photos_rendered=stats.photos, seconds=round(stats.seconds, 2))
    out = config.paths.resolve("reports")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"generate-day{day:03d}.json").write_text(json.dumps(report, indent=1, default=str))
    logger.info("evolve day %d: %s", day, report["counts"])
    return report


# -------------------------------------------------------------------------------------- training set
def training_set_name(kind: str, seed: int, pbr_share: float = 0.0, pbr_detail_share: float = 0.0,
                      pbr_cabin_share: float = 0.0) -> str:
    """``synthetic-train-s7`` / ``synthetic-eval-s1001``; with path-traced exteriors ``synthpbr<pct>-train-s7``,
    with path-traced detail close-ups as well ``synthpbr<pct>d<pct>-train-s7``, with path-traced interiors
    ``synthpbr<pct>d<pct>c<pct>-train-s7`` (not under the ``synthetic`` prefix, so the default training and
    eval sets never pick them up by accident)."""
    if pbr_cabin_share > 0:
        return (f"synthpbr{round(100 * pbr_share)}d{round(100 * pbr_detail_share)}c{round(100 * pbr_cabin_share)}"
                f"-{kind}-s{seed}")
    if pbr_detail_share > 0:
        return f"synthpbr{round(100 * pbr_share)}d{round(100 * pbr_detail_share)}-{kind}-s{seed}"
    if pbr_share > 0:
        return f"synthpbr{round(100 * pbr_share)}-{kind}-s{seed}"
    return f"synthetic-{kind}-s{seed}"


def write_training_set(
    spark: SparkSession, config: Config, kind: str, seed: int | None = None, workers: int = 0
) -> dict[str, Any]:
    """(Re)write a labelled set in ``training_images``, replacing only that dataset's rows.

    Args:
        kind: ``train`` (train + val splits, ``synth.train_per_class`` / ``synth.val_per_class``, seed
            ``synth.seed``) or ``eval`` (``synth.eval_per_class``, seed ``synth.eval_seed``).

    Raises:
        ValueError: Unknown kind.
    """
    s = config.synth
    taxonomy = load_taxonomy()
    if kind == "train":
        seed = s.seed if seed is None else seed
        parts = [("train", s.train_per_class), ("val", s.val_per_class)]
    elif kind == "eval":
        seed = s.eval_seed if seed is None else seed
        parts = [("eval", s.eval_per_class)]
    else:
        raise ValueError(f"training set kind must be 'train' or 'eval', got {kind!r}")
    dataset = training_set_name(kind, seed, s.pbr_share, s.pbr_detail_share, s.pbr_cabin_share)
    # train/val lean towards what is hard to learn; the frozen eval set keeps the plain mix
    if kind == "eval":
        weight, mix, styles, yaw_band = 1, "market", (), "narrow"
    else:
        weight, mix, styles, yaw_band = (s.train_exterior_weight, s.train_body_mix, tuple(s.train_plate_styles),
                                         s.train_yaw_band)
    rows: list[dict[str, Any]] = []
    for split, per_class in parts:
        if per_class > 0:
            rows += render_training_set(taxonomy, config.market, seed, per_class, split, dataset,
                                        s.train_image_size, workers=workers, exterior_weight=weight, body_mix=mix,
                                        plate_styles=styles, pbr_share=s.pbr_share, pbr_samples=s.pbr_samples,
                                        yaw_band=yaw_band, pbr_detail_share=s.pbr_detail_share,
                                        pbr_cabin_share=s.pbr_cabin_share)
    database = config.tables.database
    ensure_table(spark, database, TRAINING_IMAGES)
    overwrite_where(spark, database, TRAINING_IMAGES, frame(spark, rows, TRAINING_IMAGES), f"dataset = '{dataset}'",
                    run_id=f"generate-{dataset}")
    counts = {split: sum(1 for r in rows if r["split"] == split) for split, _ in parts}
    logger.info("training_images: wrote %s %s", dataset, counts)
    return {"dataset": dataset, "rows": counts}
