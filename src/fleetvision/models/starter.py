"""The starter models shipped in the package: saving them, and registering them as champions.

``fleetvision train ... --out DIR`` saves each task's model (or head) as ``DIR/<task>/model.keras``
(or ``head.keras``) with its ``metrics.json``; :func:`register_starter_models` (``fleetvision promote
--starter``, run by the demo) registers them where a task has no champion yet.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fleetvision.config import Config
from fleetvision.models.registration import log_task_model, set_champion
from fleetvision.models.resolve import TAG_TASK, ModelNotFoundError, get_model_version, mlflow_client, registered_name

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

STARTER_FILE = "model.keras"


def register_starter_models(config: Config, starter_dir: str | Path | None = None) -> dict[str, str]:
    """Register the shipped starter models and make them champion where a task has none yet.

    Tasks that already have a champion are left alone, so calling this again (every demo run)
    changes nothing.

    Args:
        config: The job configuration (MLflow URIs, ``paths.starter_models``, ``models.tasks``).
        starter_dir: Overrides ``paths.starter_models``; holds ``<task>/model.keras`` and
            ``<task>/metrics.json``.

    Returns:
        Task -> registered version, for the tasks registered now.

    Raises:
        FileNotFoundError: A starter model file is missing.
        ValueError: A starter model's input size differs from ``models.input_size``.
    """
    import mlflow

    from fleetvision.models.pretrained import CARD_FILE, load_saved_task_model, saved_model_file
    from fleetvision.taxonomy import load_taxonomy
    from fleetvision.tracking import configure_mlflow

    root = Path(starter_dir) if starter_dir is not None else config.paths.resolve("starter_models")
    configure_mlflow(config)
    client = mlflow_client(config)
    taxonomy = load_taxonomy()
    registered: dict[str, str] = {}
    for task in config.models.tasks:
        name = registered_name(config, task)
        try:
            get_model_version(client, name, None, config.mlflow.model_alias)
            logger.info("%s already has @%s; starter model not registered", name, config.mlflow.model_alias)
            continue
        except ModelNotFoundError:
            pass
        # a head on a pretrained backbone (rebuilt from its weights package) or a whole model file
        path = saved_model_file(root / task)
        try:
            model = load_saved_task_model(root / task, task)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"starter model for {task!r} not found: {e}") from e
        size = int(model.input_shape[1])
        if size != config.models.input_size:
            raise ValueError(
                f"starter model {path} takes {size}x{size} input but models.input_size is {config.models.input_size}"
            )
        metrics_path = root / task / CARD_FILE
        metrics = json.loads(metrics_path.read_text()).get("metrics", {}) if metrics_path.is_file() else {}
        example = np.zeros((1, size, size, 3), dtype=np.uint8)
        with mlflow.start_run(run_name=f"starter-{task}"):
            mlflow.set_tags({"fleetvision.job": "register-starter", TAG_TASK: task})
            mlflow.log_metrics({f"eval.{k}": float(v) for k, v in metrics.items()})
            _, version = log_task_model(
                model,
                config,
                task,
                example=example,
                register=True,
                source="starter",
                taxonomy_version=taxonomy.version,
                metrics=metrics,
                extra_tags={"fleetvision.starter_path": str(path)},
            )
        if version is None:
            raise RuntimeError(f"registering the starter {task!r} model returned no version")
        set_champion(config, task, version)
        registered[task] = version
        logger.info("starter %s registered as %s version %s @%s", task, name, version, config.mlflow.model_alias)
    return registered


def save_task_model(model: keras.Model, path: Path) -> Path:
    """Save a task model as a ``.keras`` file (written to a temp name, then moved into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".keras", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    model.save(tmp_path)
    tmp_path.chmod(0o644)  # NamedTemporaryFile creates 0600; the file is meant to be shared
    tmp_path.replace(path)
    return path
