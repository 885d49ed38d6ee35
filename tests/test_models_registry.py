"""Tier 1 with a real MLflow (SQLite file + local artifacts): log, register, resolve, load, starter models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fleetvision.config import load_config
from fleetvision.models.spec import TrainSpec

SIZE = 64


@pytest.fixture()
def mlflow_config(tmp_path: Path):
    """A config with its own MLflow store whose artifacts live under tmp_path (not the repo)."""
    import mlflow

    cfg = load_config(
        overrides=[
            f"models.input_size={SIZE}",
            f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"paths.artifacts={tmp_path / 'artifacts'}",
            f"paths.reports={tmp_path / 'reports'}",
        ],
        environ={},
    )
    mlflow.set_tracking_uri(cfg.mlflow.resolved_tracking_uri())
    mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=(tmp_path / "mlartifacts").as_uri())
    yield cfg
    from fleetvision.models.serving import clear_model_cache

    clear_model_cache()


def _tiny_models(cfg, tasks=("angle", "plate")):
    from fleetvision.models.architecture import build_multitask_model, task_model

    spec = TrainSpec.from_config(cfg, tasks, quick=True)
    model = build_multitask_model(spec, 27, 7)
    return {t: task_model(model, t) for t in tasks}


def _register_champion(cfg, task: str) -> str:
    """Log a tiny model for ``task``, register it and make it ``@champion``; returns the version."""
    import mlflow

    from fleetvision.models import registration
    from fleetvision.tracking import configure_mlflow

    configure_mlflow(cfg)
    with mlflow.start_run():
        _, version = registration.log_task_model(
            _tiny_models(cfg, (task,))[task],
            cfg,
            task,
            example=np.zeros((1, SIZE, SIZE, 3), np.uint8),
            register=True,
            source="test",
            taxonomy_version=1,
        )
    registration.set_champion(cfg, task, version)
    return version


def test_model_round_trips_through_the_registry_by_alias(mlflow_config) -> None:
    import mlflow

    from fleetvision.models.registration import log_task_model, set_champion
    from fleetvision.models.resolve import resolve_model_set
    from fleetvision.models.serving import load_models, predict_fn_for
    from fleetvision.tracking import configure_mlflow

    cfg = mlflow_config
    models = _tiny_models(cfg)
    configure_mlflow(cfg)
    example = np.random.default_rng(0).integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
    versions = {}
    with mlflow.start_run():
        for task, model in models.items():
            _, versions[task] = log_task_model(
                model,
                cfg,
                task,
                example=example,
                register=True,
                source="test",
                taxonomy_version=1,
                metrics={"top1": 0.5},
            )
    for task, version in versions.items():
        set_champion(cfg, task, version)

    model_set = resolve_model_set(cfg, tasks=("angle", "plate"))
    assert model_set["angle"].uri == f"models:/fleetvision-angle/{versions['angle']}"
    assert model_set.alias == "champion" and len(model_set.model_set_id) == 12

    batch = np.random.default_rng(1).integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    loaded = load_models(model_set)
    # task models on one pretrained backbone come back fused: one function answering for both
    assert set(loaded) == {"angle+plate"}
    got = loaded["angle+plate"](batch)
    for model in models.values():
        expected = predict_fn_for(model, SIZE)(batch)
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6)

    # the same numbers through MLflow's own loader and the models:/ alias URI
    via_alias = mlflow.keras.load_model("models:/fleetvision-angle@champion")
    np.testing.assert_allclose(
        via_alias.predict_on_batch(batch)["angle"], got["angle"], rtol=1e-5, atol=1e-6
    )
    # the signature says uint8 [-1, S, S, 3]
    info = mlflow.models.get_model_info(f"models:/fleetvision-plate/{versions['plate']}")
    spec = info.signature.inputs.inputs[0]
    assert spec.type == np.dtype("uint8") and tuple(spec.shape) == (-1, SIZE, SIZE, 3)
    assert {o.name for o in info.signature.outputs.inputs} == {"plate_presence", "plate_box"}


def test_load_models_caches_per_process(mlflow_config) -> None:
    from fleetvision.models import resolve, serving

    cfg = mlflow_config
    _register_champion(cfg, "banner")
    model_set = resolve.resolve_model_set(cfg, tasks=("banner",))
    first = serving.load_models(model_set)
    key = (serving.model_set_key(model_set), serving.loader_key(serving.read_models))
    assert key in serving.MODEL_CACHE
    assert serving.load_models(model_set) is first and len(serving.MODEL_CACHE) == 1


def test_resolve_fails_clearly_without_champion_or_on_size_mismatch(mlflow_config) -> None:
    from fleetvision.models import resolve

    cfg = mlflow_config
    with pytest.raises(resolve.ModelNotFoundError, match=r"fleetvision-body.*@champion.*register_starter_models"):
        resolve.resolve_model_set(cfg, tasks=("body",))
    _register_champion(cfg, "body")
    bigger = cfg.model_copy(update={"models": cfg.models.model_copy(update={"input_size": 96})})
    with pytest.raises(ValueError, match=r"takes 64x64 input but models\.input_size is 96"):
        resolve.resolve_model_set(bigger, tasks=("body",))


def test_register_starter_models_sets_champions_once(mlflow_config, tmp_path: Path) -> None:
    from fleetvision.models import resolve
    from fleetvision.models import starter as starters

    cfg = mlflow_config.model_copy(
        update={"models": mlflow_config.models.model_copy(update={"tasks": ("angle", "banner")})}
    )
    starter = tmp_path / "starter"
    for task, model in _tiny_models(cfg, ("angle", "banner")).items():
        starters.save_task_model(model, starter / task / "model.keras")
        (starter / task / "metrics.json").write_text(json.dumps({"task": task, "metrics": {"top1": 0.9}}))
    first = starters.register_starter_models(cfg, starter)
    assert set(first) == {"angle", "banner"}
    model_set = resolve.resolve_model_set(cfg)
    assert model_set.versions == first
    client = resolve.mlflow_client(cfg)
    mv = client.get_model_version("fleetvision-angle", first["angle"])
    assert mv.tags["fleetvision.source"] == "starter" and mv.tags["eval.top1"] == "0.9"
    assert starters.register_starter_models(cfg, starter) == {}  # idempotent
    with pytest.raises(FileNotFoundError, match="starter model for 'plate' not found"):
        starters.register_starter_models(
            cfg.model_copy(update={"models": cfg.models.model_copy(update={"tasks": ("plate",)})}), starter
        )
