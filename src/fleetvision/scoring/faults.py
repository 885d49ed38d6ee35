"""Fault injection for the recovery tests: stop a run on purpose at a named point.

``FLEETVISION_FAIL_AT=<point>`` makes the run raise :class:`InjectedFailureError` there, as if the
process had been killed at that moment; the tests then check that a rerun leaves the tables as one
clean run would. ``udf_first_attempt`` is read by the scoring UDF (:mod:`fleetvision.scoring.udf`):
every scoring task fails once and Spark retries it.
"""

from __future__ import annotations

from collections.abc import Mapping

FAIL_AT_ENV = "FLEETVISION_FAIL_AT"
"""Failure injection for recovery tests; ``udf_first_attempt`` makes every scoring task fail once."""
FAIL_POINTS = ("after_cache_merge", "after_tags_merge", "after_listings_merge", "before_ledger", "udf_first_attempt")
"""Values of ``FLEETVISION_FAIL_AT`` (recovery tests): the run raises :class:`InjectedFailureError` there."""


class InjectedFailureError(RuntimeError):
    """Raised at a ``FLEETVISION_FAIL_AT`` point, as if the process had been killed there."""


def fail_point(name: str, environ: Mapping[str, str]) -> None:
    """Raise :class:`InjectedFailureError` if ``environ`` asks the run to stop at ``name``.

    Raises:
        ValueError: ``name`` is not one of :data:`FAIL_POINTS`.
        InjectedFailureError: ``environ[FAIL_AT_ENV] == name``.
    """
    if name not in FAIL_POINTS:
        raise ValueError(f"unknown fail point {name!r}; expected one of {FAIL_POINTS}")
    if environ.get(FAIL_AT_ENV) == name:
        raise InjectedFailureError(f"{FAIL_AT_ENV}={name}: run stopped on purpose at {name}")
