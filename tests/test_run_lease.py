"""The scoring run lease: one run per database at a time.

Tier 1: the pure decision (:func:`fleetvision.scoring.lease.decide`) and the refusal message.
Tier 2: the lease on Delta (MERGE, read back, renew, release, expiry, two acquirers at once on one
session), and two real scoring runs started together on one session (threads: two processes cannot
share the embedded Derby metastore).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_score_job_support import OracleModels, StandInModelSet, inferred_rows, table_rows, write_inventory

from fleetvision import tables
from fleetvision.exit_codes import ExitCode
from fleetvision.scoring import job
from fleetvision.scoring.lease import (
    TAKE_OVER_CONDITION,
    Lease,
    LeaseBusyError,
    LeaseLostError,
    Verdict,
    acquire_lease,
    break_lease,
    busy_message,
    decide,
    is_commit_conflict,
    new_lease,
    read_lease,
    renewal_due,
    renewed,
)
from fleetvision.scoring.run import RunOptions, run_scoring
from fleetvision.taxonomy import load_taxonomy

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
TTL = timedelta(minutes=30)
OUTPUTS = (tables.IMAGE_TAGS, tables.PREDICTION_CACHE, tables.LISTING_COMPLETENESS, tables.HERO_IMAGES)


def _lease(run_id: str = "run-a", *, at: datetime = T0, released: datetime | None = None) -> Lease:
    return replace(new_lease("scoring", run_id, "host-a:101", at, TTL), released_at=released)


# ------------------------------------------------------------------------------------ tier 1: pure
def test_no_lease_row_is_acquired() -> None:
    assert decide(None, "run-b", T0) is Verdict.ACQUIRE


def test_a_live_lease_of_another_run_is_denied_until_the_instant_it_expires() -> None:
    held = _lease("run-a")
    assert decide(held, "run-b", T0 + TTL - timedelta(microseconds=1)) is Verdict.DENY
    assert decide(held, "run-b", T0 + TTL) is Verdict.TAKE_OVER_EXPIRED
    assert decide(held, "run-b", T0 + 10 * TTL) is Verdict.TAKE_OVER_EXPIRED
    assert not Verdict.DENY.granted and Verdict.TAKE_OVER_EXPIRED.granted


def test_a_released_lease_is_taken_over_before_it_expires() -> None:
    released = _lease("run-a", released=T0 + timedelta(minutes=1))
    assert decide(released, "run-b", T0 + timedelta(minutes=2)) is Verdict.TAKE_OVER_RELEASED
    assert decide(released, "run-a", T0 + timedelta(minutes=2)) is Verdict.TAKE_OVER_RELEASED


def test_our_own_live_lease_is_held_even_when_expired() -> None:
    assert decide(_lease("run-a"), "run-a", T0) is Verdict.HELD
    assert decide(_lease("run-a"), "run-a", T0 + 2 * TTL) is Verdict.HELD


def test_renewal_moves_only_the_expiry_and_the_renewal_time() -> None:
    lease = _lease("run-a")
    later = renewed(lease, T0 + timedelta(minutes=20), TTL)
    assert later.expires_at == T0 + timedelta(minutes=50) and later.renewed_at == T0 + timedelta(minutes=20)
    assert (later.acquired_at, later.run_id, later.holder) == (lease.acquired_at, lease.run_id, lease.holder)
    assert decide(later, "run-b", T0 + timedelta(minutes=40)) is Verdict.DENY


def test_a_renewal_is_due_an_eighth_of_the_ttl_after_the_last() -> None:
    lease = _lease("run-a")
    assert not renewal_due(lease, T0 + TTL / 8 - timedelta(microseconds=1), TTL)
    assert renewal_due(lease, T0 + TTL / 8, TTL)
    assert not renewal_due(renewed(lease, T0 + TTL, TTL), T0 + TTL + timedelta(minutes=1), TTL)


def test_bad_arguments_are_named() -> None:
    naive = datetime(2026, 3, 1, 2, 0)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        decide(None, "run-b", naive)
    with pytest.raises(ValueError, match="run_id must be a non-empty string"):
        decide(None, "", T0)
    with pytest.raises(ValueError, match="lease ttl must be positive"):
        new_lease("scoring", "run-a", "h:1", T0, timedelta(0))
    with pytest.raises(ValueError, match="lease ttl must be positive"):
        renewed(_lease(), T0, -TTL)
    with pytest.raises(ValueError, match="must be non-empty"):
        new_lease("scoring", "run-a", "", T0, TTL)
    with pytest.raises(ValueError, match=r"Lease.expires_at must be timezone-aware"):
        Lease("scoring", "run-a", "h:1", T0, T0, naive)
    with pytest.raises(TypeError, match="now must be a datetime"):
        decide(None, "run-b", "2026-03-01")  # type: ignore[arg-type]


def test_commit_conflicts_are_recognised_converted_or_raw() -> None:
    from delta.exceptions import ConcurrentAppendException, ConcurrentWriteException

    class JavaError(Exception):  # a Py4JJavaError as PySpark raises it when it did not convert it
        def __init__(self, java_class: str) -> None:
            super().__init__(java_class)
            self.java_exception = SimpleNamespace(getClass=lambda: SimpleNamespace(getName=lambda: java_class))

    assert is_commit_conflict(ConcurrentAppendException("files were added"))
    assert is_commit_conflict(ConcurrentWriteException("written meanwhile"))
    assert is_commit_conflict(JavaError("io.delta.exceptions.ConcurrentAppendException"))
    assert is_commit_conflict(JavaError("io.delta.exceptions.MetadataChangedException"))
    assert not is_commit_conflict(JavaError("java.lang.IllegalStateException"))
    assert not is_commit_conflict(JavaError("io.delta.exceptions.SomethingElse"))
    assert not is_commit_conflict(ValueError("not a conflict"))


def test_the_refusal_is_one_line_naming_the_holder_its_run_and_its_expiry() -> None:
    message = busy_message(_lease("20260301T020000Z-aaaa"), "fleetvision", T0 + timedelta(minutes=5))
    assert "\n" not in message
    assert "run 20260301T020000Z-aaaa (holder host-a:101)" in message
    assert "expires 2026-03-01T02:30:00Z (in 0h25m)" in message
    assert "database fleetvision" in message and "fleetvision score --break-lease" in message


# ----------------------------------------------------------------------------------- tier 2: Delta
@pytest.fixture()
def leases(spark, database) -> str:
    tables.ensure_table(spark, database, tables.RUN_LEASES)
    return database


class FakeClock:
    """A clock the test moves."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _acquire(spark, db: str, run_id: str, clock: Callable[[], datetime], holder: str | None = None):
    return acquire_lease(spark, db, run_id, TTL, holder=holder or f"host-{run_id}:1", clock=clock)


