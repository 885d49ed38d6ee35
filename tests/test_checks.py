"""Data-quality checks on a run (tier 1, no Spark)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fleetvision.config import ScoringConfig
from fleetvision.scoring import ScoringRules
from fleetvision.scoring.checks import (
    angle_drift,
    label_distribution,
    parse_dq_report,
    population_stability_index,
    run_checks,
    total_variation,
)
from fleetvision.taxonomy import load_taxonomy

BASE = {"full_front": 300, "boot": 300, "dashboard": 400}


@pytest.fixture(scope="module")
def rules() -> ScoringRules:
    return ScoringRules.default(load_taxonomy())


def test_a_clean_run_passes(rules: ScoringRules) -> None:
    result = run_checks(
        images_in=1000,
        images_failed=20,
        images_scored=980,
        angle_counts=BASE,
        previous_angle_counts={"full_front": 310, "boot": 290, "dashboard": 400},
        rules=rules,
    )
    assert result.passed and result.breached == [] and result.summary() == "passed"
    assert [c.name for c in result.checks] == ["decode_error_rate", "scored_share", "angle_drift"]
    assert result.checks[0].value == pytest.approx(0.02) and result.checks[2].value == pytest.approx(0.01)


def test_each_breach_is_named(rules: ScoringRules) -> None:
    result = run_checks(
        images_in=1000,
        images_failed=150,
        images_scored=850,
        angle_counts={"full_front": 900, "boot": 50, "dashboard": 50},
        previous_angle_counts=BASE,
        rules=rules,
    )
    assert not result.passed
    assert result.breached == ["decode_error_rate", "scored_share", "angle_drift"]
    assert "decode_error_rate 0.150 (150/1000) > max 0.100" in result.summary()
    assert "scored_share 0.850 (850/1000) < min 0.950" in result.summary()
    report = json.loads(result.to_json(stage_seconds={"decode": 1.5}))
    assert report["passed"] is False and report["breached"] == result.breached
    assert report["stage_seconds"] == {"decode": 1.5}
    assert report["angle_counts"]["full_front"] == 900 and report["previous_angle_counts"] == BASE
    assert report["checks"][2]["value"] == pytest.approx(0.6)
    assert parse_dq_report(result.to_json()) == result.to_dict()


def test_thresholds_are_inclusive(rules: ScoringRules) -> None:
    exact = run_checks(
        images_in=100, images_failed=10, images_scored=95, angle_counts={}, previous_angle_counts=None, rules=rules
    )
    assert exact.passed  # 10% failed with a 10% limit, 95% scored with a 95% floor


def test_drift_is_skipped_without_a_previous_run_or_enough_images(rules: ScoringRules) -> None:
    first = run_checks(
        images_in=10,
        images_failed=0,
        images_scored=10,
        angle_counts={"boot": 10},
        previous_angle_counts=None,
        rules=rules,
    )
    assert first.passed and first.checks[2].skipped and first.checks[2].value is None
    small = run_checks(
        images_in=10,
        images_failed=0,
        images_scored=10,
        angle_counts={"boot": 10},
        previous_angle_counts={"wheel": 10},
        rules=rules,
    )
    assert small.passed and small.checks[2].skipped and "needs 200" in small.checks[2].message
    strict = rules.replace(drift_min_images=5)
    assert run_checks(
        images_in=10,
        images_failed=0,
        images_scored=10,
        angle_counts={"boot": 10},
        previous_angle_counts={"wheel": 10},
        rules=strict,
    ).breached == ["angle_drift"]


def test_an_empty_run_passes_with_skips(rules: ScoringRules) -> None:
    result = run_checks(
        images_in=0, images_failed=0, images_scored=0, angle_counts={}, previous_angle_counts=BASE, rules=rules
    )
    assert result.passed and all(c.skipped for c in result.checks)


def test_psi_metric_from_config() -> None:
    rules = ScoringRules.from_config(ScoringConfig(drift_metric="psi", max_angle_drift=0.1), load_taxonomy())
    shifted = {"full_front": 500, "boot": 200, "dashboard": 300}
    result = run_checks(
        images_in=1000,
        images_failed=0,
        images_scored=1000,
        angle_counts=shifted,
        previous_angle_counts=BASE,
        rules=rules,
    )
    assert result.breached == ["angle_drift"] and "(psi)" in result.checks[2].message
    assert result.checks[2].value == pytest.approx(population_stability_index(shifted, BASE))


def test_distributions_and_distances() -> None:
    assert label_distribution(["a", "b", "b", None, "b", "a"]) == {"a": 0.4, "b": 0.6}
    assert label_distribution({"a": 0, "b": 0}) == {}
    assert total_variation({"a": 1}, {"a": 5}) == 0.0
    assert total_variation({"a": 1}, {"b": 1}) == 1.0
    assert total_variation({"a": 3, "b": 1}, {"a": 1, "b": 3}) == pytest.approx(0.5)
    p, q = {"a": 0.5, "b": 0.5}, {"a": 0.9, "b": 0.1}
    expected = (0.5 - 0.9) * math.log(0.5 / 0.9) + (0.5 - 0.1) * math.log(0.5 / 0.1)
    assert population_stability_index(p, q) == pytest.approx(expected)
    assert math.isfinite(population_stability_index({"new": 1}, {"old": 1}))
    with pytest.raises(ValueError, match="unknown drift metric 'kl'"):
        angle_drift(p, q, "kl")
    with pytest.raises(ValueError, match="finite and >= 0"):
        label_distribution({"a": -1})


def test_bad_counts_raise(rules: ScoringRules) -> None:
    with pytest.raises(ValueError, match="images_failed must be a non-negative int"):
        run_checks(
            images_in=1, images_failed=-1, images_scored=0, angle_counts={}, previous_angle_counts=None, rules=rules
        )
    with pytest.raises(ValueError, match="cannot exceed images_in"):
        run_checks(
            images_in=1, images_failed=2, images_scored=0, angle_counts={}, previous_angle_counts=None, rules=rules
        )
    # numpy counts (from pandas sums) are ints too
    ok = run_checks(
        images_in=np.int64(4),
        images_failed=np.int64(0),
        images_scored=np.int64(4),
        angle_counts={},
        previous_angle_counts=None,
        rules=rules,
    )
    assert ok.passed


def test_parse_dq_report_tolerates_junk() -> None:
    assert parse_dq_report(None) == {} and parse_dq_report("not json") == {} and parse_dq_report("[1]") == {}
