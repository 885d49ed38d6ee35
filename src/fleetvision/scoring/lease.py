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

The decision itself is pure (:func:`decide`; no Spark): the MERGE's condition
(:data:`TAKE_OVER_CONDITION`) says the same thing in SQL, and the tests hold them to each other.

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
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from fleetvision import tables
from fleetvision.tables import RUN_LEASES, qualified

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

logger = logging.getLogger(__name__)

SCORING_LEASE = "scoring"
"""The ``lease_name`` of the nightly scoring job."""
Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware (UTC)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------- pure
@dataclass(frozen=True)
class Lease:
    """One ``run_leases`` row. Every timestamp is timezone-aware (UTC).

    Attributes:
        lease_name: What is leased (``scoring``).
        run_id: The run that holds (or last held) it.
        holder: ``host:pid`` of that run's driver, for an operator to check whether it is alive.
        acquired_at: When the run took it.
        renewed_at: The run's last renewal.
        expires_at: When another run may take it over without a release.
        released_at: When it was released (by its run, or broken by hand); None while held.
    """

    lease_name: str
    run_id: str
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    released_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("acquired_at", "renewed_at", "expires_at", "released_at"):
            value = getattr(self, name)
            if value is not None:
                _check_utc(value, f"Lease.{name}")

    def is_free(self, now: datetime) -> bool:
        """Released, or expired at ``now``."""
        return self.released_at is not None or self.expires_at <= _check_utc(now, "now")

    def describe(self) -> str:
        """``run <id> (holder <host:pid>), acquired <t>, expires <t>`` on one line."""
        state = f"released {_iso(self.released_at)}" if self.released_at else f"expires {_iso(self.expires_at)}"
        return f"run {self.run_id} (holder {self.holder}), acquired {_iso(self.acquired_at)}, {state}"


class Verdict(StrEnum):
    """What an acquirer may do with the lease, given the current row."""

    ACQUIRE = "acquire"  # no row yet
    TAKE_OVER_RELEASED = "take_over_released"
    TAKE_OVER_EXPIRED = "take_over_expired"  # its run crashed (or outlived the TTL without renewing)
    HELD = "held"  # already ours: a repeated acquire renews it
    DENY = "deny"  # another run holds it

    @property
    def granted(self) -> bool:
        return self is not Verdict.DENY


TAKE_OVER_CONDITION = "t.released_at IS NOT NULL OR t.run_id = s.run_id OR t.expires_at <= s.acquired_at"
"""The MERGE's matched condition (``t``: the current row, ``s``: the new lease): :func:`decide` in SQL."""


def decide(current: Lease | None, run_id: str, now: datetime) -> Verdict:
    """Whether run ``run_id`` may take the lease at ``now``, given the current row.

    Args:
        current: The lease row, or None when there is none.
        run_id: The acquiring run.
        now: The acquirer's time, timezone-aware.

    Returns:
        ``ACQUIRE`` (no row), ``TAKE_OVER_RELEASED``, ``HELD`` (ours, not released),
        ``TAKE_OVER_EXPIRED`` (``expires_at <= now``) or ``DENY``, checked in that order.

    Raises:
        ValueError: ``run_id`` is empty or ``now`` is naive.
    """
    if not run_id:
        raise ValueError("run_id must be a non-empty string")
    _check_utc(now, "now")
    if current is None:
        return Verdict.ACQUIRE
    if current.released_at is not None:
        return Verdict.TAKE_OVER_RELEASED
    if current.run_id == run_id:
        return Verdict.HELD
    if current.expires_at <= now:
        return Verdict.TAKE_OVER_EXPIRED
    return Verdict.DENY


def new_lease(lease_name: str, run_id: str, holder: str, now: datetime, ttl: timedelta) -> Lease:
    """The row an acquirer writes: taken and renewed ``now``, expiring ``now + ttl``.

    Raises:
        ValueError: ``ttl`` is not positive, a name is empty, or ``now`` is naive.
    """
    if ttl <= timedelta(0):
        raise ValueError(f"lease ttl must be positive, got {ttl}")
    if not lease_name or not run_id or not holder:
        raise ValueError(f"lease_name, run_id and holder must be non-empty: {lease_name!r}, {run_id!r}, {holder!r}")
    now = _check_utc(now, "now")
    return Lease(lease_name, run_id, holder, now, now, now + ttl)


