"""Model outputs -> the prediction fields of ``image_tags``, checked before they reach Arrow.

The models (``docs/CONTRACTS.md``, "Models -> scoring") return numpy arrays named ``angle``
``[N, C]`` softmax, ``banner`` ``[N, 1]``, ``plate_presence`` ``[N, 1]``, ``plate_box`` ``[N, 4]`` and
``body`` ``[N, B]`` softmax, and where the scoring model gives them, what the angle and plate heads say
about the photo's mirror image, ``angle_mirror`` ``[N, C]`` and ``plate_presence_mirror`` ``[N, 1]``
(:mod:`fleetvision.scoring.mirror_image`), and where the angle model has a group head, ``angle_group``
``[N, 3]`` (:mod:`fleetvision.scoring.shot_groups`).
:func:`validate_outputs` refuses anything else with a ``ValueError``
naming the output (the way Spark's ``_validate_and_transform_prediction_result`` guards
``predict_batch_udf``): a wrong row count would otherwise shift every prediction onto the wrong image.

The angle softmax is over the car's flanks (``taxonomy.flank_names``); :func:`tag_rows` writes market
names (``front_3q_driver``, ...) with the run's ``market.driver_side`` (``rules.driver_side``), so one
model serves left- and right-hand-drive markets and everything downstream (completeness, hero, gallery,
drift) reads market names.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fleetvision.decode import DecodedPhoto
from fleetvision.quality import measure_quality
from fleetvision.scoring import ScoringRules
from fleetvision.scoring.extra_outputs import EXTRA_OUTPUTS, fold_extra_outputs
from fleetvision.scoring.mirror_image import MIRROR_OUTPUTS, fold_mirror_image
from fleetvision.scoring.plate_flank import plate_flank
from fleetvision.scoring.shot_groups import ANGLE_GROUP
from fleetvision.taxonomy import GROUPS, Taxonomy

logger = logging.getLogger(__name__)

OUTPUT_NAMES: tuple[str, ...] = ("angle", "banner", "plate_presence", "plate_box", "body")
OPTIONAL_OUTPUTS: tuple[str, ...] = EXTRA_OUTPUTS
"""Outputs checked and kept when a model returns them, never required (older and flat models lack them):
the heads' answers for the mirror image, each checked as the output it mirrors, and the angle model's
group head (a probability over the shot groups)."""


def _with_mirrors(names: set[str]) -> frozenset[str]:
    return frozenset(names | {MIRROR_OUTPUTS[o] for o in names if o in MIRROR_OUTPUTS})


PROBABILITY_OUTPUTS: frozenset[str] = _with_mirrors({"angle", "banner", "plate_presence", "body", ANGLE_GROUP})
SOFTMAX_OUTPUTS: frozenset[str] = _with_mirrors({"angle", "body", ANGLE_GROUP})
TOP_K = 3

PREDICTION_COLUMNS: tuple[str, ...] = (
    "width",
    "height",
    "decode_status",
    "error_code",
    "error_detail",
    "angle",
    "angle_score",
    "angle_top3",
    "shot_group",
    "banner_score",
    "banner_flag",
    "plate_score",
    "plate_flag",
    "plate_box",
    "body_type",
    "body_score",
    "sharpness",
    "brightness",
)
"""The prediction fields of ``image_tags`` and ``prediction_cache``, in table order."""

MODEL_COLUMNS: tuple[str, ...] = PREDICTION_COLUMNS[5:16]
"""The columns :func:`tag_rows` produces (angle .. body_score)."""


def with_mirror_image(
    outputs: Mapping[str, np.ndarray], taxonomy: Taxonomy, rules: ScoringRules
) -> dict[str, np.ndarray]:
    """``outputs`` with what the heads say about the photo's mirror image folded in
    (:mod:`fleetvision.scoring.mirror_image`): the angle's flank splits averaged where the outputs hold
    ``angle_mirror`` and ``rules.flank_symmetry`` is on, the plate presence averaged where they hold
    ``plate_presence_mirror`` and ``rules.plate_symmetry`` is on. The mirror outputs are dropped either way."""
    return fold_mirror_image(outputs, taxonomy, flank=rules.flank_symmetry, plate=rules.plate_symmetry)


def with_plate_flank(
    outputs: Mapping[str, np.ndarray], taxonomy: Taxonomy, rules: ScoringRules
) -> dict[str, np.ndarray]:
    """``outputs`` with the angle softmax's 3/4 flanks informed by the plate's position
    (:func:`fleetvision.scoring.plate_flank.plate_flank` at ``rules.flank_cue``), where the outputs hold
    the angle, plate presence and plate box and the cue's strength is above 0; otherwise ``outputs`` as
    they are."""
    out = dict(outputs)
    strength, outlier_rate = rules.flank_cue
    if strength > 0 and {"angle", "plate_presence", "plate_box"} <= out.keys():
        out["angle"] = plate_flank(out["angle"], out["plate_presence"], out["plate_box"], taxonomy,
                                   strength, outlier_rate)
    return out


def as_tagged(outputs: Mapping[str, np.ndarray], taxonomy: Taxonomy, rules: ScoringRules) -> dict[str, np.ndarray]:
    """Validated model outputs as the job tags them: the mirror image's answers folded in
    (:func:`with_mirror_image`), then the shot group from the angle model's group head where it has one
    (both: :func:`fleetvision.scoring.extra_outputs.fold_extra_outputs`), then the flank from the plate's position
    (:func:`with_plate_flank`). Every tag, completeness score and hero pick reads the angle and the plate
    score from here."""
    folded = fold_extra_outputs(outputs, taxonomy, flank=rules.flank_symmetry, plate=rules.plate_symmetry)
    return with_plate_flank(folded, taxonomy, rules)


def prediction_cache_key(
    model_set_id: str,
    driver_side: str,
    flank_cue: tuple[float, float] = (0.0, 0.0),
    flank_symmetry: bool = False,
    plate_symmetry: bool = False,
) -> str:
    """The ``prediction_cache.model_set_id`` a run reads and writes its predictions under.

    Cached rows hold tag fields in market names (:func:`tag_rows`), which depend on the market's
    driver side as well as on the models, so a left-hand-drive run must not reuse a right-hand-drive
    run's rows of the same photo. Right-hand drive keeps the plain model set id (every cache row written
    before flank classes is right-hand drive); left-hand drive appends ``+lhd``. The plate-position flank
    cue (``flank_cue``: :attr:`ScoringRules.flank_cue`) changes the
    cached angle too, so a strength above 0 appends ``+pf<strength>/<outlier rate>``; so do the mirror
    image's flank split (``flank_symmetry``: ``+fs``) and plate presence (``plate_symmetry``: ``+ps``),
    :mod:`fleetvision.scoring.mirror_image`: rows cached under another setting are scored again, not reused.

    Raises:
        ValueError: ``driver_side`` is not ``left`` or ``right``.
    """
    if driver_side not in ("left", "right"):
        raise ValueError(f"driver_side must be 'left' or 'right', got {driver_side!r}")
    key = model_set_id if driver_side == "right" else f"{model_set_id}+lhd"
    strength, outlier_rate = flank_cue
    key = key if strength == 0 else f"{key}+pf{strength:g}/{outlier_rate:g}"
    key = f"{key}+fs" if flank_symmetry else key
    return f"{key}+ps" if plate_symmetry else key


def output_widths(taxonomy: Taxonomy) -> dict[str, int]:
    """The declared second dimension of each model output."""
    widths = {
        "angle": taxonomy.num_classes,
        "banner": 1,
        "plate_presence": 1,
        "plate_box": 4,
        "body": len(taxonomy.body_types),
    }
    return {**widths, **{mirror: widths[o] for o, mirror in MIRROR_OUTPUTS.items()}, ANGLE_GROUP: len(GROUPS)}


def validate_outputs(
    outputs: Mapping[str, object],
    n: int,
    taxonomy: Taxonomy,
    *,
    names: Sequence[str] = OUTPUT_NAMES,
    sum_tolerance: float = 1e-2,
) -> dict[str, np.ndarray]:
    """Check model outputs against their declared shapes and ranges.

    Args:
        outputs: Output name -> array-like (numpy, or anything ``np.asarray`` reads, such as a tensor).
        n: The number of inputs the models were given.
        taxonomy: Fixes the angle and body widths.
        names: The outputs that must be present (default: all five). :data:`OPTIONAL_OUTPUTS` are checked
            and kept too where ``outputs`` holds them.
        sum_tolerance: How far a softmax row may sum from 1.

    Returns:
        Name -> float32 array ``[n, width]``. ``plate_box`` is clipped to [0, 1] and put in
        ``x0 <= x1, y0 <= y1`` order (a box regressor may overshoot the frame slightly).

    Raises:
        TypeError: ``outputs`` is not a mapping.
        ValueError: An output is missing, not numeric, has a row count other than ``n`` or another
            width, holds NaN/inf, has probabilities outside [0, 1], or softmax rows not summing to 1.
            The message names the output.
    """
    if not isinstance(outputs, Mapping):
        raise TypeError(f"model outputs must be a mapping of name -> array, got {type(outputs).__name__}")
    widths = output_widths(taxonomy)
    unknown = [k for k in names if k not in widths]
    if unknown:
        raise ValueError(f"unknown model output name(s) {unknown}; known: {list(widths)}")
    missing = [k for k in names if k not in outputs]
    if missing:
        raise ValueError(f"model outputs lack {missing} (got {sorted(outputs)})")
    checked: dict[str, np.ndarray] = {}
    for name in [*names, *(k for k in OPTIONAL_OUTPUTS if k in outputs and k not in names)]:
        try:
            arr = np.asarray(outputs[name])
        except Exception as e:
            raise ValueError(f"model output {name!r} is not array-like: {e}") from e
        if arr.dtype.kind not in "fiub":
            raise ValueError(f"model output {name!r} has dtype {arr.dtype}, expected numbers")
        expected = (n, widths[name])
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(
                f"model output {name!r} has shape {arr.shape}, expected {expected}: "
                f"prediction results must have one row per input ({n} inputs)"
            )
        if arr.shape[1] != widths[name]:
            raise ValueError(f"model output {name!r} has shape {arr.shape}, expected {expected}")
        arr = arr.astype(np.float32, copy=False)
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise ValueError(f"model output {name!r} has {bad} non-finite value(s) (NaN or inf)")
        if name in PROBABILITY_OUTPUTS and arr.size:
            lo, hi = float(arr.min()), float(arr.max())
            if lo < -1e-6 or hi > 1 + 1e-6:
                raise ValueError(
                    f"model output {name!r} has values in [{lo:.4g}, {hi:.4g}], expected probabilities in [0, 1] "
                    "(a logit output instead of sigmoid/softmax?)"
                )
        if name in SOFTMAX_OUTPUTS and arr.size:
            sums = arr.sum(axis=1)
            worst = int(np.argmax(np.abs(sums - 1.0)))
            if abs(float(sums[worst]) - 1.0) > sum_tolerance:
                raise ValueError(
                    f"model output {name!r} row {worst} sums to {float(sums[worst]):.4g}, "
                    "expected a softmax summing to 1"
                )
        if name == "plate_box":
            arr = np.clip(arr, 0.0, 1.0)
            arr = np.stack(
                [
                    np.minimum(arr[:, 0], arr[:, 2]),
                    np.minimum(arr[:, 1], arr[:, 3]),
                    np.maximum(arr[:, 0], arr[:, 2]),
                    np.maximum(arr[:, 1], arr[:, 3]),
                ],
                axis=1,
            )
        checked[name] = arr
    return checked


def _n_rows(outputs: Mapping[str, object]) -> int:
    for value in outputs.values():
        shape = np.shape(value)
        if shape:
            return int(shape[0])
    return 0


def tag_rows(
    outputs: Mapping[str, object],
    taxonomy: Taxonomy,
    rules: ScoringRules,
    *,
    n: int | None = None,
    names: Sequence[str] = OUTPUT_NAMES,
) -> pd.DataFrame:
    """Turn validated model outputs into the model columns of ``image_tags``.

    Body type is reported only for exterior shots: the body model is trained on exterior photos
    only, so its answer for a dashboard says nothing.

    Args:
        outputs: See :func:`validate_outputs`.
        taxonomy: Class names and groups.
        rules: ``banner_threshold``, ``plate_threshold``, ``driver_side`` (names the angle
            softmax's flank classes: the car's right flank is ``*_driver`` under right-hand drive) and
            ``plate_flank_*``, ``flank_symmetry`` and ``plate_symmetry`` (:func:`as_tagged`).
        n: The number of inputs (default: the rows of the first output; still checked for all).
        names: The outputs expected; the columns of a missing task are null.

    Returns:
        One row per input with columns ``MODEL_COLUMNS``: angle, angle_score, angle_top3 (list of
        ``{"label", "score"}``), shot_group, banner_score, banner_flag, plate_score, plate_flag,
        plate_box (4 floats when plate_flag, else None), body_type, body_score.

    Raises:
        ValueError: See :func:`validate_outputs`.
    """
    rows = _n_rows(outputs) if n is None else n
    out = as_tagged(validate_outputs(outputs, rows, taxonomy, names=names), taxonomy, rules)
    frame: dict[str, object] = {c: pd.Series([None] * rows, dtype=object) for c in MODEL_COLUMNS}
    class_names = np.asarray(taxonomy.market_names(rules.driver_side), dtype=object)  # by flank index
    groups = np.asarray([c.group for c in taxonomy.classes], dtype=object)
    exterior = np.ones(rows, dtype=bool)
    if "angle" in out:
        probs = out["angle"]
        k = min(TOP_K, probs.shape[1])
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        best = order[:, 0] if rows else np.zeros(0, dtype=int)
        top_scores = np.take_along_axis(probs, order, axis=1)
        frame["angle"] = class_names[best]
        frame["angle_score"] = probs[np.arange(rows), best].astype(np.float32)
        frame["angle_top3"] = [
            [{"label": str(class_names[j]), "score": float(s)} for j, s in zip(order[i], top_scores[i])]
            for i in range(rows)
        ]
        frame["shot_group"] = groups[best]
        exterior = groups[best] == "exterior"
    if "banner" in out:
        score = out["banner"][:, 0]
        frame["banner_score"] = score
        frame["banner_flag"] = score >= rules.banner_threshold
    if "plate_presence" in out:
        score = out["plate_presence"][:, 0]
        flag = score >= rules.plate_threshold
        frame["plate_score"] = score
        frame["plate_flag"] = flag
        if "plate_box" in out:
            boxes = out["plate_box"]
            frame["plate_box"] = [[float(v) for v in boxes[i]] if flag[i] else None for i in range(rows)]
    if "body" in out:
        probs = out["body"]
        best = np.argmax(probs, axis=1) if rows else np.zeros(0, dtype=int)
        body_names = np.asarray(taxonomy.body_types, dtype=object)
        frame["body_type"] = np.where(exterior, body_names[best], None)
        frame["body_score"] = np.where(exterior, probs[np.arange(rows), best], np.nan).astype(np.float32)
    df = pd.DataFrame({c: frame[c] for c in MODEL_COLUMNS})
    return df


def prediction_frame(
    photos: Sequence[DecodedPhoto],
    outputs: Mapping[str, object] | None,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    *,
    batch: np.ndarray | None = None,
    names: Sequence[str] = OUTPUT_NAMES,
) -> pd.DataFrame:
    """All prediction fields for a batch of photos, failures included.

    Args:
        photos: One per input row, as :func:`fleetvision.decode.decode_batch` returns them.
        outputs: The models' outputs for the ok photos only, in order (ignored, and may be None or
            empty, when no photo decoded).
        taxonomy: Class names and groups.
        rules: Thresholds.
        batch: The uint8 ``[n_ok, S, S, 3]`` batch the models saw (default: stacked from the photos).
        names: The model outputs expected.

    Returns:
        Columns ``PREDICTION_COLUMNS`` in order, one row per photo in input order. Failed photos have
        ``decode_status="error"``, their error code and detail, and null predictions and quality.

    Raises:
        ValueError: The outputs do not have one row per ok photo, or fail :func:`validate_outputs`;
            ``batch`` does not have one image per ok photo.
    """
    ok_rows = [i for i, p in enumerate(photos) if p.ok]
    n_ok, n = len(ok_rows), len(photos)
    if n_ok == 0:
        outputs, names = {}, ()  # nothing decoded: the models had no input, whatever they returned
    elif outputs is None:
        raise ValueError(f"prediction_frame: {n_ok} photos decoded but no model outputs were given")
    tags = tag_rows(outputs, taxonomy, rules, n=n_ok, names=names)
    if batch is None:
        batch = (
            np.stack([photos[i].array for i in ok_rows])  # type: ignore[misc]
            if n_ok
            else np.zeros((0, 1, 1, 3), dtype=np.uint8)
        )
    if batch.shape[0] != n_ok:
        raise ValueError(f"prediction_frame: batch has {batch.shape[0]} images for {n_ok} decoded photos")
    sharp, bright = measure_quality(batch)

    full = pd.DataFrame(index=pd.RangeIndex(n))
    full["width"] = pd.array([p.width for p in photos], dtype="Int32")
    full["height"] = pd.array([p.height for p in photos], dtype="Int32")
    full["decode_status"] = [p.decode_status for p in photos]
    full["error_code"] = pd.Series([p.error_code for p in photos], dtype=object)
    full["error_detail"] = pd.Series([p.error_detail for p in photos], dtype=object)
    for col in MODEL_COLUMNS:
        series = tags[col]
        if series.dtype.kind == "f":
            values = np.full(n, np.nan, dtype=series.dtype)
            values[ok_rows] = series.to_numpy()
            full[col] = values
        elif series.dtype.kind == "b":
            values_b = pd.array([pd.NA] * n, dtype="boolean")
            values_b[ok_rows] = series.to_numpy()
            full[col] = values_b
        else:
            values_o = np.full(n, None, dtype=object)
            values_o[ok_rows] = series.to_numpy(dtype=object)
            full[col] = values_o
    for col, measured in (("sharpness", sharp), ("brightness", bright)):
        values = np.full(n, np.nan, dtype=np.float32)
        values[ok_rows] = measured
        full[col] = values
    return full[list(PREDICTION_COLUMNS)]
