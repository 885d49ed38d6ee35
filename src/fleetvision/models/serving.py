"""Loading and predicting on the worker: the one model cache of a Python process.

A scoring run ships a :class:`~fleetvision.models.resolve.ModelSet` (resolved on the driver) to its
pandas UDFs; each Python worker turns it into predict functions once (:func:`worker_models`, or
:func:`load_models` for the registry's own loader) and keeps them in :data:`MODEL_CACHE`, a small
least-recently-used cache keyed by the model set (its id and where its versions live) and the loader.

Workers load from the version's artifact location (``artifact_uri``, resolved on the driver), so
they need read access to the artifact store but never talk to the tracking server or registry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetvision._typing import ModelLoader, ModelSetLike, PredictFn

if TYPE_CHECKING:
    import keras

    from fleetvision.models.resolve import ModelSet

logger = logging.getLogger(__name__)

MAX_CACHED_MODEL_SETS = 4
"""Model sets a Python worker keeps loaded: a run uses one; a promotion evaluates two."""


class ModelCache:
    """A bounded, thread-safe least-recently-used cache of loaded model sets.

    Operating limits: each entry holds every model of a set (see :func:`load_models` for their
    memory); with ``max_entries`` entries a worker holds at most that many sets, and loading a new
    one past the bound drops the one used least recently (its models are freed once no caller holds
    them). Loading happens under the cache's lock, so two threads never load the same set twice.

    Args:
        max_entries: How many entries the cache keeps (at least 1).

    Raises:
        ValueError: ``max_entries`` is not a positive int.
    """

    def __init__(self, max_entries: int) -> None:
        if not isinstance(max_entries, int) or isinstance(max_entries, bool) or max_entries < 1:
            raise ValueError(f"ModelCache max_entries must be a positive int, got {max_entries!r}")
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Mapping[str, PredictFn]] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], Mapping[str, PredictFn]]) -> Mapping[str, PredictFn]:
        """The entry for ``key``; on a miss ``load()`` makes it (and the oldest entry may be dropped)."""
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
            value = load()
            self._entries[key] = value
            while len(self._entries) > self.max_entries:
                dropped, _ = self._entries.popitem(last=False)
                logger.info("model cache holds %d model sets: dropped %s", self.max_entries, dropped)
            return value

    def keys(self) -> list[Hashable]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries


MODEL_CACHE = ModelCache(MAX_CACHED_MODEL_SETS)
"""The process's loaded model sets (the only model cache in FleetVision)."""


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


def fused_predictors(
    models: Mapping[str, keras.Model], input_size: int, outputs: Mapping[str, Sequence[str]] | None = None
) -> dict[str, PredictFn]:
    """Task models as scoring runs them: those on one pretrained backbone fused into one model
    (:func:`fleetvision.models.pretrained.fuse_task_models`), each group wrapped by :func:`predict_fn_for`.

    Args:
        models: Task -> task model.
        input_size: S of their uint8 [N, S, S, 3] input.
        outputs: Task -> its output names; :data:`fleetvision.models.spec.TASK_OUTPUTS` when None.

    Returns:
        Tasks joined by ``+`` (``angle+banner+plate+body``, or one task) -> predict function.
    """
    from fleetvision.models.pretrained import fuse_task_models
    from fleetvision.models.spec import TASK_OUTPUTS
    from fleetvision.scoring.extra_outputs import EXTRA_OUTPUTS

    names = TASK_OUTPUTS if outputs is None else outputs
    predictors = {}
    for tasks, model in fuse_task_models(models):
        # what the heads say about the mirror image and an angle model's group head, where the model gives them
        optional = [o for o in EXTRA_OUTPUTS if o in _output_specs(model)]
        predictors["+".join(tasks)] = predict_fn_for(model, input_size, [o for t in tasks for o in names[t]] + optional)
    return predictors


def per_task(predictors: Mapping[str, PredictFn]) -> dict[str, PredictFn]:
    """``+``-joined task keys (:func:`fused_predictors`) -> one entry per task; the tasks of a fused
    model share its function (``frozen_eval.evaluate_predictors`` then predicts it once)."""
    return {task: fn for tasks, fn in predictors.items() for task in tasks.split("+")}


def read_models(model_set: ModelSet) -> dict[str, PredictFn]:
    """Load every model of the set from its artifact location, uncached (the registry's loader).

    Returns:
        Tasks (one task, or ``angle+banner+plate+body`` for task models fused on one shared pretrained
        backbone: :func:`fleetvision.models.pretrained.fuse_task_models`) -> predict function.
    """
    import mlflow.keras

    refs = {ref.task: ref for ref in model_set.models}
    loaded = {}
    for task, ref in refs.items():
        logger.info("loading %s from %s", ref.uri, ref.artifact_uri)
        loaded[task] = mlflow.keras.load_model(ref.artifact_uri, load_model_kwargs={"compile": False})
    # one input size: resolve_model_ref refuses a version registered for another than models.input_size
    size = next(iter(refs.values())).input_size
    return fused_predictors(loaded, size, {t: ref.outputs for t, ref in refs.items()})


@dataclass(frozen=True)
class ModelFolder:
    """A folder's task models, loaded as saved (:func:`read_model_folder`).

    Attributes:
        folder: Where they were read from.
        models: Task -> task model (a starter head composed on its backbone, or a whole model).
        input_size: The side S of the uint8 [N, S, S, 3] batches every one of them takes.
    """

    folder: Path
    models: dict[str, keras.Model]
    input_size: int

    def fused(self) -> list[tuple[tuple[str, ...], keras.Model]]:
        """The models as scoring runs them: those on one pretrained backbone fused (one pass a photo)."""
        from fleetvision.models.pretrained import fuse_task_models

        return fuse_task_models(self.models)

    def predictors(self) -> dict[str, PredictFn]:
        """Tasks joined by ``+`` -> predict function, as :func:`read_models` gives a registry's versions."""
        return fused_predictors(self.models, self.input_size)


