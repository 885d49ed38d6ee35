"""Tier 2: ``fleetvision evaluate`` and ``fleetvision promote`` against a real MLflow registry and Spark table.

The candidates are hand-made banner models with fixed weights (banner score = how bright the photo
is, or how dark), so "better" and "worse" are certain rather than the luck of a training run.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from test_feed import jpeg_bytes, training_row, write_training_rows

pytestmark = pytest.mark.spark

SIZE = 32


def _brightness_model(sign: float):
    """Banner score = sigmoid(sign * 20 * (mean brightness - 0.5))."""
    import keras

    image = keras.Input((SIZE, SIZE, 3), dtype="uint8", name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(image))
    dense = keras.layers.Dense(1, activation="sigmoid", name="banner")
    out = dense(x)
    dense.set_weights([np.full((3, 1), sign * 20 / 3, np.float32), np.array([-sign * 10], np.float32)])
    return keras.Model(image, {"banner": out})


@pytest.fixture()
def promo_config(config, tmp_path: Path):
    import mlflow

    cfg = config.model_copy(
        update={
            "models": config.models.model_copy(update={"input_size": SIZE}),
            "mlflow": config.mlflow.model_copy(update={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}),
            "promote": config.promote.model_copy(update={"min_metrics": {"banner.f1": 0.5}}),
        }
    )
    mlflow.set_tracking_uri(cfg.mlflow.resolved_tracking_uri())
    mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=(tmp_path / "mlartifacts").as_uri())
    yield cfg
    from fleetvision.models.serving import clear_model_cache

    clear_model_cache()


@pytest.fixture()
def eval_rows(spark, database):
    rows = []
    for i in range(12):
        bright = i % 2 == 0
        level = 220 + i if bright else 20 + i
        img = np.full((40, 50, 3), level, np.uint8)
        rows.append(
            training_row(f"e{i:02d}", jpeg_bytes(img), split="eval", dataset="synthetic-eval-t", has_banner=int(bright))
        )
    write_training_rows(spark, database, rows)


def _register(cfg, sign: float) -> str:
    import mlflow

    from fleetvision.models.registration import log_task_model
    from fleetvision.tracking import configure_mlflow

    configure_mlflow(cfg)
    with mlflow.start_run():
        _, version = log_task_model(
            _brightness_model(sign),
            cfg,
            "banner",
            example=np.zeros((1, SIZE, SIZE, 3), np.uint8),
            register=True,
            source="test",
            taxonomy_version=1,
        )
    return str(version)


def _champion(cfg) -> str | None:
    from fleetvision.models.resolve import ModelNotFoundError, resolve_model_ref

    try:
        return resolve_model_ref(cfg, "banner").version
    except ModelNotFoundError:
        return None


def test_promote_refuses_worse_and_accepts_better(spark, promo_config, eval_rows, caplog) -> None:
    from fleetvision.models import promote_job

    cfg = promo_config
    good, bad, good_again = _register(cfg, +1), _register(cfg, -1), _register(cfg, +1)

    def promote(version: str) -> int:
        return promote_job.main(spark, cfg, argparse.Namespace(task="banner", version=version, starter=False))

    caplog.set_level(logging.INFO, logger="fleetvision")
    # no champion yet: the floor (banner.f1 >= 0.5) decides
    assert promote(bad) == 1
    assert "f1: candidate 0.0000 vs minimum 0.5000" in caplog.text and _champion(cfg) is None
    assert promote(good) == 0 and _champion(cfg) == good
    caplog.clear()
    # a worse candidate is refused and the message names the metric
    assert promote(bad) == 1
    assert "f1: candidate 0.0000 vs champion 1.0000" in caplog.text and "not promoted: f1 fell short" in caplog.text
    assert _champion(cfg) == good
    # as good is good enough
    assert promote(good_again) == 0 and _champion(cfg) == good_again
    assert promote(good_again) == 0  # already champion
    assert promote("99") == 2  # no such version


def test_promote_decodes_the_eval_set_once_for_candidate_and_champion(spark, promo_config, eval_rows,
                                                                     monkeypatch) -> None:
    from fleetvision.feed import load_eval_set
    from fleetvision.models import frozen_eval, promote_job
    from fleetvision.models.resolve import resolve_model_ref

    cfg = promo_config
    champion, candidate = _register(cfg, +1), _register(cfg, -1)
    assert promote_job.main(spark, cfg, argparse.Namespace(task="banner", version=champion, starter=False)) == 0
    calls = []
    real_decode = frozen_eval.decode_eval_set

    def counted(*args, **kwargs):
        calls.append(args[1:])
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(frozen_eval, "decode_eval_set", counted)
    monkeypatch.setattr(promote_job, "decode_eval_set", counted)
    eval_set = load_eval_set(spark, cfg)
    decision = promote_job.promote_candidate(cfg, "banner", candidate, eval_set)
    assert not decision.promote and decision.champion_version == champion  # both were evaluated
    assert calls == [(SIZE, cfg.scoring.max_image_pixels)]
    # photos decoded at another size are refused, not fed to the model
    wrong = real_decode(eval_set, SIZE * 2, cfg.scoring.max_image_pixels)
    with pytest.raises(ValueError, match="reads 32 x 32"):
        frozen_eval.evaluate_ref(cfg, resolve_model_ref(cfg, "banner", version=candidate), eval_set, decoded=wrong,
                                 log_to_mlflow=False)


def test_evaluate_writes_metrics_json_and_tags_the_version(spark, promo_config, eval_rows, tmp_path: Path) -> None:
    from fleetvision.models import evaluate_job
    from fleetvision.models.resolve import mlflow_client

    cfg = promo_config
    version = _register(cfg, -1)
    out = tmp_path / "metrics.json"
    args = argparse.Namespace(task="banner", version=version, alias=None, out=out)
    assert evaluate_job.main(spark, cfg, args) == 0
    payload = json.loads(out.read_text())
    assert payload["metrics"]["f1"] == 0.0 and payload["metrics"]["n"] == 12.0
    assert payload["version"] == version and payload["eval_rows"] == 12 and len(payload["eval_fingerprint"]) == 16
    tags = mlflow_client(cfg).get_model_version("fleetvision-banner", version).tags
    assert tags["eval.f1"] == "0" and tags["eval.fingerprint"] == payload["eval_fingerprint"]
    # an alias nobody holds is a clean usage error
    assert evaluate_job.main(spark, cfg, argparse.Namespace(task="banner", version=None, alias="nope", out=out)) == 2


def _constant_angle_model(probabilities: np.ndarray):
    """The same angle softmax for every photo."""
    import keras

    image = keras.Input((SIZE, SIZE, 3), dtype="uint8", name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(image))
    dense = keras.layers.Dense(len(probabilities), activation="softmax", name="angle")
    out = dense(x)
    dense.set_weights([np.zeros((3, len(probabilities)), np.float32), np.log(probabilities).astype(np.float32)])
    return keras.Model(image, {"angle": out})


def _brightness_plate_model():
    """A plate in every photo, its box centred at x = the photo's mean brightness (0 dark .. 1 bright)."""
    import keras

    image = keras.Input((SIZE, SIZE, 3), dtype="uint8", name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(image))
    presence, box = (keras.layers.Dense(1, activation="sigmoid", name="plate_presence"),
                     keras.layers.Dense(4, name="plate_box"))
    outputs = {"plate_presence": presence(x), "plate_box": box(x)}
    presence.set_weights([np.zeros((3, 1), np.float32), np.array([10.0], np.float32)])
    box.set_weights([np.tile(np.array([[1, 0, 1, 0]], np.float32) / 3, (3, 1)),
                     np.array([-0.05, 0.45, 0.05, 0.55], np.float32)])
    return keras.Model(image, outputs)


