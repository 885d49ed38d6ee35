"""The promotion rule: a candidate takes the champion alias only if it is at least as good.

Pure: metrics in, decision out. For every metric of the task in ``promote.compare_metrics`` (all
"higher is better"), the candidate must reach the champion's value minus ``promote.tolerance``;
and every ``promote.min_metrics`` entry of the task (``"<task>.<metric>": floor``) must be met.
With no champion yet only the floors apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleetvision.config import PromoteConfig


@dataclass(frozen=True)
class MetricCheck:
    """One comparison.

    Attributes:
        metric: Metric name (``top1``, ``f1``, ...).
        candidate: The candidate's value.
        required: The value it had to reach.
        basis: ``champion`` (champion's value minus tolerance) or ``minimum`` (a ``min_metrics`` floor).
        reference: The champion's value or the floor.
    """

    metric: str
    candidate: float
    required: float
    basis: str
    reference: float

    @property
    def passed(self) -> bool:
        return self.candidate >= self.required

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FELL SHORT"
        return (
            f"{self.metric}: candidate {self.candidate:.4f} vs {self.basis} {self.reference:.4f} "
            f"(needs >= {self.required:.4f}) {verdict}"
        )


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of comparing a candidate version with the champion."""

    task: str
    candidate_version: str
    champion_version: str | None
    checks: tuple[MetricCheck, ...]

    @property
    def promote(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def shortfalls(self) -> tuple[MetricCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def message(self) -> str:
        against = f"champion v{self.champion_version}" if self.champion_version else "no champion (floors only)"
        head = f"{self.task}: candidate v{self.candidate_version} vs {against}: " + (
            "promote" if self.promote else "refused"
        )
        lines = [head, *("  " + c.describe() for c in self.checks)]
        if not self.checks:
            lines.append("  (no metric to compare: promote.compare_metrics and min_metrics name none for this task)")
        return "\n".join(lines)


def decide(
    task: str,
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    rules: PromoteConfig,
    *,
    candidate_version: str,
    champion_version: str | None = None,
) -> PromotionDecision:
    """Compare a candidate's metrics with the champion's (both on the same frozen set).

    Args:
        task: The task.
        candidate: The candidate's metrics.
        champion: The champion's metrics, or None when there is no champion.
        rules: ``config.promote``.
        candidate_version: For the message.
        champion_version: For the message.

    Raises:
        ValueError: A configured metric is not among the evaluated metrics (names it).
    """
    compared = tuple(rules.compare_metrics.get(task, ()))
    floors = {k.split(".", 1)[1]: v for k, v in rules.min_metrics.items() if k.startswith(f"{task}.")}
    for name in (*compared, *floors):
        if name not in candidate:
            raise ValueError(
                f"promote: metric {task}.{name} is configured but the {task} evaluation has no such metric; "
                f"available: {', '.join(sorted(candidate))}"
            )
    checks: list[MetricCheck] = []
    if champion is not None:
        for name in compared:
            ref = float(champion[name])
            checks.append(MetricCheck(name, float(candidate[name]), ref - rules.tolerance, "champion", ref))
    for name, floor in sorted(floors.items()):
        checks.append(MetricCheck(name, float(candidate[name]), float(floor), "minimum", float(floor)))
    return PromotionDecision(task, str(candidate_version), champion_version, tuple(checks))
