"""Stage timing for a scoring run, with the run lease renewed at each stage start."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleetvision.scoring.lease import HeldLease


class Stopwatch:
    """Times each stage; at each stage start, renews the run's lease when due (which checks it is still ours).

    A stage entered twice adds up. :attr:`stage_seconds` is a copy, in the order stages first ran.
    """

    def __init__(self, lease: HeldLease | None = None) -> None:
        self.lease = lease
        self._seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name``; renew the lease first (raises ``LeaseLostError`` if lost)."""
        start = time.perf_counter()
        try:
            if self.lease is not None:
                self.lease.renew()
            yield
        finally:
            self._seconds[name] = round(self._seconds.get(name, 0.0) + time.perf_counter() - start, 3)

    @property
    def stage_seconds(self) -> dict[str, float]:
        return dict(self._seconds)
