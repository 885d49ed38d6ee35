"""Tier 2: ``fleetvision train all --quick --register --out DIR`` end to end on a tiny table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from test_feed import jpeg_bytes, training_row, write_training_rows

pytestmark = pytest.mark.spark


@pytest.fixture()
def tiny_table(spark, database) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):
        split = "train" if i < 24 else ("val" if i < 32 else "eval")
        dataset = "synthetic-eval-t" if split == "eval" else "synthetic-train-t"
        plate = i % 3 == 0
        rows.append(
            training_row(
                f"t{i:02d}",
                jpeg_bytes(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)),
                split=split,
                dataset=dataset,
                angle_index=i % 27,
                has_banner=i % 2,
                plate_present=int(plate),
                plate_box=[0.2, 0.6, 0.4, 0.7] if plate else [],
                body_index=i % 7 if i % 27 < 8 else -1,
            )
        )
    write_training_rows(spark, database, rows)


def _own_mlflow(config, tmp_path: Path, **models: object):
    """``config`` at input size 32 (and ``models``) with an MLflow store of the test's own, made current."""
    import mlflow

    cfg = config.model_copy(
        update={
            "models": config.models.model_copy(update={"input_size": 32, **models}),
            "mlflow": config.mlflow.model_copy(update={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}),
        }
    )
    mlflow.set_tracking_uri(cfg.mlflow.resolved_tracking_uri())
    mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=(tmp_path / "mlartifacts").as_uri())
    return cfg


def test_train_all_quick_registers_four_models(spark, config, tiny_table, tmp_path: Path) -> None:
    from fleetvision.models import train_job
    from fleetvision.models.resolve import mlflow_client
    from fleetvision.models.serving import clear_model_cache

    cfg = _own_mlflow(config, tmp_path)
    out = tmp_path / "starter"
    args = argparse.Namespace(
        task="all", quick=True, epochs=None, register=True, out=out, no_eval=False, conf=None, overrides=[]
    )
    assert train_job.main(spark, cfg, args) == 0
    clear_model_cache()

    client = mlflow_client(cfg)
    for task in ("angle", "banner", "plate", "body"):
        versions = client.search_model_versions(f"name='fleetvision-{task}'")
        assert len(versions) == 1 and versions[0].tags["fleetvision.input_size"] == "32"
        card = json.loads((out / task / "metrics.json").read_text())
        assert (out / task / "head.keras").is_file() and (out / task / "backbone.json").is_file()
        assert card["command"] == f"fleetvision train all --quick --register --out {out}"
        assert card["train_rows"] == 24 and "n" in card["metrics"]
    run = client.get_run(versions[0].tags["fleetvision.train_run_id"])
    assert run.data.params["quick"] == "True" and run.data.params["n_val"] == "8"
    # models.feature_passes auto: 24 rows are each seen in 4 augmentations; the card holds the number used
    assert run.data.params["feature_passes"] == "auto" and run.data.params["feature_passes_used"] == "4"
    assert card["spec"]["feature_passes"] == 4
    assert "eval.angle.mirror_pair_accuracy" in run.data.metrics and "eval.plate.mean_iou" in run.data.metrics
    assert "eval.angle.with_plate_flank.mirror_pair_accuracy" in run.data.metrics  # angle and plate trained together
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train.loss")] == [1]
    assert "train.val_loss" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "eval/angle")}
    assert {"eval/angle/confusion.png", "eval/angle/per_class.csv", "eval/angle/metrics.json"} <= artifacts


def test_train_rejects_unknown_task_and_empty_table(spark, config, tmp_path: Path) -> None:
    from fleetvision.models import train_job
    from fleetvision.tables import TRAINING_IMAGES, ensure_table

    args = argparse.Namespace(
        task="wheels", quick=True, epochs=None, register=False, out=None, no_eval=True, conf=None, overrides=[]
    )
    assert train_job.main(spark, config, args) == 2
    ensure_table(spark, config.tables.database, TRAINING_IMAGES)
    cfg = config.model_copy(
        update={"mlflow": config.mlflow.model_copy(update={"tracking_uri": f"sqlite:///{tmp_path / 'm.db'}"})}
    )
    import mlflow

    mlflow.set_tracking_uri(cfg.mlflow.resolved_tracking_uri())
    mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=(tmp_path / "mlartifacts").as_uri())
    assert train_job.main(spark, cfg, argparse.Namespace(**{**vars(args), "task": "angle"})) == 2