@pytest.mark.spark
def test_take_over_condition_is_decide_in_sql(spark) -> None:
    """The MERGE condition and :func:`decide` agree on every kind of current row."""
    now = T0 + timedelta(minutes=10)
    cases = {
        "live": _lease("run-a"),
        "expires_now": _lease("run-a", at=now - TTL),
        "expired": _lease("run-a", at=now - 2 * TTL),
        "released": _lease("run-a", released=T0 + timedelta(minutes=1)),
        "ours": _lease("run-b"),
    }
    from fleetvision.scoring.lease import _lease_row

    for name, current in cases.items():
        t = _lease_row(spark, current).alias("t")
        s = _lease_row(spark, new_lease("scoring", "run-b", "host-b:1", now, TTL)).alias("s")
        in_sql = t.crossJoin(s).selectExpr(f"({TAKE_OVER_CONDITION}) AS take").first()["take"]
        assert in_sql == decide(current, "run-b", now).granted, name


@pytest.mark.spark
def test_a_second_acquire_is_denied_naming_the_holder(spark, leases) -> None:
    clock = FakeClock()
    first = _acquire(spark, leases, "run-a", clock, holder="node-7:4242")
    assert first.lease.run_id == "run-a" and first.lease.expires_at == T0 + TTL
    clock.now = T0 + timedelta(minutes=1)
    with pytest.raises(LeaseBusyError, match=r"run run-a \(holder node-7:4242\).*expires 2026-03-01T02:30:00Z") as e:
        _acquire(spark, leases, "run-b", clock)
    assert e.value.lease.run_id == "run-a" and e.value.database == leases
    rows = spark.table(tables.qualified(leases, tables.RUN_LEASES)).collect()
    assert [(r["run_id"], r["holder"], r["released_at"]) for r in rows] == [("run-a", "node-7:4242", None)]


@pytest.mark.spark
def test_after_a_release_the_next_run_acquires(spark, leases) -> None:
    clock = FakeClock()
    first = _acquire(spark, leases, "run-a", clock)
    clock.now = T0 + timedelta(minutes=2)
    assert first.release() is True
    assert read_lease(spark, leases).released_at == T0 + timedelta(minutes=2)
    second = _acquire(spark, leases, "run-b", clock)
    assert read_lease(spark, leases) == second.lease
    assert (second.lease.run_id, second.lease.released_at, second.lease.acquired_at) == ("run-b", None, clock.now)
    with pytest.raises(LeaseLostError, match=r"run-a lost the 'scoring' lease.*run run-b"):
        first.renew(force=True)


