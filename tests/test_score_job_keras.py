"""The scoring job with real Keras models resolved from the MLflow registry by alias (no stand-ins)."""

from __future__ import annotations

import numpy as np
import pytest
from test_score_job_support import write_inventory

from fleetvision import tables
from fleetvision.scoring.run import RunOptions, run_scoring
from fleetvision.taxonomy import load_taxonomy

pytestmark = pytest.mark.spark
SIZE = 64


@pytest.fixture()
def keras_config(config, tmp_path):
    """The test config with its own MLflow store and 64 px models."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = config.model_copy(
        update={
            "mlflow": config.mlflow.model_copy(update={"tracking_uri": uri}),
            "models": config.models.model_copy(update={"input_size": SIZE}),
            "scoring": config.scoring.model_copy(update={"max_decode_error_rate": 0.25, "min_scored_share": 0.75}),
        }
    )
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=(tmp_path / "mlartifacts").as_uri())
    return cfg


def _register_tiny_models(cfg) -> dict[str, str]:
    """Untrained (but real) Keras task models, registered and made champion: what a promotion leaves."""
    import mlflow

    from fleetvision.models.architecture import build_multitask_model, task_model
    from fleetvision.models.registration import log_task_model, set_champion
    from fleetvision.models.spec import TrainSpec
    from fleetvision.tracking import configure_mlflow

    tasks = ("angle", "banner", "plate", "body")
    model = build_multitask_model(TrainSpec.from_config(cfg, tasks, quick=True), 27, 7)
    configure_mlflow(cfg)
    example = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    versions = {}
    with mlflow.start_run(run_name="tiny-models"):
        for task in tasks:
            _, versions[task] = log_task_model(
                task_model(model, task), cfg, task, example=example, register=True, source="test", taxonomy_version=1
            )
    for task, version in versions.items():
        set_champion(cfg, task, version)
    return versions


def test_full_run_with_registered_keras_models(spark, keras_config, tmp_path):
    cfg = keras_config
    taxonomy = load_taxonomy()
    versions = _register_tiny_models(cfg)
    inv = write_inventory(spark, cfg.tables.database, tmp_path / "photos", taxonomy, n_listings=3, size=SIZE)

    summary = run_scoring(spark, cfg, RunOptions(mode="full"))  # resolved by alias, loaded in the workers
    assert summary.status == "succeeded", summary.render()
    assert summary.model_versions == {t: str(v) for t, v in versions.items()}  # what the alias resolved to
    assert summary.mlflow_run_id is not None

    tags = spark.table(tables.qualified(cfg.tables.database, tables.IMAGE_TAGS)).collect()
    assert len(tags) == len(inv.rows) == len({r["image_id"] for r in tags})
    ok = [r for r in tags if r["decode_status"] == "ok"]
    assert len(ok) == len(inv.truth_by_image)
    for r in ok:
        assert r["angle"] in taxonomy.names and 0.0 <= r["angle_score"] <= 1.0
        assert len(r["angle_top3"]) == 3 and 0.0 <= r["banner_score"] <= 1.0 and 0.0 <= r["plate_score"] <= 1.0
        assert r["model_set_id"] == summary.model_set_id
        assert r["model_versions"] == summary.model_versions

    import mlflow

    run = mlflow.get_run(summary.mlflow_run_id)
    assert run.data.params["mode"] == "full"
    assert run.data.params["model_version.angle"] == str(versions["angle"])
    assert run.data.metrics["images_in"] == len(inv.rows)
    assert "stage_seconds.infer" in run.data.metrics and "failed.truncated" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(summary.mlflow_run_id)}
    assert {"summary.json", "dq_report.json", "hero_contact_sheet.png"} <= artifacts