def read_model_folder(folder: Path, tasks: Sequence[str] | None = None) -> ModelFolder:
    """Load a folder of task models: ``<task>/head.keras`` + ``backbone.json`` (``models/starter``,
    ``train --out``) or ``<task>/model.keras``, for benchmarks and scripts that score outside the registry.

    Args:
        folder: The folder holding one sub-folder per task.
        tasks: The tasks to load; every task (:data:`fleetvision.models.spec.TASKS`) when None.

    Raises:
        FileNotFoundError: A task's folder holds neither layout.
        ValueError: No tasks, or the models take different input sizes (one decoded batch feeds them all).
    """
    from fleetvision.models.pretrained import load_saved_task_model
    from fleetvision.models.spec import TASKS

    folder = Path(folder)
    tasks = TASKS if tasks is None else tuple(tasks)
    if not tasks:
        raise ValueError(f"read_model_folder({folder}): no tasks to load")
    models = {t: load_saved_task_model(folder / t, t) for t in tasks}
    sizes = {t: int(m.input_shape[1]) for t, m in models.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"the models of {folder} take different input sizes {sizes}; scoring needs one")
    return ModelFolder(folder, models, next(iter(sizes.values())))


def model_set_key(model_set: ModelSetLike) -> str:
    """The cache key of a model set: its id (the versions) and a digest of its repr (where they live).

    Two registries (a test's, a staging server's) can both hold a "fleetvision-angle" version 1, and
    they are different models.
    """
    return f"{model_set.model_set_id}:{hashlib.sha1(repr(model_set).encode()).hexdigest()[:12]}"


def loader_key(loader: ModelLoader) -> str:
    """A loader's ``cache_key`` attribute, else its qualified name."""
    key = getattr(loader, "cache_key", None)
    if isinstance(key, str):
        return key
    target = loader if hasattr(loader, "__qualname__") else type(loader)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def worker_models(
    model_set: ModelSetLike,
    loader: ModelLoader | None = None,
    *,
    prepare: Callable[[], None] | None = None,
) -> Mapping[str, PredictFn]:
    """The models of a model set in this Python worker, loaded on first use and kept in :data:`MODEL_CACHE`.

    The key is the model set (:func:`model_set_key`) and the loader (:func:`loader_key`): a new champion
    is a new model set id, so a promotion between runs loads the new versions, while every batch and
    task of a run reuses one load.

    Args:
        model_set: The set to load (shipped from the driver).
        loader: ``loader(model_set) -> {tasks: predict_fn}``; default :func:`read_models`.
        prepare: Called once before a load (the scoring UDF pins the task's GPU there).

    Raises:
        ValueError: The loader returned no models or something that is not callable.
    """
    load = loader if loader is not None else read_models
    key = (model_set_key(model_set), loader_key(load))

    def load_checked() -> Mapping[str, PredictFn]:
        if prepare is not None:
            prepare()
        models = dict(load(model_set))
        if not models:
            raise ValueError(f"model loader {key[1]} returned no models for model set {key[0]}")
        bad = [task for task, fn in models.items() if not callable(fn)]
        if bad:
            raise ValueError(f"model loader {key[1]}: models for {bad} are not callable")
        logger.info("worker %d loaded models %s for model set %s", os.getpid(), sorted(models), key[0])
        return models

    return MODEL_CACHE.get_or_load(key, load_checked)


def load_models(model_set: ModelSet) -> Mapping[str, PredictFn]:
    """Task -> predict function for every model of the set; loaded once per process and model set.

    The first call in a worker downloads and builds the models, later calls (every later Arrow batch,
    while Spark reuses the worker, ``spark.python.worker.reuse=true``) return the same functions at once.

    Operating limits (measured with the starter models, S=128, CPU):
        * Memory: each Python worker holds TensorFlow (~0.75 GB resident once imported) plus every
          model of the set, so ~0.9 GB before the first batch; activations add ~2 MB per image in
          flight through the four models (1.95 MB with the 4-view body model, 1.32 MB with one view:
          peak RSS 1.42 GB against 0.92 GB warm for a 256-image batch; benchmarks/bench_model_memory.py).
          With N concurrent tasks per executor there are N workers: budget
          ``spark.executor.pyspark.memory`` (or the container) at ~1.5 GB per worker, and keep
          ``spark.sql.execution.arrow.maxRecordsPerBatch`` at a few hundred rows.
        * The first call per model set traces one TensorFlow graph per model (a second or two); every
          batch size after that reuses it.
        * The cache keeps at most :data:`MAX_CACHED_MODEL_SETS` model sets (least recently used goes
          first), so a long-lived worker that sees several sets across promotions stays bounded.
          :func:`clear_model_cache` drops them all.
        * A predict function is not meant to be called from several threads at once.

    Args:
        model_set: From :func:`fleetvision.models.resolve.resolve_model_set` (on the driver).

    Returns:
        Tasks (one task, or ``angle+banner+plate+body`` for task models fused on one shared pretrained
        backbone) -> function mapping uint8 [N, S, S, 3] to a dict of numpy arrays named as in
        docs/CONTRACTS.md (angle [N, 27]; banner [N, 1]; plate_presence [N, 1] and plate_box [N, 4];
        body [N, 7]).
    """
    return worker_models(model_set, read_models)


def clear_model_cache() -> None:
    """Forget every cached model set in this process."""
    MODEL_CACHE.clear()
