"""MLflow wiring: where runs and registered models live, from config.

The embedded default is a SQLite file in the project directory (tracking and registry); a remote
tracking server is one config value (``mlflow.tracking_uri: http://host:5000``).
"""

from __future__ import annotations

import logging

import mlflow

from fleetvision.config import Config

logger = logging.getLogger(__name__)


def configure_mlflow(config: Config) -> str:
    """Point MLflow at the configured tracking and registry stores and select the experiment.

    Args:
        config: The job configuration.

    Returns:
        The experiment id.
    """
    tracking = config.mlflow.resolved_tracking_uri()
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(config.mlflow.resolved_registry_uri())
    experiment = mlflow.set_experiment(config.mlflow.experiment)
    logger.info("mlflow tracking=%s experiment=%s", tracking, config.mlflow.experiment)
    return experiment.experiment_id


def registered_model_name(config: Config, task: str) -> str:
    """The registry name of a task's model, e.g. ``fleetvision-angle``."""
    if task not in config.models.tasks:
        raise ValueError(f"unknown model task {task!r}; known: {', '.join(config.models.tasks)}")
    return f"{config.mlflow.model_name_prefix}{task}"
