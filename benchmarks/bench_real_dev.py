"""Real-photo check: the models on real car photos, scored exactly as the nightly job scores them.

Run from the repository root::

    .venv/bin/python benchmarks/bench_real_dev.py                        # starter models, all photos
    .venv/bin/python benchmarks/bench_real_dev.py --models path/to/set   # a directory of <task>/model.keras
    .venv/bin/python benchmarks/bench_real_dev.py --views /elsewhere/views.csv --out /tmp/real_dev_views.json

The photos are ``../shared/realdev`` (relative to the repository root; ``--photos`` to change): 223 real
front or rear views with one labelled licence plate each (``plates.csv``, regions ``eu`` and ``br``).
They are licensed (AGPL) for evaluation only: read in place, never copied, never trained on; the result
holds aggregates only.

Each photo goes through the scoring job's own path: the bytes through ``fleetvision.decode.decode_batch``
at the models' input size with ``scoring.max_image_pixels`` (JPEG draft, EXIF transpose, squash to S x S),
every model on the same batch (``fleetvision.scoring.udf.run_models``, ``scoring.batch_size`` rows at a
time), the outputs checked by ``fleetvision.scoring.tags.validate_outputs`` and shaped by
``prediction_frame`` with the scoring rules (``scoring.plate_threshold``, ``scoring.banner_threshold``,
``market.driver_side`` naming the shot classes).
Models load as the registry loads them (``keras.saving.load_model(..., compile=False)`` wrapped by
``fleetvision.models.serving.predict_fn_for``). The box the job writes is the model's box, normalised
to the original photo (squash decode), and is compared with the labelled box in that frame
(``fleetvision.models.real_photos``). Result: ``benchmarks/results/real_dev.json``.

Each photo's mirror image is scored too (a second pass, not in the timing): ``report.flank_mirror`` says
how often the mirror gets the other flank among the photos called 3/4 or side, a check of the flank that
needs no labels (``fleetvision.models.real_view_labels.mirror_flank_report``). It reads the flank as the
job tags it (``tags.as_tagged``): split from the photo and its mirror image in the same pass
(``scoring.flank_symmetry``; the plate score too, ``scoring.plate_symmetry``) and informed by the plate's
position (``scoring.plate_flank_*``);
``report.flank_mirror_head`` (and ``labelled.flank_head`` with ``--views``) is the angle head alone
(without the cues, and without the group head where the angle model has one: ``scoring.shot_groups``).

``--views`` adds view and body accuracy from someone's own labels of the same photos (``file,view,body``;
``fleetvision.models.real_view_labels``). Keep such a file out of the repository: the set's licence
covers anything derived from its photos. With the view labels it also scores ``labelled.lamp_crops``: the
headlights and tail lights either side of the plate, cut out of every head-on front and rear
(``fleetvision.models.real_lamp_crops``), a stand-in for real detail photos (the set has none): how many
are called a detail shot, and how often a plate is flagged on them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared" / "realdev"
DEFAULT_MODELS = ROOT / "models" / "starter"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "real_dev.json"
PLATES_CSV = "plates.csv"
PHOTO_FOLDER = "plates"

logger = logging.getLogger("bench_real_dev")


def _display(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _model_identity(models_dir: Path, task: str, model: Any) -> dict[str, Any]:
    from fleetvision.models.pretrained import saved_model_file

    path = saved_model_file(models_dir / task)
    card_path = path.parent / "metrics.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    return {
        "path": _display(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "bytes": path.stat().st_size,
        "keras_name": model.name,
        "input_size": int(model.input_shape[1]),
        "mlflow_run_id": card.get("mlflow_run_id"),
        "command": card.get("command"),
    }


def check_inputs(photos_dir: Path, models_dir: Path) -> list[str]:
    """Problems that stop the run before any work (empty when all is well)."""
    problems = []
    if not (photos_dir / PLATES_CSV).is_file() or not (photos_dir / PHOTO_FOLDER).is_dir():
        problems.append(
            f"real photos not found: expected {photos_dir / PLATES_CSV} and {photos_dir / PHOTO_FOLDER}/ "
            "(the evaluation-only set lives outside the repository, by default ../shared/realdev from the "
            "repository root; pass --photos DIR)"
        )
    from fleetvision.models.pretrained import saved_model_file
    from fleetvision.models.spec import TASKS

    lacking = [t for t in TASKS if not saved_model_file(models_dir / t).is_file()]
    if lacking:
        problems.append(f"model directory {models_dir} lacks <task>/head.keras or <task>/model.keras for {lacking}")
    return problems


def score_lamp_crops(photo_bytes: list[bytes], truth: Any, views: list[Any], models: Any, size: int, settings: Any,
                     taxonomy: Any, rules: Any) -> tuple[dict[str, Any], list[float], np.ndarray]:
    """Cut the lamps beside the plate out of every labelled head-on front and rear
    (:func:`fleetvision.models.real_lamp_crops.lamp_crop_boxes`), re-encode each crop as a JPEG (quality 90,
    as the set's photos were) and score it as the job scores a photo: a stand-in for real detail shots.
    Returns the report, each crop's plate score and its angle probabilities as tagged."""
    import io

    from PIL import Image

    from fleetvision import decode
    from fleetvision.models import real_lamp_crops
    from fleetvision.scoring.tags import as_tagged, prediction_frame, validate_outputs
    from fleetvision.scoring.udf import run_models

    boxes = real_lamp_crops.lamp_crop_boxes(truth, views)
    if boxes.empty:
        return {"n": 0}, [], np.zeros((0, taxonomy.num_classes))
    items = []
    for row in boxes.itertuples(index=False):
        with Image.open(io.BytesIO(photo_bytes[row.photo])) as image:  # the bytes run() already read
            crop = image.convert("RGB").crop((row.x0, row.y0, row.x1, row.y1))
        buffer = io.BytesIO()
        crop.save(buffer, "JPEG", quality=90)
        items.append(buffer.getvalue())
    batch, photos = decode.decode_batch(items, size, settings.max_pixels, max_bytes=settings.max_bytes)
    outputs = validate_outputs(run_models(models, batch, settings.model_batch_size), len(batch), taxonomy)
    frame = prediction_frame(photos, outputs, taxonomy, rules, batch=batch)
    return {
        "what": "lamp close-ups cut from the labelled head-on fronts and rears beside their plates "
                "(fleetvision.models.real_lamp_crops): a stand-in for real detail photos",
        **real_lamp_crops.lamp_crop_report(boxes["kind"].tolist(), frame["shot_group"].tolist(),
                                           frame["angle"].tolist(), frame["plate_flag"].fillna(False).tolist()),
    }, frame["plate_score"].astype(float).tolist(), as_tagged(outputs, taxonomy, rules)["angle"]


def run(
    photos_dir: Path,
    models_dir: Path,
    *,
    limit: int | None = None,
    conf: Path | None = None,
    views: Path | None = None,
) -> dict[str, Any]:
    """Score the real photos with a model set and return the report (see the module docstring)."""
    import keras
    import pandas as pd

    from fleetvision import decode
    from fleetvision.config import load_config
    from fleetvision.models import real_lamp_crops, real_photos, real_view_labels
    from fleetvision.models.serving import read_model_folder
    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.tags import as_tagged, prediction_frame, validate_outputs
    from fleetvision.scoring.udf import UdfSettings, run_models
    from fleetvision.taxonomy import load_taxonomy

    config = load_config(conf, environ={})
    taxonomy = load_taxonomy()
    rules = ScoringRules.from_config(config.scoring, taxonomy, driver_side=config.market.driver_side)
    settings = UdfSettings.from_config(config, environ={})

    truth = real_photos.read_plate_truth(photos_dir / PLATES_CSV)
    truth = truth.iloc[real_photos.select_spread(len(truth), limit)].reset_index(drop=True)

    start = time.perf_counter()
    folder = read_model_folder(models_dir)
    size = folder.input_size
    if size != config.models.input_size:
        # The scoring job refuses this (resolve.resolve_model_ref); here the models' own size wins so a
        # new set can be compared, and the report says so.
        logger.warning("models take %d px input but models.input_size is %d", size, config.models.input_size)
    models = folder.predictors()  # as the scoring workers hold them: task models on one backbone fused
    load_s = time.perf_counter() - start
    warm = np.zeros((1, size, size, 3), dtype=np.uint8)
    for predict in models.values():
        predict(warm)  # the first call traces the graph; not part of the per-photo time

    start = time.perf_counter()
    items = [(photos_dir / PHOTO_FOLDER / name).read_bytes() for name in truth["file"]]
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    batch, photos = decode.decode_batch(items, size, settings.max_pixels, max_bytes=settings.max_bytes)
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    outputs = validate_outputs(run_models(models, batch, settings.model_batch_size), len(batch), taxonomy)
    infer_s = time.perf_counter() - start
    frame = prediction_frame(photos, outputs, taxonomy, rules, batch=batch)

    ok = np.array([p.ok for p in photos], dtype=bool)
    boxes = np.full((len(photos), 4), np.nan)
    boxes[ok] = outputs["plate_box"]  # every ok photo's box, flagged or not: IoU is taken regardless
    mismatched = real_photos.size_mismatches(truth, frame["width"].tolist(), frame["height"].tolist())
    if mismatched:
        logger.warning(
            "%d photo(s) decoded at another size than labelled; their IoU is not meaningful", len(mismatched)
        )
    per_photo = pd.DataFrame(
        {
            "region": truth["region"],
            "plate_iou": real_photos.plate_ious(boxes, real_photos.truth_boxes(truth)),
            **{c: frame[c] for c in real_photos.PHOTO_COLUMNS if c not in ("region", "plate_iou")},
        }
    )
    report = real_photos.summarise_photos(
        per_photo, plate_threshold=rules.plate_threshold, banner_threshold=rules.banner_threshold
    )
    n = len(truth)
    # label-free: the flank answer for each photo and for its mirror image (a second, untimed pass), as
    # the job tags it (tags.as_tagged: mirror image and plate-position flank cues) and from the angle head alone
    flipped = np.ascontiguousarray(batch[:, :, ::-1])
    mirrored = validate_outputs(run_models(models, flipped, settings.model_batch_size), len(batch), taxonomy)

    def view_probabilities(angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """View-family and flank probabilities of every photo, NaN rows for those not decoded."""
        families = np.full((len(photos), len(real_view_labels.family_names())), np.nan)
        families[ok] = real_view_labels.view_family_probabilities(angle, taxonomy)
        flanks = np.full((len(photos), len(real_view_labels.FLANKS)), np.nan)
        flanks[ok] = real_view_labels.flank_probabilities(angle, taxonomy)
        return families, flanks

    tagged_angle = as_tagged(outputs, taxonomy, rules)["angle"]
    families, flanks = view_probabilities(tagged_angle)
    mirrored_flanks = view_probabilities(as_tagged(mirrored, taxonomy, rules)["angle"])[1]
    head_families, head_flanks = view_probabilities(outputs["angle"])
    head_mirrored_flanks = view_probabilities(mirrored["angle"])[1]
    report["flank_mirror"] = real_view_labels.mirror_flank_report(flanks, mirrored_flanks, families)
    report["flank_mirror_head"] = real_view_labels.mirror_flank_report(head_flanks, head_mirrored_flanks,
                                                                       head_families)
    labelled = None
    if views is not None:
        labels = real_view_labels.read_view_labels(views, truth["file"].tolist(), taxonomy)
        body = [b if isinstance(b, str) else None for b in frame["body_type"].tolist()]
        labelled = {
            "labels": f"{views.name}: labels by eye, not shipped (file, view without side, body type, flank)",
            **real_view_labels.labelled_report(families, body, labels, flanks),
        }
        labelled["lamp_crops"], crop_scores, crop_angle = score_lamp_crops(items, truth, labels["view"].tolist(),
                                                                           models, size, settings, taxonomy, rules)
        if crop_scores:
            labelled["plate_operating_points"] = {
                "what": "plate recall on the real photos against plates flagged on the lamp close-ups, by threshold "
                        "(fleetvision.models.real_lamp_crops.plate_operating_points)",
                **real_lamp_crops.plate_operating_points(frame["plate_score"].astype(float).tolist(),
                                                         per_photo["plate_iou"].astype(float).tolist(), crop_scores),
            }
            labelled["detail_operating_points"] = {
                "what": "real exteriors called exterior against the lamp close-ups called detail, by a logit shift "
                        "of the detail classes (fleetvision.models.real_lamp_crops.detail_operating_points)",
                **real_lamp_crops.detail_operating_points(tagged_angle, crop_angle,
                                                          [c.group for c in taxonomy.classes]),
            }
        has_flank = np.array([f is not None for f in labels["flank"]], dtype=bool)
        if has_flank.any():
            labelled["flank"]["mirror"] = real_view_labels.mirror_flank_report(
                flanks, mirrored_flanks, families, among=has_flank)
            labelled["flank_head"] = real_view_labels.labelled_report(
                head_families, [None] * len(photos), labels, head_flanks)["flank"]
            labelled["flank_head"]["mirror"] = real_view_labels.mirror_flank_report(
                head_flanks, head_mirrored_flanks, head_families, among=has_flank)
    return {
        "benchmark": "real photos (evaluation only): plate recall and IoU, shot group, score distributions",
        "photos": {
            "source": "openalpr/benchmarks endtoend eu + br (AGPL-3.0, evaluation only; read in place)",
            "n": n,
            "by_region": {r: int((truth["region"] == r).sum()) for r in real_photos.REGIONS},
            "limit": limit,
            "n_size_mismatch": len(mismatched),
        },
        "models": {
            "dir": _display(models_dir),
            "by_task": {t: _model_identity(models_dir, t, m) for t, m in folder.models.items()},
        },
        "scoring": {
            "input_size": size,
            "config_input_size": config.models.input_size,
            "decode": "fleetvision.decode.decode_batch: JPEG draft, EXIF transpose, RGB, squash to S x S (bilinear)",
            "box_frame": "model box as written by scoring (clipped, ordered), normalised to the original photo",
            "plate_threshold": rules.plate_threshold,
            "banner_threshold": rules.banner_threshold,
            "model_batch_size": settings.model_batch_size,
            "driver_side": config.market.driver_side,
            "plate_flank_strength": rules.plate_flank_strength,
            "plate_flank_outlier_rate": rules.plate_flank_outlier_rate,
            "scorer_version": rules.version,
        },
        "report": report,
        **({"labelled": labelled} if labelled is not None else {}),
        "timing": {
            "seconds_per_photo": round((read_s + decode_s + infer_s) / n, 5),
            "read_seconds": round(read_s, 3),
            "decode_seconds": round(decode_s, 3),
            "inference_seconds": round(infer_s, 3),
            "decode_ms_per_photo": round(1000 * decode_s / n, 3),
            "inference_ms_per_photo": round(1000 * infer_s / n, 3),
            "model_load_seconds": round(load_s, 3),
            "note": "one pass, after a warm-up call per model; read + decode + the four models, no Spark",
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),  # the per-photo time means little on a busy machine
            "machine": platform.machine(),
            "python": platform.python_version(),
            "keras": keras.__version__,
        },
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    """A short human summary of a result (what the script prints)."""
    lines = [
        f"{result['photos']['n']} real photos, models {result['models']['dir']}, "
        f"{result['timing']['seconds_per_photo'] * 1000:.1f} ms/photo on {result['machine']['cpu_count']} CPUs "
        f"(load average {result['machine']['load_average_1m']})"
    ]
    report = result["report"]
    for name, part in [("all", report["overall"]), *report["by_region"].items()]:
        plate, shot = part["plate"], part["shot"]
        top = next(iter(shot["top1_classes"].items()), ("-", {"share": 0}))
        lines.append(
            f"{name:>3} n={part['n']:3d}  plate recall {plate['recall']:.3f}  IoU mean {plate['iou_mean']:.3f} "
            f"median {plate['iou_median']:.3f}  >=0.5 {plate['iou50_rate']:.3f}  >=0.3 {plate['iou30_rate']:.3f}  "
            f"present&>=0.5 {plate['present_and_iou50_rate']:.3f}  exterior {shot['exterior_rate']:.3f}  "
            f"banner flagged {part['banner']['flagged_rate']:.3f}  top class {top[0]} ({top[1]['share']:.2f})"
        )
    for key, how in (("flank_mirror", "as tagged"), ("flank_mirror_head", "angle head alone")):
        mirror = report.get(key)
        if mirror:
            lines.append(
                f"flank under mirroring, {how} (no labels): of {mirror['n']} photos called 3/4 or side, the mirror "
                f"image gets the other flank on {mirror['flips']}  (right answered {mirror['right_share']}, for "
                f"the mirrors {mirror['right_share_mirrored']})"
            )
    labelled = result.get("labelled")
    if labelled:
        v, b = labelled["view"], labelled["body"]
        lines.append(
            f"labelled: view n={v['n']} accuracy {v['accuracy']}  balanced recall {v['balanced_recall']} of "
            f"{v['families_counted']} families  front/rear {v['front_rear_accuracy']} "
            f"(n={v['front_rear_n']})  head-on vs 3/4 {v['head_on_accuracy']}  "
            f"body n={b['n']} accuracy {b['accuracy']} (majority {b['majority_share']})  "
            f"balanced recall {b['balanced_recall']} of {b['types_counted']} types"
        )
        for key, how in (("flank", "as tagged"), ("flank_head", "angle head alone")):
            if key not in labelled:
                continue
            f = labelled[key]
            lines.append(
                f"labelled flank, {how}: n={f['n']} accuracy {f['accuracy']}  when the view is right "
                f"{f['accuracy_when_view_right']} (n={f['n_view_right']})  one-answer baseline {f['majority_share']}  "
                f"called right {f['predicted_right_share']}"
                + (f"  mirror image gets the other flank {f['mirror']['flips']}" if "mirror" in f else "")
            )
        for kind, part in labelled.get("lamp_crops", {}).items():
            if isinstance(part, dict) and part.get("n"):
                g = part["shot_group"]
                lines.append(
                    f"real lamp close-ups, {kind}: n={part['n']} called detail {g['detail']}  exterior "
                    f"{g['exterior']}  interior {g['interior']}  own class {part['exact_class']}  plate flagged "
                    f"{part['plate_flagged']}"
                )
        for floor, pt in labelled.get("detail_operating_points", {}).get("at_exterior_rate", {}).items():
            if pt is not None:
                lines.append(f"lamp close-ups called detail with exteriors >= {floor}: {pt['crops_called_detail']} "
                             f"(detail shift {pt['shift']}, exteriors {pt['exterior_rate']})")
        for budget, pt in labelled.get("plate_operating_points", {}).get("at_lamp_flagged", {}).items():
            lines.append(
                f"plate at lamp close-ups flagged <= {budget}: threshold {pt['threshold']}  recall {pt['recall']}  "
                f"found and IoU >= 0.5 {pt['found_and_iou50']}  flagged {pt['lamp_flagged']}"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, score the photos, write the JSON; 2 when the photos or models are missing."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder with plates.csv and plates/")
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder of <task>/model.keras")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--limit", type=int, default=None, help="score only N photos, spread over the set")
    parser.add_argument("--conf", type=Path, default=None, help="config file (default conf/local.yaml)")
    parser.add_argument("--views", type=Path, default=None,
                        help="your own labels of the photos (file,view,body), kept outside the repository")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be at least 1, got {args.limit}")
    photos_dir, models_dir = args.photos.resolve(), args.models.resolve()
    problems = check_inputs(photos_dir, models_dir)
    if problems:
        for problem in problems:
            print(f"bench_real_dev: {problem}", file=sys.stderr)
        return 2
    if args.views is not None and not args.views.is_file():
        print(f"bench_real_dev: view labels not found: {args.views}", file=sys.stderr)
        return 2
    result = run(photos_dir, models_dir, limit=args.limit, conf=args.conf, views=args.views)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for line in summary_lines(result):
        print(line)
    print(f"wrote {_display(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
