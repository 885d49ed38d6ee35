"""Train heads on cached backbone features: the frozen backbone runs once per training photo.

A frozen pretrained backbone gives the same feature maps for the same (augmented) photo in every epoch,
so running it in every epoch wastes most of the training time on a CPU. Instead:

1. :func:`extract_features` runs the backbone once over the (augmented) training feed and keeps the
   maps the heads read, as float16, with the targets and sample weights of each row;
2. :func:`save_features`/:func:`load_features` keep them on disk under a key made of everything that
   decides them (backbone weights, input size, augmentation seed and passes, the rows' content), so a
   second training run on the same rows (another head, other learning rates) skips step 1;
3. :func:`feature_dataset` feeds them to the heads model (shuffled each epoch) for
   :func:`fleetvision.models.fit.fit`.

Fine-tuning the backbone's last blocks (``models.finetune_blocks``) caches one more map, the one that
enters those blocks (:data:`~fleetvision.models.pretrained.TOP_INPUT`): the blocks then run forwards and
backwards on it each epoch, and everything below them still runs once per row.

Operating limits: the cache holds ``rows x passes x`` the maps' size in float16: at S=224 with
EfficientNet-Lite0 (stride 8, 16 and 32 maps: 28x28x40, 14x14x112, 7x7x1280) that is 232 KB per row,
3.2 GB for 14,000 rows; it is memory-mapped, so RAM holds only the batches in flight.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fleetvision.models.pretrained import FEATURE_MAPS, TOP_INPUT, feature_extractor

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when what a cache entry holds changes


@dataclass
class FeatureSet:
    """Backbone features of labelled rows, with their Keras targets and sample weights.

    Attributes:
        features: Map name -> float16 [N, H, W, C].
        targets: Output name -> [N, ...].
        weights: Output name -> float32 [N] (0 masks an unknown label).
    """

    features: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.weights.values()))) if self.weights else 0


def extract_features(
    backbone: keras.Model, dataset: tf.data.Dataset, maps: Sequence[str], *, passes: int = 1, top_blocks: int = 0
) -> FeatureSet:
    """Run the backbone over ``dataset`` ``passes`` times and keep ``maps`` with the targets.

    Args:
        backbone: Float RGB 0-255 -> the feature maps in :data:`FEATURE_MAPS` order.
        dataset: Batched (uint8 images, targets dict, weights dict), finite; augmented datasets give
            other photos on each pass.
        maps: Which maps to keep: names of :data:`FEATURE_MAPS`, or :data:`TOP_INPUT` (the map that
            enters the backbone's last ``top_blocks`` blocks, for fine-tuning them).
        passes: Passes over ``dataset``.
        top_blocks: See ``maps``.

    Raises:
        ValueError: An unknown map name, or ``passes`` < 1, or the dataset is empty.
    """
    unknown = [m for m in maps if m not in FEATURE_MAPS and m != TOP_INPUT]
    if unknown or passes < 1:
        raise ValueError(f"extract_features: unknown maps {unknown} or passes {passes} < 1")
    extractor = feature_extractor(backbone, maps, top_blocks)

    @tf.function(reduce_retracing=True)
    def forward(images: tf.Tensor) -> list[tf.Tensor]:
        out = extractor(tf.cast(images, tf.float32), training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        return [tf.cast(o, tf.float16) for o in out]

    parts: dict[str, list[np.ndarray]] = {m: [] for m in maps}
    targets: dict[str, list[np.ndarray]] = {}
    weights: dict[str, list[np.ndarray]] = {}
    started, rows = time.perf_counter(), 0
    for p in range(passes):
        for images, y, w in dataset:
            for m, arr in zip(maps, forward(images), strict=True):
                parts[m].append(arr.numpy())
            for k, v in y.items():
                targets.setdefault(k, []).append(np.asarray(v))
            for k, v in w.items():
                weights.setdefault(k, []).append(np.asarray(v, dtype=np.float32))
            rows += int(images.shape[0])
            if rows % 2048 < int(images.shape[0]):
                logger.info("backbone features: %d rows (pass %d/%d), %.1f ms a row", rows, p + 1, passes,
                            1000 * (time.perf_counter() - started) / rows)
    if not rows:
        raise ValueError("extract_features: the dataset is empty")
    logger.info("backbone features of %d rows in %.1f s", rows, time.perf_counter() - started)
    return FeatureSet(
        {m: np.concatenate(v) for m, v in parts.items()},
        {k: np.concatenate(v) for k, v in targets.items()},
        {k: np.concatenate(v) for k, v in weights.items()},
    )


def cache_key(**parts: object) -> str:
    """A cache key (16 hex digits) from named parts (JSON-serialisable)."""
    text = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_features(features: FeatureSet, folder: Path) -> Path:
    """Write a :class:`FeatureSet` as ``.npy`` files (complete, or not at all: written aside, then moved)."""
    partial = folder.with_name(folder.name + f".{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    manifest: dict[str, list[str]] = {"features": [], "targets": [], "weights": []}
    for kind in manifest:
        for name, arr in getattr(features, kind).items():
            np.save(partial / f"{kind}.{name}.npy", arr)
            manifest[kind].append(name)
    (partial / "manifest.json").write_text(json.dumps(manifest))
    if folder.exists():
        shutil.rmtree(folder)
    partial.replace(folder)
    return folder


def load_features(folder: Path) -> FeatureSet | None:
    """A cached :class:`FeatureSet` (memory-mapped), or None when there is none."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return None
    manifest = json.loads(manifest_path.read_text())
    loaded = {
        kind: {name: np.load(folder / f"{kind}.{name}.npy", mmap_mode="r") for name in names}
        for kind, names in manifest.items()
    }
    return FeatureSet(loaded["features"], loaded["targets"], loaded["weights"])


def cached_features(
    folder: Path | None,
    backbone: keras.Model,
    dataset: tf.data.Dataset,
    maps: Sequence[str],
    *,
    passes: int = 1,
    top_blocks: int = 0,
) -> FeatureSet:
    """:func:`load_features` from ``folder`` if it is there, else :func:`extract_features` and save.

    ``folder`` None: no cache. A cache that cannot be written is logged and skipped.
    """
    if folder is not None:
        found = load_features(folder)
        if found is not None and all(m in found.features for m in maps):
            logger.info("backbone features of %d rows from the cache %s", len(found), folder)
            return found
    features = extract_features(backbone, dataset, maps, passes=passes, top_blocks=top_blocks)
    if folder is not None:
        try:
            save_features(features, folder)
            logger.info("cached backbone features in %s", folder)
        except OSError as e:
            logger.warning("could not cache backbone features in %s: %s", folder, e)
    return features


def _batches(
    features: FeatureSet, maps: Sequence[str], batch_size: int, order: np.ndarray
) -> Iterator[tuple[dict, dict, dict]]:
    for start in range(0, len(order), batch_size):
        idx = np.sort(order[start : start + batch_size])  # sorted: memory-mapped reads stay sequential
        yield (
            {k: np.asarray(features.features[k][idx], dtype=np.float32) for k in maps},
            {k: np.asarray(v[idx]) for k, v in features.targets.items()},
            {k: np.asarray(v[idx]) for k, v in features.weights.items()},
        )


def feature_dataset(
    features: FeatureSet, batch_size: int, *, shuffle: bool, seed: int = 0, maps: Sequence[str] | None = None
) -> tf.data.Dataset:
    """Batched (features dict, targets, weights) for the heads model; reshuffled on each pass if asked.

    ``maps``: the feature maps fed (default: all that ``features`` holds).

    Raises:
        KeyError: A map of ``maps`` is not in ``features``.
    """
    rng = np.random.default_rng(seed)
    n = len(features)
    maps = list(features.features) if maps is None else list(maps)
    missing = [m for m in maps if m not in features.features]
    if missing:
        raise KeyError(f"feature_dataset: no cached map {missing} (cached: {sorted(features.features)})")

    def generate() -> Iterator[tuple[dict, dict, dict]]:
        order = rng.permutation(n) if shuffle else np.arange(n)
        yield from _batches(features, maps, batch_size, order)

    def spec(arrays: Mapping[str, np.ndarray], dtype: tf.DType | None = None) -> dict[str, tf.TensorSpec]:
        return {k: tf.TensorSpec((None, *v.shape[1:]), dtype or tf.as_dtype(v.dtype)) for k, v in arrays.items()}

    signature = (spec({m: features.features[m] for m in maps}, tf.float32), spec(features.targets),
                 spec(features.weights))
    steps = -(-n // batch_size)
    return (
        tf.data.Dataset.from_generator(generate, output_signature=signature)
        .apply(tf.data.experimental.assert_cardinality(steps))
        .prefetch(2)
    )