@pytest.mark.spark
def test_renewal_extends_the_lease_and_a_crashed_runs_lease_is_taken_over_when_it_expires(spark, leases) -> None:
    clock = FakeClock()
    crashed = _acquire(spark, leases, "run-a", clock)
    clock.now = T0 + timedelta(minutes=1)  # a renewal less than TTL/8 after the last is skipped
    assert crashed.renew() == crashed.lease and read_lease(spark, leases).expires_at == T0 + TTL
    clock.now = T0 + timedelta(minutes=20)
    assert crashed.renew().expires_at == T0 + timedelta(minutes=50)  # the renewal is what counts
    clock.now = T0 + timedelta(minutes=49)
    with pytest.raises(LeaseBusyError, match="expires 2026-03-01T02:50:00Z"):
        _acquire(spark, leases, "run-b", clock)
    # run-a "crashes": no release, no renewal; at its expiry the next run takes the lease over
    clock.now = T0 + timedelta(minutes=50)
    taker = _acquire(spark, leases, "run-b", clock)
    assert read_lease(spark, leases).run_id == "run-b" == taker.run_id
    # the crashed run, were it alive after all, finds out at its next stage start, and its release
    # does not free the new holder's lease
    with pytest.raises(LeaseLostError):
        crashed.renew()
    crashed.release()
    assert read_lease(spark, leases) == taker.lease


@pytest.mark.spark
def test_breaking_a_lease_by_hand_frees_it_and_the_holder_notices(spark, config, leases, capsys) -> None:
    held = _acquire(spark, leases, "run-a", FakeClock())
    assert break_lease(spark, leases).run_id == "run-a"
    assert break_lease(spark, leases) is None  # already released
    held.renew()  # not due yet: the holder notices at its next due renewal, or before its ledger row
    with pytest.raises(LeaseLostError, match="run-a lost the 'scoring' lease"):
        held.renew(force=True)
    _acquire(spark, leases, "run-b", FakeClock(T0 + timedelta(minutes=1)))
    assert config.tables.database == leases
    assert job.main(spark, config, argparse.Namespace(break_lease=True)) == 0
    assert f"released the scoring lease on database {leases}, held by run run-b" in capsys.readouterr().out
    assert read_lease(spark, leases).released_at is not None


