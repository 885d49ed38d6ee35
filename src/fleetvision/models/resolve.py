"""Resolving models on the driver: which registered version each task's alias points at, frozen.

The scoring job resolves the alias once, on the driver (:func:`resolve_model_set`), and ships the
frozen :class:`ModelSet` (a few strings) to its pandas UDFs, which load it in each Python worker
(:func:`fleetvision.models.serving.load_models`). A promotion in the middle of a run therefore cannot
mix model versions, and the ``model_set_id`` written to every row says exactly which versions produced it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleetvision.config import Config
from fleetvision.models.spec import TASK_OUTPUTS, TASKS

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

TAG_TASK = "fleetvision.task"
TAG_INPUT_SIZE = "fleetvision.input_size"
TAG_OUTPUTS = "fleetvision.outputs"
TAG_SOURCE = "fleetvision.source"
TAG_TAXONOMY = "fleetvision.taxonomy_version"


class ModelNotFoundError(LookupError):
    """A registered model, version or alias does not exist; the message names it."""


@dataclass(frozen=True)
class ModelRef:
    """One registered model version, resolved.

    Attributes:
        task: ``angle``, ``banner``, ``plate`` or ``body``.
        name: Registered model name, e.g. ``fleetvision-angle``.
        version: Registry version, e.g. ``"3"``.
        uri: ``models:/fleetvision-angle/3``.
        artifact_uri: Where the model's files are (what workers load).
        input_size: S of the model's uint8 [N, S, S, 3] input.
        outputs: Keras output names.
    """

    task: str
    name: str
    version: str
    uri: str
    artifact_uri: str
    input_size: int
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class ModelSet:
    """The models one scoring run uses, frozen on the driver.

    Attributes:
        models: One :class:`ModelRef` per task, in task order.
        alias: The alias they were resolved from (``champion``), or ``""`` for explicit versions.
        model_set_id: Stable short hash (12 hex) of the (task, name, version) triples: the same
            versions always give the same id, whichever alias or order they came from.
    """

    models: tuple[ModelRef, ...]
    alias: str = ""
    model_set_id: str = field(init=False)

    def __post_init__(self) -> None:
        tasks = [m.task for m in self.models]
        if not tasks:
            raise ValueError("a ModelSet needs at least one model")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"a ModelSet has one model per task; got tasks {tasks}")
        key = "\n".join(sorted(f"{m.task}={m.name}/{m.version}" for m in self.models))
        object.__setattr__(self, "model_set_id", hashlib.sha256(key.encode()).hexdigest()[:12])

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(m.task for m in self.models)

    @property
    def versions(self) -> dict[str, str]:
        """Task -> registry version, e.g. ``{"angle": "3"}`` (for ``image_tags.model_versions``)."""
        return {m.task: m.version for m in self.models}

    @property
    def uris(self) -> dict[str, str]:
        """Task -> ``models:/fleetvision-<task>/<version>``."""
        return {m.task: m.uri for m in self.models}

    def __getitem__(self, task: str) -> ModelRef:
        for m in self.models:
            if m.task == task:
                return m
        raise KeyError(f"model set {self.model_set_id} has no {task!r} model; it has {', '.join(self.tasks)}")


def registered_name(config: Config, task: str) -> str:
    """``fleetvision-<task>`` (``mlflow.model_name_prefix`` + task)."""
    if task not in TASKS:
        raise ValueError(f"unknown model task {task!r}; expected one of {', '.join(TASKS)}")
    return f"{config.mlflow.model_name_prefix}{task}"


def mlflow_client(config: Config) -> MlflowClient:
    """A client on the configured tracking and registry stores (no global MLflow state changed)."""
    from mlflow import MlflowClient

    return MlflowClient(
        tracking_uri=config.mlflow.resolved_tracking_uri(), registry_uri=config.mlflow.resolved_registry_uri()
    )


def get_model_version(client: MlflowClient, name: str, version: str | None, alias: str | None) -> Any:
    """The registry's model version by number, else by alias.

    Raises:
        ModelNotFoundError: No such model, version or alias (the message names it).
    """
    from mlflow.exceptions import MlflowException

    try:
        if version is not None:
            return client.get_model_version(name, str(version))
        return client.get_model_version_by_alias(name, alias or "")
    except MlflowException as e:
        what = f"version {version}" if version is not None else f"alias @{alias}"
        raise ModelNotFoundError(f"registered model {name!r} has no {what} ({e.error_code})") from e


def resolve_model_ref(
    config: Config,
    task: str,
    *,
    version: str | int | None = None,
    alias: str | None = None,
    client: MlflowClient | None = None,
) -> ModelRef:
    """Resolve one task's model by version, or by alias (default ``mlflow.model_alias``).

    Raises:
        ModelNotFoundError: No such model, version or alias.
        ValueError: The model was trained for another input size than ``models.input_size``.
    """
    client = client or mlflow_client(config)
    name = registered_name(config, task)
    alias = None if version is not None else (alias or config.mlflow.model_alias)
    mv = get_model_version(client, name, None if version is None else str(version), alias)
    tags = dict(mv.tags or {})
    size = int(tags.get(TAG_INPUT_SIZE, config.models.input_size))
    if size != config.models.input_size:
        raise ValueError(
            f"{name} version {mv.version} takes {size}x{size} input but models.input_size is "
            f"{config.models.input_size}; set models.input_size={size} or register a model for that size"
        )
    outputs = tuple(tags[TAG_OUTPUTS].split(",")) if tags.get(TAG_OUTPUTS) else TASK_OUTPUTS[task]
    return ModelRef(
        task=task,
        name=name,
        version=str(mv.version),
        uri=f"models:/{name}/{mv.version}",
        artifact_uri=client.get_model_version_download_uri(name, str(mv.version)),
        input_size=size,
        outputs=outputs,
    )


def resolve_model_set(config: Config, *, alias: str | None = None, tasks: Sequence[str] | None = None) -> ModelSet:
    """Resolve the alias (``mlflow.model_alias``: champion) of every task to a concrete version.

    Call once, on the driver, and ship the result to the workers.

    Args:
        config: The job configuration (MLflow URIs, model name prefix, input size, tasks).
        alias: Overrides ``mlflow.model_alias``.
        tasks: Defaults to ``models.tasks``.

    Raises:
        ModelNotFoundError: A task has no model with that alias (the message names it and says how
            to get one).
        ValueError: A model's input size differs from ``models.input_size``.
    """
    client = mlflow_client(config)
    alias = alias or config.mlflow.model_alias
    refs = []
    for task in tasks or config.models.tasks:
        try:
            refs.append(resolve_model_ref(config, task, alias=alias, client=client))
        except ModelNotFoundError as e:
            raise ModelNotFoundError(
                f"{e}; register one (fleetvision train {task} --register, then fleetvision promote {task} "
                "--version V) or register the starter models (fleetvision promote --starter, "
                "which calls starter.register_starter_models)"
            ) from e
    model_set = ModelSet(tuple(refs), alias=alias)
    logger.info(
        "model set %s (@%s): %s",
        model_set.model_set_id,
        alias,
        ", ".join(f"{t}={v}" for t, v in model_set.versions.items()),
    )
    return model_set
