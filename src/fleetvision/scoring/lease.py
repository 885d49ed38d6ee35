"""The run lease: at most one scoring run per database at a time.

A lease is one row of the Delta table ``run_leases``, keyed by ``lease_name`` (``scoring``). A run
takes it with one MERGE before any work: insert when there is no row, take it over when the row was
released or has expired, otherwise leave the row alone; then it reads the row back to see who holds
it. Delta's optimistic concurrency does the locking: of two MERGEs that read the same version, one
commits and the other fails with a conflict (``ConcurrentAppendException``, ...), re-reads and finds
the winner. The holder renews the lease (moves ``expires_at`` on and checks the lease is still its
own) at each stage start where a renewal is due (:func:`renewal_due`: an eighth of the TTL since the
last one) and, always, before its ledger row; it releases the lease when the run ends, failed or not.
A crashed run's lease expires ``scoring.lease_ttl_minutes`` after its last renewal, and the next run
takes it over.

This module is the lease's Delta side (read, MERGE, UPDATE, through :mod:`fleetvision.tables`). The
decision itself is pure and lives in :mod:`fleetvision.scoring.lease_decision` (:func:`decide`; no
Spark; re-exported here): the MERGE's condition (:data:`TAKE_OVER_CONDITION`) says the same thing in
SQL, and the tests hold them to each other.

Operating limits:
    * A stage longer than the TTL lets the lease expire while the run is still working; another run
      may then take it over, and the first run stops at its next renewal (:class:`LeaseLostError`),
      before its ledger row at the latest.
      Keep the TTL above the longest stage (``infer`` of a full run).
    * Expiry compares timestamps written by different hosts' clocks: clock skew between the hosts
      that run the job shortens or lengthens a lease by the skew.
    * Lease commits carry no ``userMetadata``: that is a session-wide setting, and the row itself
      names its run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fleetvision import delta_writes, tables
from fleetvision.scoring.lease_decision import (
    RENEW_FRACTION,
    SCORING_LEASE,
    TAKE_OVER_CONDITION,
    Clock,
    Lease,
    LeaseBusyError,
    LeaseLostError,
    Verdict,
    as_utc,
    busy_message,
    decide,
    default_holder,
    format_utc,
    new_lease,
    renewal_due,
    renewed,
    utc_now,
)
from fleetvision.tables import RUN_LEASES, qualified

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

logger = logging.getLogger(__name__)

__all__ = [
    "RENEW_FRACTION",
    "SCORING_LEASE",
    "TAKE_OVER_CONDITION",
    "Clock",
    "HeldLease",
    "Lease",
    "LeaseBusyError",
    "LeaseLostError",
    "Verdict",
    "acquire_lease",
    "break_lease",
    "busy_message",
    "decide",
    "default_holder",
    "ensure_lease_table",
    "is_commit_conflict",
    "new_lease",
    "read_lease",
    "renewal_due",
    "renewed",
    "utc_now",
]


# ----------------------------------------------------------------------------------------- delta
_CONFLICT_NAMES = (
    "DeltaConcurrentModificationException",
    "ConcurrentWriteException",
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
)
"""Delta's commit conflicts (``delta.exceptions``; ``io.delta.exceptions`` in the JVM)."""


def is_commit_conflict(error: BaseException) -> bool:
    """Whether ``error`` is a Delta commit conflict: another transaction committed first.

    PySpark raises the JVM's exception as :mod:`delta.exceptions`' class only once
    ``delta.exceptions.captured`` has patched its converter (imported here); otherwise it arrives as
    a ``Py4JJavaError`` and is recognised by the JVM class's name.
    """
    import delta.exceptions.captured  # noqa: F401 - registers the conversion for later errors
    from delta import exceptions as dx

    if isinstance(error, tuple(getattr(dx, name) for name in _CONFLICT_NAMES)):
        return True
    java = getattr(error, "java_exception", None)
    if java is None:
        return False
    try:
        name = str(java.getClass().getName())
    except Exception:  # a broken gateway: not a conflict we can retry
        return False
    return name.startswith("io.delta.exceptions.") and name.rsplit(".", 1)[1] in _CONFLICT_NAMES


def _error_name(error: BaseException) -> str:
    java = getattr(error, "java_exception", None)
    return str(java.getClass().getSimpleName()) if java is not None else type(error).__name__


def _micros(value: datetime) -> int:
    delta = as_utc(value, "timestamp") - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _ts(value: datetime | None) -> Column:
    """A timestamp literal for an instant, whatever this Python process's local time zone is."""
    from pyspark.sql import functions as F

    if value is None:
        return F.lit(None).cast("timestamp")
    return F.timestamp_micros(F.lit(_micros(value)))