def test_evaluate_angle_reports_the_plate_flank_cue_beside_the_plate_champion(
    spark, promo_config, database, taxonomy, tmp_path: Path
) -> None:
    """``evaluate angle`` runs the angle version beside the plate champion, as the nightly job does: its
    metrics hold the model's own top-1 and, under ``with_plate_flank.``, the top-1 of the tags."""
    import mlflow

    from fleetvision.models import evaluate_job
    from fleetvision.models.registration import log_task_model
    from fleetvision.models.resolve import mlflow_client
    from fleetvision.scoring.plate_flank import flank_pairs
    from fleetvision.tracking import configure_mlflow

    cfg = promo_config
    assert cfg.scoring.plate_flank_strength > 0
    left, right, _ = next(p for p in flank_pairs(taxonomy) if p[2] < 0)  # front 3/4: plate left = left flank
    # front 3/4 photos, half on each flank; dark photos hold their plate left of the middle, bright ones right
    rows = [
        training_row(f"a{i:02d}", jpeg_bytes(np.full((40, 50, 3), 25 if i % 2 else 230, np.uint8)), split="eval",
                     dataset="synthetic-eval-t", angle_index=left if i % 2 else right)
        for i in range(12)
    ]
    write_training_rows(spark, database, rows)
    # the angle model leans "right" for all of them: right on half
    probabilities = np.full(len(taxonomy.names), 1e-4)
    probabilities[[left, right]] = 0.45, 0.55
    probabilities /= probabilities.sum()

    configure_mlflow(cfg)
    example = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    versions = {}
    for task, model in (("angle", _constant_angle_model(probabilities)), ("plate", _brightness_plate_model())):
        with mlflow.start_run():
            _, versions[task] = log_task_model(model, cfg, task, example=example, register=True, source="test",
                                               taxonomy_version=1)
    out = tmp_path / "angle.json"

    def evaluate() -> dict:
        args = argparse.Namespace(task="angle", version=str(versions["angle"]), alias=None, out=out)
        assert evaluate_job.main(spark, cfg, args) == 0
        return json.loads(out.read_text())

    # no plate champion yet: the angle model is evaluated alone
    alone = evaluate()
    assert alone["metrics"]["top1"] == 0.5 and "evaluated_beside" not in alone
    assert not any(k.startswith("with_plate_flank.") for k in alone["metrics"])

    client = mlflow_client(cfg)
    client.set_registered_model_alias("fleetvision-plate", cfg.mlflow.model_alias, str(versions["plate"]))
    beside = evaluate()
    assert beside["metrics"]["top1"] == 0.5  # the model's own figure is unchanged
    assert beside["metrics"]["with_plate_flank.top1"] == 1.0  # the plate's side settles each flank
    assert beside["evaluated_beside"] == [f"models:/fleetvision-plate/{versions['plate']}"]
    tags = client.get_model_version("fleetvision-angle", str(versions["angle"])).tags
    assert float(tags["eval.with_plate_flank.top1"]) == 1.0

    # the cue turned off: evaluated alone again
    off = cfg.model_copy(update={"scoring": cfg.scoring.model_copy(update={"plate_flank_strength": 0.0})})
    args = argparse.Namespace(task="angle", version=str(versions["angle"]), alias=None, out=out)
    assert evaluate_job.main(spark, off, args) == 0
    assert "evaluated_beside" not in json.loads(out.read_text())
