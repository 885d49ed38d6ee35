"""``fleetvision score``: the nightly scoring job (thin: arguments in, one run, summary out).

    fleetvision score --mode full|incremental [--no-mlflow] [--conf conf/<env>.yaml] [--set k=v ...]
    fleetvision score --break-lease      # release a dead run's lease by hand, then exit

Exit codes: 0 the run succeeded and moved the watermark; 1 it ran but breached a data-quality check
(the watermark did not move) or failed part-way; 2 bad arguments, configuration or input tables
(nothing was done); 5 another scoring run holds the database's lease (nothing was done; the one-line
message names the holder, its run id and when its lease expires). See ``docs/runbook.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import SparkSession

from fleetvision.config import Config
from fleetvision.exit_codes import ExitCode
from fleetvision.scoring.lease import LeaseBusyError
from fleetvision.scoring.run import RunOptions, run_scoring

NEEDS_SPARK = True
logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's own flags (the CLI adds ``--conf``, ``--set`` and ``--log-level``)."""
    parser.add_argument(
        "--mode",
        choices=("full", "incremental"),
        default=None,
        help="full: every image; incremental: the change feed since the last successful run "
        "(default: scoring.mode from the config)",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="do not record an MLflow run")
    parser.add_argument(
        "--break-lease",
        action="store_true",
        help="release the scoring lease whoever holds it (only when its run is known dead), then exit",
    )


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run one scoring pass and print its one-screen summary.

    Returns:
        The exit code (see the module docstring).
    """
    if spark is None:
        raise ValueError("fleetvision score needs a SparkSession")
    if getattr(args, "break_lease", False):
        return break_scoring_lease(spark, config)
    mode = getattr(args, "mode", None) or config.scoring.mode
    options = RunOptions(mode=mode, log_to_mlflow=not getattr(args, "no_mlflow", False))
    try:
        summary = run_scoring(spark, config, options)
    except LeaseBusyError as e:  # another run is working on this database: nothing was done
        print(f"fleetvision score: {e}", file=sys.stderr)
        return ExitCode.BUSY
    except ValueError as e:  # bad mode or scoring rules: nothing was done
        print(f"fleetvision score: {e}", file=sys.stderr)
        return ExitCode.USAGE
    except Exception:
        logger.exception("scoring run failed; the watermark was not moved, rerun to finish the work")
        return ExitCode.FAILED
    print(summary.render())
    return summary.exit_code


def break_scoring_lease(spark: SparkSession, config: Config) -> int:
    """``--break-lease``: release the database's scoring lease whoever holds it, and say whose it was.

    Returns:
        0 (also when no run held the lease).
    """
    from fleetvision.scoring.lease import break_lease

    db = config.tables.database
    broken = break_lease(spark, db)
    if broken is None:
        print(f"fleetvision score: no run holds the scoring lease on database {db}; nothing to release")
    else:
        print(f"fleetvision score: released the scoring lease on database {db}, held by {broken.describe()}")
    return ExitCode.OK
