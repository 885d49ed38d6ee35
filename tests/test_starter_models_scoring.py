"""The shipped starter models on a generated inventory, through the scorer's pure functions (no Spark).

Scores and hero picks must match the ground truth *where the models are right*. Here the
same photos are scored twice, once by the four starter models (``models/starter``) and once by an
oracle that answers with the generator's labels; for every listing whose photos the starter models
all got right (shot, banner flag, plate flag and, on exterior shots, body type), the completeness row
and the hero row must be exactly the oracle's. The starter models' own accuracy on inventory photos
(real file sizes, formats and EXIF orientations, not the 256-px training photos) is checked too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_score_job_support import OracleModels, StandInModelSet, Truth, pixel_key

from fleetvision import decode
from fleetvision.config import load_config
from fleetvision.scoring import ScoringRules
from fleetvision.scoring import udf as U
from fleetvision.scoring.completeness import completeness
from fleetvision.scoring.hero import hero_row
from fleetvision.synth.inventory import InventorySettings, image_rows, label_rows, plan_inventory, render_plans
from fleetvision.taxonomy import load_taxonomy

TAX = load_taxonomy()
RULES = ScoringRules.default(TAX)
STARTER = Path(__file__).resolve().parents[1] / "models" / "starter"
N_LISTINGS = 24


@pytest.fixture(scope="module")
def scored():
    return score_inventory()


def score_inventory(n_listings: int = N_LISTINGS) -> dict:
    """Score a generated inventory with the starter models and with the oracle (no Spark)."""
    from fleetvision.models.pretrained import load_saved_task_model
    from fleetvision.models.serving import predict_fn_for

    cfg = load_config(environ={})
    size = cfg.models.input_size
    inv = plan_inventory(InventorySettings(seed=23, n_listings=n_listings, photo_scale=0.5), TAX)
    files, _ = render_plans(inv.photos, None, keep_bytes=True, workers=1)
    images = pd.DataFrame(image_rows(inv.photos, files, inline=True))
    labels = {r["image_id"]: r for r in label_rows(inv.photos, files)}
    settings = U.UdfSettings(image_size=size, max_pixels=cfg.scoring.max_image_pixels, max_bytes=1 << 26,
                             model_batch_size=64)

    _, photos = decode.decode_batch(list(images.content), size, settings.max_pixels, uris=list(images.uri))
    pixel_truth = {
        pixel_key(p.array): Truth(lab["angle"], bool(lab["has_banner"]), bool(lab["plate_present"]),
                                  lab["body_type"] or TAX.body_types[0])
        for p, lab in zip(photos, (labels[i] for i in images.image_id), strict=True)
        if p.ok
    }
    oracle = OracleModels(pixel_truth, TAX)(StandInModelSet())
    starter = {
        task: predict_fn_for(load_saved_task_model(STARTER / task, task), size)
        for task in ("angle", "banner", "plate", "body")
    }
    frames = {}
    for name, models in (("starter", starter), ("truth", oracle)):
        frame = U.score_frame(images.uri, images.content, models, settings, TAX, RULES)
        frame["image_id"] = images.image_id.to_numpy()
        frame["listing_id"] = images.listing_id.to_numpy()
        frame["position"] = images.position.to_numpy()
        frame["content_hash"] = [hashlib.sha256(c).hexdigest() if c is not None else None for c in images.content]
        frames[name] = frame
    return {"listings": {p.listing_id: p.row() for p in inv.listings}, "labels": labels, **frames}


def _right(starter: pd.Series, truth: pd.Series, fields: tuple[str, ...]) -> bool:
    """The starter models said what the oracle said on ``fields`` (``body`` = type on exterior shots)."""
    if starter.decode_status != "ok":
        return True  # failures are the decoder's, identical in both
    for f in fields:
        if f == "body":
            if truth.shot_group == "exterior" and (
                starter.body_type != truth.body_type or starter.body_score < RULES.body_min_score
            ):
                return False
        elif starter[f] != truth[f]:
            return False
    return True


def test_starter_models_are_accurate_on_inventory_photos(scored) -> None:
    s, labels = scored["starter"], scored["labels"]
    ok = s[s.decode_status == "ok"]
    assert len(ok) > 100
    truth = pd.DataFrame([labels[i] for i in ok.image_id])
    angle_acc = float(np.mean(ok.angle.to_numpy() == truth.angle.to_numpy()))
    banner_acc = float(np.mean(ok.banner_flag.to_numpy(bool) == truth.has_banner.to_numpy(bool)))
    # these photos come at real sizes (640x480 to 1600x1200 and beyond, portrait, EXIF-rotated, PNG/WebP):
    # the models were trained on 256-px JPEGs, so this is the domain gap the nightly job lives with
    assert angle_acc >= 0.85, angle_acc
    assert banner_acc >= 0.90, banner_acc
    # body type on exterior shots (a miscalled shot that loses its body answer counts as wrong): 0.70 on
    # these 24 listings with the body head on the frozen EfficientNet-Lite0 (0.73 on the frozen eval set,
    # below the 0.85 target: docs/models.md); the MobileNetV3 4-view body model had 0.84 on the old renders
    exterior = (truth.shot_group == "exterior").to_numpy()
    body_acc = float(np.mean(ok.body_type.to_numpy()[exterior] == truth.body_type.to_numpy()[exterior]))
    assert exterior.sum() > 50 and body_acc >= 0.65, (int(exterior.sum()), body_acc)


# Which listing fields depend on which model answers (scoring/completeness.py, scoring/hero.py): the
# score and its components, the shots present/missing and the hero pick read the shot and banner flag
# (and pixels, the same in both); plate_visible reads the plate flag; the body fields read body votes.
SHOT_FIELDS = ("n_photos", "n_scored", "n_failed", "n_exterior", "n_interior", "n_detail", "shots_present",
               "shots_missing", "banner_free_share", "mean_quality", "completeness_score", "components")


def test_scores_and_hero_picks_match_the_truth_where_the_models_are_right(scored) -> None:
    s, t, listings = scored["starter"], scored["truth"], scored["listings"]
    compared = {"shots": 0, "plate": 0, "body": 0, "all": 0}
    for lid, tags in s.groupby("listing_id", sort=True):
        truth_tags = t[t.listing_id == lid]
        pairs = list(zip((r for _, r in tags.iterrows()), (r for _, r in truth_tags.iterrows()), strict=True))

        def right(*fields: str, pairs=pairs) -> bool:
            return all(_right(a, b, fields) for a, b in pairs)

        got = completeness(listings[lid], tags, TAX, RULES)
        want = completeness(listings[lid], truth_tags, TAX, RULES)
        if right("angle", "banner_flag"):
            compared["shots"] += 1
            assert {k: got[k] for k in SHOT_FIELDS} == {k: want[k] for k in SHOT_FIELDS}, lid
            assert hero_row(tags, TAX, RULES) == hero_row(truth_tags, TAX, RULES), lid
        if right("angle", "plate_flag"):
            compared["plate"] += 1
            assert got["plate_visible"] == want["plate_visible"], lid
        if right("angle", "body"):
            compared["body"] += 1
            assert (got["predicted_body_type"], got["body_type_mismatch"]) == (
                want["predicted_body_type"], want["body_type_mismatch"]), lid
        if right("angle", "banner_flag", "plate_flag", "body"):
            compared["all"] += 1
            assert got == want, lid
    # enough listings were right for each comparison to mean something (24 listings, ~11 photos each)
    # (body: every exterior photo of a listing must be right, ~0.84 each on these photos, so fewer are)
    assert compared["shots"] >= 12 and compared["plate"] >= 8 and compared["body"] >= 2, compared
