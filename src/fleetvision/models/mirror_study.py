"""The mirror-pair experiment behind the table in ``docs/models.md``.

Trains the angle model three ways on the same rows, with the same budget, and scores each on the
frozen evaluation set:

(a) ``global``: one global average pool, trained with plain horizontal flips (labels kept): the
    usual recipe, and what an ImageNet-pretrained backbone brings (it was trained flip-invariant).
(b) ``left_half``: the old workaround: the model sees only the left half of the photo; no flips.
(c) ``split``: left and right halves of the feature map pooled separately, trained with flips that
    swap the mirror-partner labels (side_left <-> side_right, ...: the model's flank classes).

Run (writes JSON and a Markdown table; each variant is also an MLflow run)::

    python -m fleetvision.models.mirror_study --conf conf/local.yaml --epochs 8 --max-rows 4050 \\
        --out reports/mirror_study.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetvision.config import Config, load_config
from fleetvision.exit_codes import ExitCode

logger = logging.getLogger(__name__)

VARIANTS: dict[str, dict[str, str]] = {
    "a_global_plain_flips": {"angle_head": "global", "flip_mode": "plain"},
    "b_left_half": {"angle_head": "left_half", "flip_mode": "none"},
    "c_split_swap_flips": {"angle_head": "split", "flip_mode": "swap"},
    "d_global_swap_flips": {"angle_head": "global", "flip_mode": "swap"},
}
DEFAULT_VARIANTS = ("a_global_plain_flips", "b_left_half", "c_split_swap_flips")
COLUMNS = ("top1", "mirror_pair_accuracy", "mirror_swap_rate")


def run_study(
    spark: Any,
    config: Config,
    *,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    epochs: int | None = None,
    max_rows: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Train and evaluate each variant of the angle model.

    Returns:
        Variant -> {settings, metrics (angle evaluation), train_seconds, run_id}.
    """
    from fleetvision.models.spec import TrainSpec
    from fleetvision.models.training_run import train_models

    results: dict[str, dict[str, Any]] = {}
    for name in variants:
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        settings = VARIANTS[name]
        overrides: dict[str, Any] = dict(settings)
        if max_rows is not None:
            overrides["max_train_rows"] = max_rows
        spec = TrainSpec.from_config(config, ("angle",), epochs=epochs, **overrides)
        result = train_models(spark, config, spec, register=False, run_name=f"mirror-study-{name}", validate=False)
        results[name] = {
            "settings": settings,
            "metrics": result.metrics.get("angle", {}),
            "train_seconds": round(result.train_seconds, 1),
            "n_train": result.n_train,
            "epochs": spec.epochs,
            "run_id": result.run_id,
        }
        logger.info("%s: %s", name, json.dumps(results[name]["metrics"]))
    return results


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a Markdown table (one row per variant)."""
    pairs = sorted({k for r in results.values() for k in r["metrics"] if k.startswith("mirror_accuracy.")})
    head = ["variant", "head", "flips", *COLUMNS, *(p.split(".", 1)[1] for p in pairs), "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        m = r["metrics"]
        cells = [name, r["settings"]["angle_head"], r["settings"]["flip_mode"]]
        cells += [f"{m.get(c, float('nan')):.3f}" for c in (*COLUMNS, *pairs)]
        cells.append(f"{r['train_seconds']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fleetvision.models.mirror_study",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--conf", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--max-rows", type=int, default=None, help="training rows per variant (a seeded sample)")
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=sorted(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("reports/mirror_study.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.conf, overrides=args.overrides)
    from fleetvision.spark import build_spark

    spark = build_spark(config, app_name="fleetvision-mirror-study")
    try:
        results = run_study(spark, config, variants=args.variants, epochs=args.epochs, max_rows=args.max_rows)
    finally:
        spark.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = "python -m fleetvision.models.mirror_study " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.write_text(json.dumps({"command": command, "results": results}, indent=2, sort_keys=True) + "\n")
    table = markdown_table(results)
    args.out.with_suffix(".md").write_text(f"`{command}`\n\n{table}\n")
    logger.info("mirror study:\n%s", table)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