def _from_micros(value: int | None) -> datetime | None:
    return None if value is None else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value))


def _lease_row(spark: SparkSession, lease: Lease) -> DataFrame:
    from pyspark.sql import functions as F

    return spark.range(1).select(
        F.lit(lease.lease_name).alias("lease_name"),
        F.lit(lease.run_id).alias("run_id"),
        F.lit(lease.holder).alias("holder"),
        _ts(lease.acquired_at).alias("acquired_at"),
        _ts(lease.renewed_at).alias("renewed_at"),
        _ts(lease.expires_at).alias("expires_at"),
        _ts(lease.released_at).alias("released_at"),
    )


_CONCURRENT_CREATE = ("DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION", "TABLE_OR_VIEW_ALREADY_EXISTS", "already exists")
"""What creating a table says when another run is creating it at the same moment."""


def ensure_lease_table(spark: SparkSession, database: str, attempts: int = 10) -> None:
    """Create ``run_leases`` if missing (:func:`fleetvision.tables.ensure_table`), tolerating a concurrent creator.

    Two first runs on a new database both find no table and both create it: one commits, the other
    fails ("location is not empty", "already exists", or a commit conflict) and, after a short wait,
    finds the winner's table.
    """
    for attempt in range(1, attempts + 1):
        try:
            tables.ensure_table(spark, database, RUN_LEASES)
            return
        except Exception as e:
            raced = is_commit_conflict(e) or any(tag in str(e) for tag in _CONCURRENT_CREATE)
            if attempt == attempts or not raced:
                raise
            logger.info("table %s is being created by another run; checking again", qualified(database, RUN_LEASES))
            time.sleep(0.2 * attempt)


def read_lease(spark: SparkSession, database: str, lease_name: str = SCORING_LEASE) -> Lease | None:
    """The current ``run_leases`` row for ``lease_name`` (latest table version), or None."""
    from pyspark.sql import functions as F

    name = qualified(database, RUN_LEASES)
    if not spark.catalog.tableExists(name):
        return None
    times = ("acquired_at", "renewed_at", "expires_at", "released_at")
    row = (
        spark.table(name)
        .filter(F.col("lease_name") == lease_name)
        .select("lease_name", "run_id", "holder", *[F.unix_micros(c).alias(c) for c in times])
        .first()
    )
    if row is None:
        return None
    return Lease(
        row["lease_name"],
        row["run_id"],
        row["holder"],
        *[_from_micros(row[c]) for c in times],  # type: ignore[arg-type]
    )


def _update_own(
    spark: SparkSession, database: str, lease: Lease, assignments: dict[str, datetime], attempts: int
) -> None:
    """UPDATE the row of ``lease`` if its run still holds it, retrying on commit conflicts."""
    from pyspark.sql import functions as F

    held = (F.col("lease_name") == lease.lease_name) & (F.col("run_id") == lease.run_id)
    held = held & F.col("released_at").isNull()
    values = {k: _ts(v) for k, v in assignments.items()}
    for attempt in range(1, attempts + 1):
        try:
            delta_writes.update_where(spark, database, RUN_LEASES, held, values)
            return
        except Exception as e:
            if attempt == attempts or not is_commit_conflict(e):
                raise
            logger.debug("lease %s: conflict on attempt %d (%s), retrying", lease.lease_name, attempt, _error_name(e))
            time.sleep(0.05 * attempt)


@dataclass
class HeldLease:
    """A lease this run holds: :meth:`renew` at each stage start, :meth:`release` when the run ends.

    A renewal costs a Delta UPDATE and a read (about a second locally); one due less than
    ``ttl / RENEW_FRACTION`` after the last is skipped unless forced (:func:`renewal_due`).
    """

    spark: SparkSession
    database: str
    lease: Lease
    ttl: timedelta
    clock: Clock = utc_now
    attempts: int = 8

    @property
    def run_id(self) -> str:
        return self.lease.run_id

    def renew(self, *, force: bool = False) -> Lease:
        """Move ``expires_at`` to now + TTL and check the lease is still this run's.

        Args:
            force: Renew and check even if the last renewal is recent (before the ledger row).

        Returns:
            The lease as renewed (or as it was, when the renewal was not due).

        Raises:
            LeaseLostError: Another run holds it now, or it was released (broken by hand).
        """
        now = as_utc(self.clock(), "clock()")
        if not force and not renewal_due(self.lease, now, self.ttl):
            return self.lease
        target = renewed(self.lease, now, self.ttl)
        _update_own(
            self.spark, self.database, self.lease, {"renewed_at": now, "expires_at": target.expires_at}, self.attempts
        )
        current = read_lease(self.spark, self.database, self.lease.lease_name)
        if current is None or current.run_id != self.run_id or current.released_at is not None:
            holder = current.describe() if current is not None else "nobody (the row is gone)"
            raise LeaseLostError(
                f"scoring run {self.run_id} lost the {self.lease.lease_name!r} lease on database {self.database}; "
                f"it is now {holder}. The run stops here; its merged work is kept (reruns are idempotent)"
            )
        self.lease = current
        return current

    def release(self) -> bool:
        """Release the lease (if this run still holds it). Never raises: the TTL is the backstop.

        Returns:
            True if the release committed; False if it failed (logged; the lease then expires at
            ``expires_at``).
        """
        now = self.clock()
        try:
            _update_own(self.spark, self.database, self.lease, {"released_at": now}, self.attempts)
        except Exception as e:  # a failed release must not hide why the run ended
            logger.warning(
                "could not release the %r lease of run %s (%s: %s); it expires at %s",
                self.lease.lease_name,
                self.run_id,
                type(e).__name__,
                e,
                format_utc(self.lease.expires_at),
            )
            return False
        logger.info("released the %r lease of run %s", self.lease.lease_name, self.run_id)
        return True


