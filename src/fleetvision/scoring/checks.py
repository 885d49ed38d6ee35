"""Data-quality checks on a scoring run, as pure functions.

A run that breaks a check exits non-zero and does not move the watermark (the job decides that;
these functions only measure). Three checks:

- ``decode_error_rate``: failed images / images in the run must be at most ``max_decode_error_rate``;
  every error code counts, the input errors (``forbidden_uri``, ``unreadable_uri``, ``empty``) as much
  as the decode errors, so a feed of hostile or missing uris breaches the check rather than vanishing;
- ``scored_share``: images with predictions / images in the run must be at least ``min_scored_share``;
- ``angle_drift``: the distribution of predicted shot labels against the previous successful run's,
  as total variation distance (``tvd``: half the L1 distance, 0-1) or population stability index
  (``psi``), must be at most ``max_angle_drift``. Skipped when either run scored fewer than
  ``drift_min_images`` images, where a distribution says little.

The result serialises to the JSON stored in ``scoring_runs.dq_report`` (:meth:`DQResult.to_json`).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

logger = logging.getLogger(__name__)


class DQThresholds(Protocol):
    """What :func:`run_checks` reads (``ScoringRules`` and ``ScoringConfig`` both have it)."""

    max_decode_error_rate: float
    min_scored_share: float
    max_angle_drift: float
    drift_metric: Literal["tvd", "psi"]
    drift_min_images: int


@dataclass(frozen=True)
class CheckResult:
    """One check: its measured value against its threshold.

    Attributes:
        name: ``decode_error_rate``, ``scored_share`` or ``angle_drift``.
        passed: False when the threshold is breached (a skipped check passes).
        value: The measurement (None when skipped).
        threshold: The configured limit.
        message: One line for logs and the report.
        skipped: The check could not be measured meaningfully (no images, no previous run, ...).
    """

    name: str
    passed: bool
    value: float | None
    threshold: float
    message: str
    skipped: bool = False


@dataclass(frozen=True)
class DQResult:
    """All checks of one run, and the label counts the drift check compared (kept for the report)."""

    checks: tuple[CheckResult, ...]
    angle_counts: Mapping[str, float] | None = None
    previous_angle_counts: Mapping[str, float] | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def breached(self) -> list[str]:
        """Names of the checks that failed."""
        return [c.name for c in self.checks if not c.passed]

    def summary(self) -> str:
        """``"passed"`` or the breached checks' messages joined by ``"; "``."""
        if self.passed:
            return "passed"
        return "; ".join(c.message for c in self.checks if not c.passed)

    def to_dict(self, stage_seconds: Mapping[str, float] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "passed": self.passed,
            "breached": self.breached,
            "checks": [asdict(c) for c in self.checks],
        }
        if self.angle_counts is not None:
            out["angle_counts"] = {str(k): float(v) for k, v in self.angle_counts.items()}
        if self.previous_angle_counts is not None:
            out["previous_angle_counts"] = {str(k): float(v) for k, v in self.previous_angle_counts.items()}
        if stage_seconds is not None:
            out["stage_seconds"] = {str(k): float(v) for k, v in stage_seconds.items()}
        return out

    def to_json(self, stage_seconds: Mapping[str, float] | None = None) -> str:
        """The ``scoring_runs.dq_report`` value.

        Keys: ``passed``, ``breached``, ``checks`` (one object per :class:`CheckResult`), ``angle_counts``
        and ``previous_angle_counts`` (when known), and ``stage_seconds`` (stage -> seconds) when given:
        the report job reads all of them back.
        """
        # Insertion order, not sorted: stage_seconds keeps the pipeline's order for the report.
        return json.dumps(self.to_dict(stage_seconds), allow_nan=False)


