"""Logging and registering task models in MLflow (Keras 3 flavour, ``.keras`` format), and the champion alias.

A registered version carries tags naming its task, input size, outputs and source (``TAG_*`` in
:mod:`fleetvision.models.resolve`, which reads them back on the driver) and its evaluation metrics
(``eval.<metric>``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetvision.config import Config
from fleetvision.models.resolve import (
    TAG_INPUT_SIZE,
    TAG_OUTPUTS,
    TAG_SOURCE,
    TAG_TASK,
    TAG_TAXONOMY,
    mlflow_client,
    registered_name,
)
from fleetvision.models.serving import predict_fn_for
from fleetvision.models.spec import TASK_OUTPUTS

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)


class _KerasFlavor:
    """``mlflow.keras`` that creates the model directory before saving into it.

    MLflow's Keras 3 flavour writes the input example before it creates the model's directory, so
    ``mlflow.keras.log_model(..., input_example=...)`` fails with FileNotFoundError
    (mlflow/mlflow#16183, still open in 3.17). Saved files and the ``keras`` flavour are unchanged:
    ``mlflow.keras.load_model`` loads the result as usual.
    """

    __name__ = "mlflow.keras"

    @staticmethod
    def save_model(path: str, **kwargs: Any) -> None:
        import mlflow.keras

        kwargs.pop("validate_serving_input", None)  # Model.log's option, not the flavour's
        Path(path).mkdir(parents=True, exist_ok=True)
        mlflow.keras.save_model(path=path, **kwargs)


_KERAS_FLAVOR = _KerasFlavor()


def _model_pip_requirements() -> list[str]:
    """The packages a logged task model needs, pinned to the installed versions (MLflow adds itself).

    The same list MLflow infers for these models, given up front: inferring it loads each model again
    in a subprocess that imports TensorFlow, about 20 s a model.
    """
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in ("keras", "numpy", "tensorflow")]


def log_task_model(
    model: keras.Model,
    config: Config,
    task: str,
    *,
    example: np.ndarray,
    register: bool,
    source: str,
    taxonomy_version: int,
    metrics: Mapping[str, float] | None = None,
    extra_tags: Mapping[str, str] | None = None,
) -> tuple[str, str | None]:
    """Log one task's Keras model to the active MLflow run (Keras 3 flavour, ``.keras`` format).

    The model carries its signature (uint8 [-1, S, S, 3] in; its outputs) and an input example.
    An angle model's metadata also lists its softmax classes (``classes``: ``taxonomy.flank_names``,
    the car's flanks, not driver/passenger; see :mod:`fleetvision.taxonomy` for why models logged
    before this field mean the same classes).
    With ``register`` it becomes a new version of ``fleetvision-<task>`` with tags naming the task,
    input size, outputs, source and the evaluation metrics (``eval.<metric>``).

    Args:
        model: The task's model (uint8 input, dict outputs).
        config: The job configuration.
        task: The task.
        example: uint8 [1, S, S, 3] input example.
        register: Register a new version.
        source: ``train``, ``starter`` or ``soup`` (a version tag).
        taxonomy_version: Taxonomy version the classes come from.
        metrics: Evaluation metrics to tag the version with.
        extra_tags: More version tags.

    Returns:
        (model URI of the logged model, registered version or None).
    """
    from mlflow.models import Model, infer_signature

    from fleetvision.taxonomy import load_taxonomy

    size = int(model.input_shape[1])
    classes = {"classes": list(load_taxonomy().flank_names)} if task == "angle" else {}
    outputs = predict_fn_for(model, size, TASK_OUTPUTS[task])(example)
    signature = infer_signature(example, outputs)
    name = registered_name(config, task)
    info = Model.log(
        artifact_path=None,
        flavor=_KERAS_FLAVOR,
        model=model,
        name=task,
        signature=signature,
        input_example=example,
        registered_model_name=name if register else None,
        pip_requirements=_model_pip_requirements(),
        # the example was just predicted above; MLflow's check reloads the model to predict it again
        validate_serving_input=False,
        metadata={
            "task": task,
            "input_size": size,
            "outputs": list(TASK_OUTPUTS[task]),
            "taxonomy_version": taxonomy_version,
            **classes,
        },
    )
    version = None
    if register:
        version = str(info.registered_model_version)
        tags = {
            TAG_TASK: task,
            TAG_INPUT_SIZE: str(size),
            TAG_OUTPUTS: ",".join(TASK_OUTPUTS[task]),
            TAG_SOURCE: source,
            TAG_TAXONOMY: str(taxonomy_version),
            **{f"eval.{k}": f"{v:.6g}" for k, v in (metrics or {}).items()},
            **dict(extra_tags or {}),
        }
        client = mlflow_client(config)
        for k, v in tags.items():
            client.set_model_version_tag(name, version, k, v)
        logger.info("registered %s version %s (%s)", name, version, source)
    return info.model_uri, version


def set_champion(config: Config, task: str, version: str) -> None:
    """Point ``mlflow.model_alias`` of ``fleetvision-<task>`` at ``version``."""
    mlflow_client(config).set_registered_model_alias(
        registered_name(config, task), config.mlflow.model_alias, str(version)
    )

