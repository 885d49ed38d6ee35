"""The run lease's rules, as pure functions: who may hold the lease, and whether it has expired.

No Spark here. :mod:`fleetvision.scoring.lease` keeps the lease in the Delta table ``run_leases`` and
asks these functions what to do: :func:`decide` says whether a run may take the lease given the
current row, and :data:`TAKE_OVER_CONDITION` says the same in SQL for the MERGE (the tests hold them to
each other); :func:`renewal_due` says when a stage start renews it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

SCORING_LEASE = "scoring"
"""The ``lease_name`` of the nightly scoring job."""
Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware (UTC)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


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
                as_utc(value, f"Lease.{name}")

    def is_free(self, now: datetime) -> bool:
        """Released, or expired at ``now``."""
        return self.released_at is not None or self.expires_at <= as_utc(now, "now")

    def describe(self) -> str:
        """``run <id> (holder <host:pid>), acquired <t>, expires <t>`` on one line."""
        if self.released_at is not None:
            state = f"released {format_utc(self.released_at)}"
        else:
            state = f"expires {format_utc(self.expires_at)}"
        return f"run {self.run_id} (holder {self.holder}), acquired {format_utc(self.acquired_at)}, {state}"


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
    as_utc(now, "now")
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
    now = as_utc(now, "now")
    return Lease(lease_name, run_id, holder, now, now, now + ttl)


def renewed(lease: Lease, now: datetime, ttl: timedelta) -> Lease:
    """``lease`` renewed at ``now``: expires ``now + ttl``.

    Raises:
        ValueError: ``ttl`` is not positive or ``now`` is naive.
    """
    if ttl <= timedelta(0):
        raise ValueError(f"lease ttl must be positive, got {ttl}")
    now = as_utc(now, "now")
    return replace(lease, renewed_at=now, expires_at=now + ttl)


RENEW_FRACTION = 8
"""A renewal is due once ``ttl / RENEW_FRACTION`` has passed since the last one."""


def renewal_due(lease: Lease, now: datetime, ttl: timedelta) -> bool:
    """Whether a stage start should renew ``lease`` (write and check) or may skip it.

    Skipping a renewal less than ``ttl / RENEW_FRACTION`` after the last keeps the lease at least
    ``ttl * (1 - 1 / RENEW_FRACTION)`` ahead of expiry at every stage start, at the cost of noticing
    a lease broken by hand that much later (the ledger row's forced renewal still does).
    """
    return as_utc(now, "now") - lease.renewed_at >= ttl / RENEW_FRACTION


def busy_message(current: Lease, database: str, now: datetime) -> str:
    """The one line a refused run prints: who holds the lease, its run id, and when it expires."""
    left = current.expires_at - as_utc(now, "now")
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


def as_utc(value: datetime, what: str) -> datetime:
    """``value`` in UTC.

    Raises:
        TypeError: ``value`` is not a datetime.
        ValueError: ``value`` is naive (``what`` names it in the message).
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def format_utc(value: datetime | None) -> str:
    """``2026-03-01T02:30:00Z`` (``-`` for None)."""
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