def parse_dq_report(text: str | None) -> dict[str, Any]:
    """Read a ``dq_report`` back; an empty or malformed one becomes ``{}`` (logged), never an exception."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        logger.warning("dq_report is not JSON: %.80s", text)
        return {}
    return value if isinstance(value, dict) else {}


# ------------------------------------------------------------------------------------ distributions
def label_distribution(counts: Mapping[str, float] | Iterable[str | None]) -> dict[str, float]:
    """Normalise label counts (or an iterable of labels; None is skipped) to shares summing to 1.

    Raises:
        ValueError: A count is negative or not finite.
    """
    if isinstance(counts, Mapping):
        raw = {str(k): float(v) for k, v in counts.items()}
    else:
        raw = {str(k): float(v) for k, v in Counter(x for x in counts if x is not None).items()}
    bad = {k: v for k, v in raw.items() if v < 0 or not math.isfinite(v)}
    if bad:
        raise ValueError(f"label counts must be finite and >= 0, got {bad}")
    total = sum(raw.values())
    if total <= 0:
        return {}
    return {k: v / total for k, v in sorted(raw.items()) if v > 0}


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Total variation distance between two label distributions: half the L1 distance, in 0-1."""
    p, q = label_distribution(p), label_distribution(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def population_stability_index(p: Mapping[str, float], q: Mapping[str, float], eps: float = 1e-4) -> float:
    """PSI = sum over labels of (p - q) ln(p / q), shares floored at ``eps`` so a new label is finite.

    Rules of thumb: below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 large shift.
    """
    p, q = label_distribution(p), label_distribution(q)
    total = 0.0
    for k in set(p) | set(q):
        a, b = max(p.get(k, 0.0), eps), max(q.get(k, 0.0), eps)
        total += (a - b) * math.log(a / b)
    return total


def angle_drift(current: Mapping[str, float], previous: Mapping[str, float], metric: str = "tvd") -> float:
    """The drift statistic named by ``metric`` (``tvd`` or ``psi``).

    Raises:
        ValueError: Unknown metric.
    """
    if metric == "tvd":
        return total_variation(current, previous)
    if metric == "psi":
        return population_stability_index(current, previous)
    raise ValueError(f"unknown drift metric {metric!r}; expected 'tvd' or 'psi'")


# ------------------------------------------------------------------------------------------ checks
def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def run_checks(
    *,
    images_in: int,
    images_failed: int,
    images_scored: int,
    angle_counts: Mapping[str, float],
    previous_angle_counts: Mapping[str, float] | None,
    rules: DQThresholds,
) -> DQResult:
    """Measure a run against its data-quality thresholds.

    Args:
        images_in: Images the run had to tag (rows it wrote to image_tags).
        images_failed: Of those, images with an error code.
        images_scored: Of those, images with predictions (inferred or from the cache).
        angle_counts: Predicted shot label -> count in this run.
        previous_angle_counts: The same for the previous successful run (None: first run).
        rules: The thresholds.

    Returns:
        The checks, in the order decode_error_rate, scored_share, angle_drift.

    Raises:
        ValueError: A count is negative or not an int, or failed/scored exceed images_in.
    """
    n_in = _count("images_in", images_in)
    n_failed = _count("images_failed", images_failed)
    n_scored = _count("images_scored", images_scored)
    if n_failed > n_in or n_scored > n_in:
        raise ValueError(f"images_failed ({n_failed}) and images_scored ({n_scored}) cannot exceed images_in ({n_in})")
    checks: list[CheckResult] = []

    limit = float(rules.max_decode_error_rate)
    if n_in == 0:
        checks.append(CheckResult("decode_error_rate", True, None, limit, "no images in this run", skipped=True))
    else:
        rate = n_failed / n_in
        ok = rate <= limit
        rel = "<=" if ok else ">"
        msg = f"decode_error_rate {rate:.3f} ({n_failed}/{n_in}) {rel} max {limit:.3f}"
        checks.append(CheckResult("decode_error_rate", ok, rate, limit, msg))

    floor = float(rules.min_scored_share)
    if n_in == 0:
        checks.append(CheckResult("scored_share", True, None, floor, "no images in this run", skipped=True))
    else:
        share = n_scored / n_in
        ok = share >= floor
        rel = ">=" if ok else "<"
        msg = f"scored_share {share:.3f} ({n_scored}/{n_in}) {rel} min {floor:.3f}"
        checks.append(CheckResult("scored_share", ok, share, floor, msg))

    max_drift = float(rules.max_angle_drift)
    metric = rules.drift_metric
    now_total = sum(float(v) for v in angle_counts.values())
    prev_total = sum(float(v) for v in previous_angle_counts.values()) if previous_angle_counts else 0.0
    if not previous_angle_counts:
        checks.append(
            CheckResult("angle_drift", True, None, max_drift, "no previous run to compare with", skipped=True)
        )
    elif min(now_total, prev_total) < rules.drift_min_images:
        msg = (
            f"angle_drift skipped: {int(now_total)} images now, {int(prev_total)} before "
            f"(needs {rules.drift_min_images} in each)"
        )
        checks.append(CheckResult("angle_drift", True, None, max_drift, msg, skipped=True))
    else:
        drift = angle_drift(angle_counts, previous_angle_counts, metric)
        ok = drift <= max_drift
        rel = "<=" if ok else ">"
        msg = f"angle_drift ({metric}) {drift:.3f} {rel} max {max_drift:.3f}"
        checks.append(CheckResult("angle_drift", ok, drift, max_drift, msg))

    result = DQResult(
        tuple(checks),
        angle_counts=dict(angle_counts),
        previous_angle_counts=dict(previous_angle_counts) if previous_angle_counts is not None else None,
    )
    if not result.passed:
        logger.warning("data-quality checks breached: %s", result.summary())
    return result
