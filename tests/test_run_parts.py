"""The scoring run's small parts, without Spark: fault points, the stage clock, the frozen summary."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from fleetvision.scoring.faults import FAIL_AT_ENV, FAIL_POINTS, InjectedFailureError, fail_point
from fleetvision.scoring.stopwatch import Stopwatch
from fleetvision.scoring.summary import STATUS_FAILED_DQ, STATUS_SUCCEEDED, RunSummary


def test_a_fail_point_raises_only_when_named_and_unknown_names_are_refused() -> None:
    fail_point("after_tags_merge", {})
    fail_point("after_tags_merge", {FAIL_AT_ENV: "before_ledger"})
    with pytest.raises(InjectedFailureError, match="FLEETVISION_FAIL_AT=before_ledger"):
        fail_point("before_ledger", {FAIL_AT_ENV: "before_ledger"})
    with pytest.raises(ValueError, match="unknown fail point 'after_lunch'"):
        fail_point("after_lunch", {})
    assert "udf_first_attempt" in FAIL_POINTS


class _CountingLease:
    def __init__(self) -> None:
        self.renewals = 0

    def renew(self) -> None:
        self.renewals += 1


def test_the_stopwatch_renews_the_lease_at_each_stage_start_and_adds_up_a_stage_entered_twice() -> None:
    lease = _CountingLease()
    clock = Stopwatch(lease)  # type: ignore[arg-type]
    for name in ("select", "hash", "select"):
        with clock.stage(name):
            pass
    with pytest.raises(RuntimeError), clock.stage("infer"):
        raise RuntimeError("a failed stage is timed too")
    assert lease.renewals == 4
    assert list(clock.stage_seconds) == ["select", "hash", "infer"]
    clock.stage_seconds["select"] = 99.0  # a copy: the clock keeps its own
    assert clock.stage_seconds["select"] < 99.0


def test_the_summary_is_one_frozen_value_that_renders_its_verdict() -> None:
    ok = RunSummary(run_id="r1", mode="full", status=STATUS_SUCCEEDED, started_at=datetime(2026, 3, 1), dq_passed=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ok.status = STATUS_FAILED_DQ  # type: ignore[misc]
    assert ok.exit_code == 0 and "FleetVision scoring run r1: OK" in ok.render()
    failed = dataclasses.replace(ok, status=STATUS_FAILED_DQ, dq_passed=False, dq_breached=["angle_drift"])
    assert failed.exit_code == 1
    assert "FAILED (failed_dq)" in failed.render() and "BREACHED: angle_drift" in failed.render()
    assert "watermark       NOT moved" in failed.render()