def acquire_lease(
    spark: SparkSession,
    database: str,
    run_id: str,
    ttl: timedelta,
    *,
    lease_name: str = SCORING_LEASE,
    holder: str | None = None,
    clock: Clock = utc_now,
    attempts: int = 8,
) -> HeldLease:
    """Take the lease with one MERGE, or raise naming the run that holds it.

    Creates ``run_leases`` first if it is missing (:func:`ensure_lease_table`). A commit conflict with
    another acquirer (or a renewal, a release) is not an error: the row is read back and decided on
    again, at most ``attempts`` times.

    Args:
        spark: The session.
        database: The database whose runs the lease serialises.
        run_id: This run.
        ttl: How long the lease lasts without a renewal.
        lease_name: What is leased.
        holder: ``host:pid`` to record (default: this process).
        clock: The current time, timezone-aware (tests move it).
        attempts: MERGEs tried before giving up on conflicts.

    Returns:
        The held lease.

    Raises:
        LeaseBusyError: Another run holds the lease and it has not expired.
        RuntimeError: Every attempt conflicted.
    """
    holder = holder or default_holder()
    ensure_lease_table(spark, database)
    for attempt in range(1, attempts + 1):
        now = as_utc(clock(), "clock()")
        # A lease plainly held by another run is refused without a write; the MERGE decides the rest.
        current = read_lease(spark, database, lease_name)
        if not decide(current, run_id, now).granted:
            raise LeaseBusyError(current, database, now)  # type: ignore[arg-type]
        wanted = new_lease(lease_name, run_id, holder, now, ttl)
        try:
            # insert when there is no row; take it over when TAKE_OVER_CONDITION holds; else leave it
            delta_writes.merge_by_key(
                spark, database, RUN_LEASES, _lease_row(spark, wanted), update=TAKE_OVER_CONDITION
            )
        except Exception as e:
            if not is_commit_conflict(e):
                raise
            logger.info("lease %s: commit conflict (%s); reading who holds it", lease_name, _error_name(e))
        current = read_lease(spark, database, lease_name)
        if current is not None and current.run_id == run_id and current.released_at is None:
            until = format_utc(current.expires_at)
            logger.info("scoring run %s holds the %r lease until %s", run_id, lease_name, until)
            return HeldLease(spark, database, current, ttl, clock, attempts)
        if not decide(current, run_id, now).granted:
            raise LeaseBusyError(current, database, now)  # type: ignore[arg-type]
        time.sleep(0.05 * attempt)  # freed meanwhile (a release raced our MERGE): try again
    raise RuntimeError(f"could not take the {lease_name!r} lease on database {database}: {attempts} commit conflicts")


def break_lease(
    spark: SparkSession, database: str, lease_name: str = SCORING_LEASE, clock: Clock = utc_now
) -> Lease | None:
    """Release the lease by hand, whoever holds it (an operator's command, for a run known dead).

    Returns:
        The row as it was before (None when there was no lease, or it was already released).
    """
    from pyspark.sql import functions as F

    ensure_lease_table(spark, database)
    current = read_lease(spark, database, lease_name)
    if current is None or current.released_at is not None:
        return None
    delta_writes.update_where(
        spark,
        database,
        RUN_LEASES,
        (F.col("lease_name") == lease_name) & F.col("released_at").isNull(),
        {"released_at": _ts(clock())},
    )
    logger.warning("broke the %r lease on database %s: %s", lease_name, database, current.describe())
    return current