def test_fine_tuned_backbone_is_saved_whole_and_a_head_retrained_on_it_still_fuses(
    spark, config, tiny_table, tmp_path: Path
) -> None:
    """``models.finetune_blocks``: the run fine-tunes the backbone's last block after the heads, saves whole
    task models (the backbone is no longer the package's), and they fuse; a head retrained alone
    ``--init-from`` them keeps that backbone, is saved whole too, and fuses with the others."""
    from fleetvision.models import train_job
    from fleetvision.models.efficientnet_lite import pretrained_backbone
    from fleetvision.models.pretrained import (
        fuse_task_models,
        load_saved_task_model,
        nested_backbone,
        weights_fingerprint,
    )
    from fleetvision.models.resolve import mlflow_client

    cfg = _own_mlflow(config, tmp_path, finetune_blocks=1)
    out = tmp_path / "tuned"
    args = argparse.Namespace(
        task="all", quick=True, epochs=None, register=False, out=out, no_eval=True, conf=None, overrides=[]
    )
    assert train_job.main(spark, cfg, args) == 0
    tasks = ("angle", "banner", "plate", "body")
    for task in tasks:
        assert (out / task / "model.keras").is_file() and not (out / task / "head.keras").exists()
    models = {t: load_saved_task_model(out / t, t) for t in tasks}
    tuned = weights_fingerprint(nested_backbone(models["angle"]))
    packaged, _ = pretrained_backbone("efficientnet_lite0", (32, 32, 3))
    assert tuned != weights_fingerprint(packaged)
    assert [group for group, _ in fuse_task_models(models)] == [tasks]
    run_id = json.loads((out / "angle" / "metrics.json").read_text())["mlflow_run_id"]
    run = mlflow_client(cfg).get_run(run_id)
    assert run.data.params["finetune_blocks"] == "1"
    assert [m.step for m in mlflow_client(cfg).get_metric_history(run_id, "finetune.loss")] == [1]

    # the body head alone, on the fine-tuned backbone kept frozen
    frozen = cfg.model_copy(update={"models": cfg.models.model_copy(update={"finetune_blocks": 0})})
    again = tmp_path / "body-again"
    args = argparse.Namespace(**{**vars(args), "task": "body", "out": again, "overrides": []})
    args.init_from = str(out)
    assert train_job.main(spark, frozen, args) == 0
    body = load_saved_task_model(again / "body", "body")
    assert (again / "body" / "model.keras").is_file() and not (again / "body" / "head.keras").exists()
    assert weights_fingerprint(nested_backbone(body)) == tuned
    mixed = {**models, "body": body}
    assert [group for group, _ in fuse_task_models(mixed)] == [tasks]


def test_train_all_on_rows_that_label_angle_and_body_trains_and_logs_only_those(
    spark, config, database, tiny_table, tmp_path: Path
) -> None:
    """Imported labels (angle and body) teach no banner or plate: ``train all`` leaves those two out (not
    trained, logged or registered; their current models stay) and says so; ``--out`` still gets a whole
    model set when ``--init-from`` is a folder: the two it left out are copied from there unchanged."""
    from fleetvision.models import train_job
    from fleetvision.models.resolve import mlflow_client

    rng = np.random.default_rng(5)
    rows = [
        training_row(
            f"r{i:02d}",
            jpeg_bytes(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)),
            split="train" if i < 16 else "val",
            dataset="folder:/labels",
            angle_index=i % 8,
            body_index=i % 7 if i % 2 else -1,
        )
        for i in range(20)
    ]
    write_training_rows(spark, database, rows)
    cfg = _own_mlflow(config, tmp_path, training_dataset="folder:")
    out = tmp_path / "labelled"
    args = argparse.Namespace(
        task="all", quick=True, epochs=None, register=True, out=out, no_eval=True, conf=None, overrides=[]
    )
    assert train_job.main(spark, cfg, args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["angle", "body"]
    client = mlflow_client(cfg)
    assert [len(client.search_model_versions(f"name='fleetvision-{t}'")) for t in ("angle", "body")] == [1, 1]
    assert not client.search_model_versions("name='fleetvision-banner'")
    run = client.get_run(json.loads((out / "angle" / "metrics.json").read_text())["mlflow_run_id"])
    assert run.data.tags["fleetvision.tasks"] == "angle,body"
    assert run.data.tags["fleetvision.skipped_tasks"] == "banner,plate"
    # a task asked for by name with no labelled row is still an error, not a silent no-op
    assert train_job.main(spark, cfg, argparse.Namespace(**{**vars(args), "task": "plate", "out": None})) == 2

    # --init-from a folder (a whole set trained on the synthetic rows): --out holds all four again
    start = tmp_path / "start"
    synthetic = cfg.model_copy(update={"models": cfg.models.model_copy(update={"training_dataset": "synthetic"})})
    assert train_job.main(spark, synthetic, argparse.Namespace(**{**vars(args), "register": False, "out": start})) == 0
    again = tmp_path / "again"
    args = argparse.Namespace(**{**vars(args), "register": False, "out": again})
    args.init_from = str(start)
    assert train_job.main(spark, cfg, args) == 0
    assert sorted(p.name for p in again.iterdir()) == ["angle", "banner", "body", "plate"]
    for task in ("banner", "plate"):  # copied as they were, their own card with them
        assert {f.name: f.read_bytes() for f in (again / task).iterdir()} == {
            f.name: f.read_bytes() for f in (start / task).iterdir()
        }
    assert (again / "angle" / "head.keras").read_bytes() != (start / "angle" / "head.keras").read_bytes()