def renewed(lease: Lease, now: datetime, ttl: timedelta) -> Lease:
    """``lease`` renewed at ``now``: expires ``now + ttl``.

    Raises:
        ValueError: ``ttl`` is not positive or ``now`` is naive.
    """
    if ttl <= timedelta(0):
        raise ValueError(f"lease ttl must be positive, got {ttl}")
    now = _check_utc(now, "now")
    return replace(lease, renewed_at=now, expires_at=now + ttl)


RENEW_FRACTION = 8
"""A renewal is due once ``ttl / RENEW_FRACTION`` has passed since the last one."""


def renewal_due(lease: Lease, now: datetime, ttl: timedelta) -> bool:
    """Whether a stage start should renew ``lease`` (write and check) or may skip it.

    Skipping a renewal less than ``ttl / RENEW_FRACTION`` after the last keeps the lease at least
    ``ttl * (1 - 1 / RENEW_FRACTION)`` ahead of expiry at every stage start, at the cost of noticing
    a lease broken by hand that much later (the ledger row's forced renewal still does).
    """
    return _check_utc(now, "now") - lease.renewed_at >= ttl / RENEW_FRACTION


def busy_message(current: Lease, database: str, now: datetime) -> str:
    """The one line a refused run prints: who holds the lease, its run id, and when it expires."""
    left = current.expires_at - _check_utc(now, "now")
    minutes = max(0, int(left.total_seconds() // 60))
    return (
        f"another scoring run holds the {current.lease_name!r} lease on database {database}: "
        f"{current.describe()} (in {minutes // 60}h{minutes % 60:02d}m); nothing was done. "
        f"Wait for it, or, if that process is dead, release the lease with "
        f"`fleetvision score --break-lease` (docs/runbook.md)"
    )


def default_holder() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _check_utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------- errors
class LeaseBusyError(RuntimeError):
    """Another run holds the lease; this run did nothing.

    Attributes:
        lease: The holder's row.
        database: Where the lease is.
    """

    def __init__(self, lease: Lease, database: str, now: datetime) -> None:
        super().__init__(busy_message(lease, database, now))
        self.lease = lease
        self.database = database


class LeaseLostError(RuntimeError):
    """A running run no longer holds its lease (it expired and was taken over, or was broken by hand)."""


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
    delta = _check_utc(value, "timestamp") - datetime(1970, 1, 1, tzinfo=UTC)
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
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    held = (F.col("lease_name") == lease.lease_name) & (F.col("run_id") == lease.run_id)
    held = held & F.col("released_at").isNull()
    values = {k: _ts(v) for k, v in assignments.items()}
    for attempt in range(1, attempts + 1):
        try:
            DeltaTable.forName(spark, qualified(database, RUN_LEASES)).update(held, values)
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
        now = _check_utc(self.clock(), "clock()")
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
                _iso(self.lease.expires_at),
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
    from delta.tables import DeltaTable

    holder = holder or default_holder()
    table = qualified(database, RUN_LEASES)
    ensure_lease_table(spark, database)
    for attempt in range(1, attempts + 1):
        now = _check_utc(clock(), "clock()")
        # A lease plainly held by another run is refused without a write; the MERGE decides the rest.
        current = read_lease(spark, database, lease_name)
        if not decide(current, run_id, now).granted:
            raise LeaseBusyError(current, database, now)  # type: ignore[arg-type]
        wanted = new_lease(lease_name, run_id, holder, now, ttl)
        try:
            (
                DeltaTable.forName(spark, table)
                .alias("t")
                .merge(_lease_row(spark, wanted).alias("s"), "t.lease_name = s.lease_name")
                .whenMatchedUpdateAll(condition=TAKE_OVER_CONDITION)
                .whenNotMatchedInsertAll()
                .execute()
            )
        except Exception as e:
            if not is_commit_conflict(e):
                raise
            logger.info("lease %s: commit conflict (%s); reading who holds it", lease_name, _error_name(e))
        current = read_lease(spark, database, lease_name)
        if current is not None and current.run_id == run_id and current.released_at is None:
            logger.info("scoring run %s holds the %r lease until %s", run_id, lease_name, _iso(current.expires_at))
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
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    ensure_lease_table(spark, database)
    current = read_lease(spark, database, lease_name)
    if current is None or current.released_at is not None:
        return None
    DeltaTable.forName(spark, qualified(database, RUN_LEASES)).update(
        (F.col("lease_name") == lease_name) & F.col("released_at").isNull(), {"released_at": _ts(clock())}
    )
    logger.warning("broke the %r lease on database %s: %s", lease_name, database, current.describe())
    return current
