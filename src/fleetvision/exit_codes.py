"""The exit codes of ``fleetvision <job>`` and ``jobs/<name>.py`` (docs/runbook.md lists them too)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a job's exit status means to a scheduler.

    Attributes:
        OK: The job did its work (for ``score``: the run succeeded and moved the watermark).
        FAILED: The job ran and failed: a data-quality breach, a refused promotion, a run that
            broke part-way.
        USAGE: Bad usage, configuration or input table contract; nothing was done.
        NO_DELTA: Spark's driver cannot load Delta Lake's classes (spark-submit without
            ``--packages``); nothing was done, the one-line message names the flag to add.
        BUSY: Another run holds the lease the job needs (``score``: one scoring run per database at
            a time); nothing was done, the one-line message names the holder.
    """

    OK = 0
    FAILED = 1
    USAGE = 2
    NO_DELTA = 4
    BUSY = 5