def _race(n: int, attempt: Callable[[int], Any]) -> list[Any]:
    """Run ``attempt(i)`` for i < n in n threads released at the same moment; results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = attempt(i)
        except Exception as e:  # the test inspects it
            results[i] = e

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


@pytest.mark.spark
def test_two_acquirers_at_the_same_moment_exactly_one_wins(spark, leases, caplog, monkeypatch) -> None:
    from fleetvision.scoring import lease as lease_module

    # Both threads pass the free-lease pre-check, then wait for each other right before their MERGE:
    # both MERGEs read the same table version, so Delta's conflict check is what picks the winner.
    at_merge = threading.Barrier(2, timeout=120)
    lease_row = lease_module._lease_row

    def lease_row_in_step(spark_: Any, lease: Lease) -> Any:
        at_merge.wait()
        return lease_row(spark_, lease)

    monkeypatch.setattr(lease_module, "_lease_row", lease_row_in_step)
    caplog.set_level("INFO", logger="fleetvision.scoring.lease")
    for round_ in range(3):  # a fresh table (insert race), then twice over a released row (update race)
        at_merge.reset()
        run_ids = [f"run-{round_}-{i}" for i in range(2)]
        clock = FakeClock(T0 + timedelta(minutes=round_))
        results = _race(2, lambda i, ids=run_ids, c=clock: _acquire(spark, leases, ids[i], c))
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert isinstance(losers[0], LeaseBusyError), repr(losers[0])
        assert f"run {winners[0].run_id} " in str(losers[0])
        assert read_lease(spark, leases) == winners[0].lease
        winners[0].release()
    conflicts = [r.message for r in caplog.records if "commit conflict" in r.message]
    print(f"{len(conflicts)} Delta commit conflict(s) in 3 rounds: {conflicts}")
    assert conflicts, "no round had both MERGEs commit against the same version: the race was not tested"


# ------------------------------------------------------------------------- tier 2: two scoring runs
@pytest.fixture()
def scoring_config(config):
    scoring = config.scoring.model_copy(update={"max_decode_error_rate": 0.25, "min_scored_share": 0.75})
    return config.model_copy(update={"scoring": scoring})


def _options(inventory, tmp_path: Path, **kw: Any) -> RunOptions:
    loader = OracleModels(inventory.pixel_truth, load_taxonomy(), log_dir=str(tmp_path / "calls"))
    return RunOptions(
        mode=kw.pop("mode", "full"), model_set=StandInModelSet(), loader=loader, log_to_mlflow=False, **kw
    )


@pytest.mark.spark
def test_a_failed_run_releases_its_lease(spark, scoring_config, tmp_path) -> None:
    class BrokenModelSet:
        @property
        def model_set_id(self) -> str:
            raise RuntimeError("registry went away")

    db = scoring_config.tables.database
    inventory = write_inventory(spark, db, tmp_path / "photos", load_taxonomy(), n_listings=1, with_bad=False)
    options = _options(inventory, tmp_path)
    with pytest.raises(RuntimeError, match="registry went away"):
        run_scoring(spark, scoring_config, RunOptions(mode="full", model_set=BrokenModelSet(), loader=options.loader))
    lease = read_lease(spark, db)
    assert lease is not None and lease.released_at is not None


@pytest.mark.spark
def test_two_scoring_runs_started_together_one_runs_the_other_exits_busy(
    spark, scoring_config, tmp_path, monkeypatch, capsys
) -> None:
    """Two threads call the job on one session (two processes cannot share the embedded Derby metastore)."""
    assert ExitCode.BUSY == 5
    config, taxonomy = scoring_config, load_taxonomy()
    db = config.tables.database
    inventory = write_inventory(
        spark, db, tmp_path / "photos", taxonomy, n_listings=3, with_bad=False, size=config.models.input_size
    )
    monkeypatch.setattr(
        "fleetvision.scoring.job.RunOptions",
        lambda mode, log_to_mlflow: _options(inventory, tmp_path, mode=mode),
    )
    codes = _race(2, lambda i: job.main(spark, config, argparse.Namespace(mode="full", no_mlflow=True)))
    captured = capsys.readouterr()
    assert sorted(codes) == [0, ExitCode.BUSY], (codes, captured.err[-3000:])

    ledger = spark.table(tables.qualified(db, tables.SCORING_RUNS)).collect()
    assert len(ledger) == 1 and ledger[0]["status"] == "succeeded"
    winner = ledger[0]["run_id"]
    refusals = [line for line in captured.err.splitlines() if "another scoring run holds" in line]
    assert len(refusals) == 1 and f"run {winner} (holder " in refusals[0] and " expires 20" in refusals[0]
    assert f"FleetVision scoring run {winner}: OK" in captured.out
    lease = read_lease(spark, db)
    assert lease.run_id == winner and lease.released_at is not None  # released at the end of the run
    # the refused run wrote nothing and inferred nothing: every output row and commit is the winner's
    # one pass (a first run): each copy of the re-used photo scored once, by the winner alone
    assert inferred_rows(tmp_path / "calls") == len(inventory.truth_by_image)
    for spec in (*OUTPUTS, tables.SCORING_RUNS):
        df = spark.table(tables.qualified(db, spec))
        assert {r["run_id"] for r in df.select("run_id").distinct().collect()} == {winner}, spec.name
        history = spark.sql(f"DESCRIBE HISTORY {tables.qualified(db, spec)}").collect()
        assert {r["userMetadata"] for r in history if r["operation"] != "CREATE TABLE"} == {
            f"fleetvision run_id={winner}"
        }, spec.name
    together = {spec.name: table_rows(spark, tables.qualified(db, spec)) for spec in OUTPUTS}

    # ... and the tables equal those of one run alone over the same inventory
    alone_db = db + "_alone"
    spark.sql(f"CREATE DATABASE {alone_db} LOCATION '{tmp_path / (alone_db + '.db')}'")
    try:
        alone_config = config.model_copy(update={"tables": config.tables.model_copy(update={"database": alone_db})})
        alone_inv = write_inventory(
            spark, alone_db, tmp_path / "photos", taxonomy, n_listings=3, with_bad=False, size=config.models.input_size
        )
        run_scoring(spark, alone_config, _options(alone_inv, tmp_path / "alone"))
        alone = {spec.name: table_rows(spark, tables.qualified(alone_db, spec)) for spec in OUTPUTS}
    finally:
        spark.sql(f"DROP DATABASE IF EXISTS {alone_db} CASCADE")
    assert together == alone
