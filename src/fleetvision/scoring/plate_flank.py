"""The flank a 3/4 shot shows, read from where the licence plate sits in the photo.

In a 3/4 view the car's front or rear end, and the plate on it, is on one side of the car and the
flank runs off to the other, and photographers frame the car around the middle of the photo. So in a
front 3/4 view the plate sits left of the middle when the car's **left** flank shows (the nose points to
the photo's left) and right of it for the right flank; in a rear 3/4 view the other way round. This is
geometry, not a learnt look, so it holds on real photos as on renders: the plate head finds real
plates (recall 0.91 on the real dev set) where the angle head's flank, learnt from renders, mostly
leans towards "right" on real 3/4 shots (``docs/models.md``, *The flank from the plate's position*).

:func:`plate_flank` adds this evidence to the angle softmax as a log-odds term within each 3/4 pair
(``front_3q_left``/``front_3q_right``, ``rear_3q_left``/``rear_3q_right``)::

    log(p_left / p_right) += sign * plate_offset_evidence(presence, box, strength, outlier_rate)

with ``sign`` -1 for front 3/4 and +1 for rear 3/4; the evidence grows with the plate's offset from the
middle and is bounded by the share of plates found that are not this car's end (its docstring). Each
pair keeps its total probability, so the view family's probability does not change; only its split
between the two flanks does. Side views are left alone (no end, so no plate, is in view). The two
settings are fitted on renders only (``benchmarks/fit_plate_flank.py``), never on real photos;
``strength`` 0 turns the cue off. Pure numpy.
"""

from __future__ import annotations

import numpy as np

from fleetvision.taxonomy import Taxonomy

PAIR_SIGNS: dict[str, float] = {"front_3q": -1.0, "rear_3q": 1.0}
"""View family -> the sign of ``plate_centre_x - 0.5`` that means the car's left flank."""
_TINY = 1e-12


def flank_pairs(taxonomy: Taxonomy) -> list[tuple[int, int, float]]:
    """``(left index, right index, sign)`` in the angle softmax for each family of :data:`PAIR_SIGNS`.

    Raises:
        ValueError: The taxonomy has no ``<family>_left``/``<family>_right`` flank classes for a family.
    """
    names = list(taxonomy.flank_names)
    pairs = []
    for family, sign in PAIR_SIGNS.items():
        left, right = f"{family}_left", f"{family}_right"
        if left not in names or right not in names:
            raise ValueError(f"plate_flank: the taxonomy has no flank classes {left!r} and {right!r}")
        pairs.append((names.index(left), names.index(right), sign))
    return pairs


def plate_offset_evidence(
    plate_presence: np.ndarray, plate_box: np.ndarray, strength: float, outlier_rate: float
) -> np.ndarray:
    """Log-odds, per photo ``[N]``, that the plate is on the car's end that is right of the middle;
    a pair's log-odds of its left flank move by this times the pair's :data:`PAIR_SIGNS`.

    The model behind it: a plate found (probability ``presence``) at horizontal offset ``d`` from the
    middle is on the right-hand end with probability ``outlier_rate + (1 - 2 outlier_rate) *
    sigmoid(strength * d)``: sharp in ``d`` (``strength``), but now and then the plate found is not
    this car's end (a neighbour's plate, a sign) whatever ``d`` says (``outlier_rate``), which bounds the
    evidence at ``log((1 - outlier_rate) / outlier_rate)``; with no plate (``presence`` 0) it is 1/2.

    Args:
        plate_presence: ``[N]`` or ``[N, 1]`` plate probabilities.
        plate_box: ``[N, 4]`` boxes ``x0, y0, x1, y1`` normalised to the photo.
        strength: Log-odds per unit of horizontal offset (>= 0; 0: no evidence).
        outlier_rate: The share of plates found that say nothing about the flank, within [0, 0.5).

    Raises:
        ValueError: Shapes that do not match, a negative or non-finite strength, an outlier rate
            outside [0, 0.5).
    """
    if not np.isfinite(strength) or strength < 0:
        raise ValueError(f"plate_flank: strength must be a finite number >= 0, got {strength}")
    if not 0.0 <= outlier_rate < 0.5:
        raise ValueError(f"plate_flank: outlier_rate must be within [0, 0.5), got {outlier_rate}")
    presence = np.asarray(plate_presence, dtype=np.float64).reshape(-1)
    box = np.asarray(plate_box, dtype=np.float64)
    if box.ndim != 2 or box.shape[1] != 4 or box.shape[0] != presence.shape[0]:
        raise ValueError(
            f"plate_flank: plate_box must be [N, 4] beside plate_presence [N], got {box.shape} and {presence.shape}"
        )
    offset = np.nan_to_num((box[:, 0] + box[:, 2]) / 2.0 - 0.5)
    q = np.clip(_right_end_probability(offset, presence, strength, outlier_rate), _TINY, 1.0 - _TINY)
    return np.log(q) - np.log1p(-q)


