"""Hash and score each photo in one pass, for runs whose prediction cache can answer nothing.

A run normally hashes first (:func:`fleetvision.scoring.udf.make_hash_udf`): the photo's bytes are
staged with their hash, the cache answers the hashes it knows, and one photo per new hash is decoded
from the staged bytes. That is what an incremental run needs: most changed rows carry bytes the cache
has seen, and identical photos are scored once. When the cache holds no prediction for the run's model
set (the first run, or the first after a model is promoted) it can answer nothing, and the staging costs
a write and a read of every photo's bytes (about 23 s of 235 s at 10,000 photos on 2 cores:
docs/runbook.md, *One pass or hash first*) to save only the run's duplicate photos.

In one pass each photo is read once, hashed, and the bytes that were hashed are decoded and scored in
the same Python worker (:func:`hash_and_score_frame`); a row carries the hash columns and the prediction
columns together. Nothing but the hash and the predictions is staged. Duplicates are scored once per
copy, and one prediction per content hash (the lowest ``image_id``'s) goes to the cache
(:func:`fleetvision.scoring.work.one_per_hash`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pandas as pd
from pyspark.sql import types as T

from fleetvision.scoring.udf import (
    HASH_SCHEMA,
    PREDICTION_SCHEMA,
    UdfSettings,
    hash_frame,
    model_udf,
    score_frame,
)

if TYPE_CHECKING:
    from pyspark.sql.column import Column

    from fleetvision._typing import ModelLoader, ModelSetLike, PredictFn
    from fleetvision.scoring import ScoringRules
    from fleetvision.taxonomy import Taxonomy

HASH_COLUMNS = tuple(f.name for f in HASH_SCHEMA.fields if f.name != "photo_bytes")
"""The hash columns of a one-pass row: :data:`HASH_SCHEMA` without the bytes (they are not staged)."""

ONE_PASS_SCHEMA = T.StructType(
    [f for f in HASH_SCHEMA.fields if f.name in HASH_COLUMNS] + list(PREDICTION_SCHEMA.fields)
)
"""The one-pass UDF's return type: the hash columns, then :data:`PREDICTION_SCHEMA`'s."""

ONE_PASS_MODES = ("auto", "always", "never")
"""``scoring.one_pass``: ``auto`` scores in one pass when the cache has nothing for the run's model set."""


def use_one_pass(setting: str, cache_has_model_set: Callable[[], bool]) -> bool:
    """Whether a run hashes and scores in one pass (``scoring.one_pass``).

    Args:
        setting: ``auto``, ``always`` or ``never``.
        cache_has_model_set: Asked only under ``auto``: does the prediction cache hold any prediction for
            the run's model set (cache key)?

    Raises:
        ValueError: ``setting`` is not one of :data:`ONE_PASS_MODES`.
    """
    if setting not in ONE_PASS_MODES:
        raise ValueError(f"scoring.one_pass must be one of {ONE_PASS_MODES}, got {setting!r}")
    if setting != "auto":
        return setting == "always"
    return not cache_has_model_set()


def hash_and_score_frame(
    uri: pd.Series,
    content: pd.Series,
    models: Mapping[str, PredictFn],
    settings: UdfSettings,
    taxonomy: Taxonomy,
    rules: ScoringRules,
) -> pd.DataFrame:
    """Read and hash each photo (:func:`~fleetvision.scoring.udf.hash_frame`), then score the bytes that were
    hashed (:func:`~fleetvision.scoring.udf.score_frame`).

    Returns:
        Columns of :data:`ONE_PASS_SCHEMA`, one row per input in input order. A photo whose bytes could not
        be had has its read error and null predictions; one that was read but not decoded has its hash
        and the decode error in the prediction columns, as a two-pass run would give it.
    """
    hashed = hash_frame(uri, content, settings.max_bytes, settings.remote_options, settings.photo_roots)
    readable = hashed["content_hash"].notna().to_numpy()
    pred_columns = [f.name for f in PREDICTION_SCHEMA.fields]
    read = hashed.loc[readable, "photo_bytes"].reset_index(drop=True)
    scored = (
        score_frame(pd.Series([None] * len(read), dtype=object), read, models, settings, taxonomy, rules)
        if len(read)
        else pd.DataFrame(columns=pred_columns)
    )
    if readable.all():
        predictions = scored.reset_index(drop=True)
    else:  # the unreadable rows' predictions are null (object columns: Arrow takes None for any type)
        predictions = pd.DataFrame({c: pd.Series([None] * len(hashed), dtype=object) for c in pred_columns})
        for c in pred_columns:
            predictions.loc[readable, c] = scored[c].to_numpy(dtype=object)
    frame = pd.concat([hashed[list(HASH_COLUMNS)].reset_index(drop=True), predictions[pred_columns]], axis=1)
    return frame[[f.name for f in ONE_PASS_SCHEMA.fields]]


def make_one_pass_udf(
    model_set: ModelSetLike,
    settings: UdfSettings,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    loader: ModelLoader | None = None,
) -> Callable[..., Column]:
    """A pandas UDF ``(uri, content) -> struct<ONE_PASS_SCHEMA>``: read, hash, decode and score each photo once.

    Arguments as :func:`fleetvision.scoring.udf.make_scoring_udf`; uris are read only inside
    ``settings.photo_roots``.
    """
    return model_udf(hash_and_score_frame, ONE_PASS_SCHEMA, model_set, settings, taxonomy, rules, loader)
