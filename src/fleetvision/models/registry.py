"""The models in MLflow: logging and registering them, resolving the champion set, loading it on workers.

The scoring job resolves the alias once, on the driver (:func:`resolve_model_set`), and ships the
frozen :class:`ModelSet` (a few strings) to its pandas UDFs, which call :func:`load_models` in each
Python worker. A promotion in the middle of a run therefore cannot mix model versions, and the
``model_set_id`` written to every row says exactly which versions produced it.

Workers load from the version's artifact location (``artifact_uri``, resolved on the driver), so
they need read access to the artifact store but never talk to the tracking server or registry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetvision.config import Config
from fleetvision.models.spec import TASK_OUTPUTS, TASKS

if TYPE_CHECKING:
    import keras
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], dict[str, np.ndarray]]

TAG_TASK = "fleetvision.task"
TAG_INPUT_SIZE = "fleetvision.input_size"
TAG_OUTPUTS = "fleetvision.outputs"
TAG_SOURCE = "fleetvision.source"
TAG_TAXONOMY = "fleetvision.taxonomy_version"
STARTER_FILE = "model.keras"


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


# ----------------------------------------------------------------------------------- resolving
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


def _model_version(client: MlflowClient, name: str, version: str | None, alias: str | None) -> Any:
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
    mv = _model_version(client, name, None if version is None else str(version), alias)
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
                "--version V) or register the starter models (registry.register_starter_models)"
            ) from e
    model_set = ModelSet(tuple(refs), alias=alias)
    logger.info(
        "model set %s (@%s): %s",
        model_set.model_set_id,
        alias,
        ", ".join(f"{t}={v}" for t, v in model_set.versions.items()),
    )
    return model_set


# ------------------------------------------------------------------------------------- loading
_CACHE: dict[tuple[str, str], keras.Model] = {}
_CACHE_LOCK = threading.Lock()


def predict_fn_for(model: keras.Model, input_size: int, outputs: Sequence[str] | None = None) -> PredictFn:
    """Wrap a Keras model as ``uint8 [N, S, S, 3] -> {output name: numpy array}``, checking the input.

    Raises (when called):
        ValueError: The batch is not uint8 [N, S, S, 3].
    """
    import tensorflow as tf

    names = tuple(outputs) if outputs else tuple(_output_specs(model))
    # One graph per model for every batch size (Keras' own predict_on_batch retraces per size).
    forward = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, input_size, input_size, 3], tf.uint8)],
    )

    def predict(batch: np.ndarray) -> dict[str, np.ndarray]:
        arr = np.asarray(batch)
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != (input_size, input_size, 3):
            raise ValueError(
                f"model {model.name} expects uint8 [N, {input_size}, {input_size}, 3], got {arr.dtype} {arr.shape}"
            )
        if len(arr) == 0:
            shapes = {k: tuple(v.shape[1:]) for k, v in _output_specs(model).items()}
            return {k: np.zeros((0, *shapes[k]), dtype=np.float32) for k in names}
        raw = forward(arr)
        if not isinstance(raw, Mapping):
            raw = {names[0]: raw}
        return {k: raw[k].numpy() for k in names}

    return predict


def _output_specs(model: keras.Model) -> dict[str, Any]:
    out = model.output
    if isinstance(out, Mapping):
        return dict(out)
    return {model.output_names[0]: out}


def _load_cached(ref: ModelRef) -> keras.Model:
    # Keyed by where the files are, not by name and version: two registries (a test's, a staging
    # server's) can both hold a "fleetvision-angle" version 1, and they are different models.
    key = (ref.artifact_uri, ref.version)
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            import mlflow.keras

            logger.info("loading %s from %s", ref.uri, ref.artifact_uri)
            model = mlflow.keras.load_model(ref.artifact_uri, load_model_kwargs={"compile": False})
            _CACHE[key] = model
    return model


def load_models(model_set: ModelSet) -> dict[str, PredictFn]:
    """Task -> predict function for every model of the set; each model is loaded once per process.

    Models are cached per Python process, keyed by (artifact location, version): the first call in a worker
    downloads and builds the models, later calls (every later Arrow batch, while Spark reuses the
    worker, ``spark.python.worker.reuse=true``) return at once.

    Operating limits (measured with the starter models, S=128, CPU):
        * Memory: each Python worker holds TensorFlow (~0.75 GB resident once imported) plus every
          model of the set, so ~0.9 GB before the first batch; activations add ~2 MB per image in
          flight through the four models (1.95 MB with the 4-view body model, 1.32 MB with one view:
          peak RSS 1.42 GB against 0.92 GB warm for a 256-image batch; benchmarks/bench_model_memory.py).
          With N concurrent tasks per executor there are N workers: budget
          ``spark.executor.pyspark.memory`` (or the container) at ~1.5 GB per worker, and keep
          ``spark.sql.execution.arrow.maxRecordsPerBatch`` at a few hundred rows.
        * The first call per model traces one TensorFlow graph (a second or two); every batch size
          after that reuses it.
        * The cache never evicts: a worker that sees several model sets (a long-lived session
          across promotions) keeps them all. Call :func:`clear_model_cache` to drop them.
        * A predict function is not meant to be called from several threads at once.

    Args:
        model_set: From :func:`resolve_model_set` (on the driver).

    Returns:
        Tasks (one task, or ``angle+banner+plate+body`` for task models fused on one shared pretrained
        backbone: :func:`fleetvision.models.pretrained.fuse_task_models`) -> function mapping uint8
        [N, S, S, 3] to a dict of numpy arrays named as in
        docs/CONTRACTS.md (angle [N, 27]; banner [N, 1]; plate_presence [N, 1] and plate_box [N, 4];
        body [N, 7]).
    """
    from fleetvision.models.pretrained import fuse_task_models

    refs = {ref.task: ref for ref in model_set.models}
    loaded = {task: _load_cached(ref) for task, ref in refs.items()}
    fns: dict[str, PredictFn] = {}
    for tasks, model in fuse_task_models(loaded):
        outputs = [o for t in tasks for o in refs[t].outputs]
        fns["+".join(tasks)] = predict_fn_for(model, refs[tasks[0]].input_size, outputs)
    return fns


def clear_model_cache() -> None:
    """Forget every cached model in this process."""
    with _CACHE_LOCK:
        _CACHE.clear()


# ------------------------------------------------------------------------------------- logging
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
        source: ``train`` or ``starter`` (a version tag).
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

    from fleetvision.models.pretrained import load_saved_task_model, saved_model_file
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
            _model_version(client, name, None, config.mlflow.model_alias)
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
        metrics_path = root / task / "metrics.json"
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