def _right_end_probability(
    offset: np.ndarray, presence: np.ndarray, strength: float | np.ndarray, outlier_rate: float
) -> np.ndarray:
    """The model of :func:`plate_offset_evidence`: the probability that the plate is on the end right of
    the middle. Broadcasts, so :func:`fit_plate_flank` evaluates a column of strengths at once."""
    presence = np.clip(np.nan_to_num(presence), 0.0, 1.0)
    sharp = 1.0 / (1.0 + np.exp(-np.clip(strength * offset, -60.0, 60.0)))
    return presence * (outlier_rate + (1.0 - 2.0 * outlier_rate) * sharp) + (1.0 - presence) * 0.5


def plate_flank(
    angle: np.ndarray,
    plate_presence: np.ndarray,
    plate_box: np.ndarray,
    taxonomy: Taxonomy,
    strength: float,
    outlier_rate: float,
) -> np.ndarray:
    """The angle softmax ``[N, C]`` (flank classes) with the plate's position added to each 3/4 pair's
    split between the flanks (module docstring). Returns a new float32 array; ``strength`` 0 returns
    an unchanged copy.

    Raises:
        ValueError: ``angle`` is not ``[N, len(taxonomy)]``, or see :func:`plate_offset_evidence`.
    """
    probs = np.asarray(angle, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(taxonomy.flank_names):
        raise ValueError(f"plate_flank: angle must be [N, {len(taxonomy.flank_names)}], got {probs.shape}")
    evidence = plate_offset_evidence(plate_presence, plate_box, strength, outlier_rate)
    if evidence.shape[0] != probs.shape[0]:
        raise ValueError(f"plate_flank: {probs.shape[0]} angle rows but {evidence.shape[0]} plate rows")
    out = probs.copy()
    if strength == 0:
        return out.astype(np.float32)
    for left, right, sign in flank_pairs(taxonomy):
        mass = probs[:, left] + probs[:, right]
        log_odds = np.log(probs[:, left] + _TINY) - np.log(probs[:, right] + _TINY) + sign * evidence
        share_left = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -60.0, 60.0)))
        out[:, left] = mass * share_left
        out[:, right] = mass - out[:, left]
    return out.astype(np.float32)


def fit_plate_flank(
    offsets: np.ndarray,
    presence: np.ndarray,
    left: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    strengths: np.ndarray | None = None,
    outlier_rates: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """Maximum-likelihood ``(strength, outlier_rate)`` of :func:`plate_offset_evidence` on labelled 3/4
    photos, by a grid search (deterministic, numpy only), and the weighted mean log-loss there.

    Args:
        offsets: ``[N]`` the plate box's centre x - 0.5, times the pair's :data:`PAIR_SIGNS` (positive:
            the position says left flank).
        presence: ``[N]`` plate probabilities.
        left: ``[N]`` bool, the photo shows the car's left flank.
        weights: ``[N]`` photo weights (e.g. each renderer's photos summing to one); default equal.
        strengths: The grid of strengths (default 161 steps from 1 to 400, geometric).
        outlier_rates: The grid of outlier rates (default 0 to 0.2 by 0.001).

    Raises:
        ValueError: Lengths differ, no photos, or negative weights.
    """
    z = np.asarray(offsets, dtype=np.float64).reshape(-1)
    p = np.asarray(presence, dtype=np.float64).reshape(-1)
    y = np.asarray(left, dtype=bool).reshape(-1)
    w = np.ones_like(z) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if not len(z) or not (len(z) == len(p) == len(y) == len(w)):
        raise ValueError(f"fit_plate_flank: {len(z)} offsets, {len(p)} presences, {len(y)} labels, {len(w)} weights")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("fit_plate_flank: weights must be >= 0 and not all 0")
    w = w / w.sum()
    ks = np.geomspace(1.0, 400.0, 161) if strengths is None else np.asarray(strengths, dtype=np.float64)
    es = np.linspace(0.0, 0.2, 201) if outlier_rates is None else np.asarray(outlier_rates, dtype=np.float64)
    z = np.nan_to_num(z)
    best = (np.inf, 0.0, 0.0)
    for e in es:
        q = _right_end_probability(z[None, :], p[None, :], ks[:, None], float(e))  # [K, N]
        q = np.clip(np.where(y, q, 1.0 - q), _TINY, 1.0)
        loss = -(np.log(q) * w).sum(axis=1)
        i = int(np.argmin(loss))
        if loss[i] < best[0]:
            best = (float(loss[i]), float(ks[i]), float(e))
    return best[1], best[2], best[0]
