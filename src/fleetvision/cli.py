"""``fleetvision <job>``: the command line, and the one place jobs get their config and session.

Each job lives in its own module, which defines ``NEEDS_SPARK`` (or ``needs_spark(args) -> bool`` where
it depends on the arguments), ``add_arguments(parser)`` and ``main(spark, config, args) -> int``. This
module parses the common flags (``--conf``, ``--set``, ``--verbose``), sets up logging, loads the frozen
config, builds the SparkSession once if the job needs one, and calls ``main``.
``jobs/<name>.py`` are the spark-submit entry points: they only call :func:`main` here.

Logging: by default FleetVision's own INFO lines (stages, progress, summaries), everyone's warnings
and errors, and none of the start-up chatter of Spark, Ivy, TensorFlow and MLflow (docs/runbook.md,
*Logs*). ``--verbose`` brings all of it back and FleetVision's DEBUG lines with it.

Exit codes: :class:`fleetvision.exit_codes.ExitCode` (0 success; 1 the job ran and failed; 2 bad usage,
configuration or input table contract; 4 Spark's driver cannot load Delta Lake's classes; 5 another run
holds the lease the job needs).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from fleetvision import __version__
from fleetvision.exit_codes import ExitCode


@dataclass(frozen=True)
class JobEntry:
    """A job of the command line: the module that runs it and its one-line summary."""

    module: str
    summary: str


JOBS: dict[str, JobEntry] = {
    "generate": JobEntry("fleetvision.synth.job", "make a synthetic inventory, a day of change, training sets"),
    "train": JobEntry("fleetvision.models.train_job", "train a model (angle|banner|plate|body|all) and log it"),
    "evaluate": JobEntry("fleetvision.models.evaluate_job", "score a model version on the frozen evaluation set"),
    "soup": JobEntry("fleetvision.models.soup_job", "average the heads of several seeds of one recipe into one"),
    "group-head": JobEntry("fleetvision.models.group_head_job", "join a view head and a shot-group head into one"),
    "promote": JobEntry("fleetvision.models.promote_job", "move the champion alias to a better candidate"),
    "import-labels": JobEntry("fleetvision.labels_import", "turn your own labelled photos into a training table"),
    "suggest-labels": JobEntry("fleetvision.suggest_job", "export the photos most worth labelling next (CSV)"),
    "score": JobEntry("fleetvision.scoring.job", "the nightly job: tags, completeness scores, hero picks"),
    "report": JobEntry("fleetvision.scoring.report", "render a scoring run as one self-contained HTML page"),
}

logger = logging.getLogger("fleetvision")

# Python loggers of libraries that log routine INFO lines (connections, migrations, plugin loading):
# WARNING and above unless --verbose.
QUIET_LIBRARIES = (
    "py4j",
    "absl",
    "tensorflow",
    "keras",
    "alembic",
    "urllib3",
    "mlflow",
    "matplotlib",
    "PIL",
    "botocore",
    "s3transfer",
    "petastorm",
    "numexpr",
)
VERBOSE_FLAGS = ("-v", "--verbose")


def _top_parser() -> argparse.ArgumentParser:
    jobs = "\n".join(f"  {name:<14} {entry.summary}" for name, entry in JOBS.items())
    parser = argparse.ArgumentParser(
        prog="fleetvision",
        description="FleetVision: car-listing photo understanding on Spark.",
        epilog=f"jobs:\n{jobs}\n\nRun 'fleetvision <job> --help' for a job's own options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fleetvision {__version__}")
    parser.add_argument("job", choices=sorted(JOBS), metavar="job", help="one of: " + ", ".join(JOBS))
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def common_words(args: argparse.Namespace) -> list[str]:
    """The common arguments as they were given (``--conf``, then each ``--set``): for a job that records the
    command line that reproduces it."""
    words = ["--conf", str(args.conf)] if getattr(args, "conf", None) else []
    for item in getattr(args, "overrides", None) or []:
        words += ["--set", item]
    return words


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conf",
        default=os.environ.get("FLEETVISION_CONF"),
        help="config file (default: $FLEETVISION_CONF or conf/local.yaml)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value (repeatable); env FLEETVISION__SECTION__KEY also works",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show Spark, Ivy, TensorFlow and MLflow start-up logs, and FleetVision's DEBUG lines",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="FleetVision's own log level (default INFO; DEBUG with --verbose)",
    )


def quiet_environment(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Environment that quiets libraries read when they are imported; a value already set wins.

    Set before a job module imports TensorFlow or MLflow. Spark's Python workers inherit it in local
    mode; :func:`fleetvision.spark.spark_conf` passes TensorFlow's to executors.
    """
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ INFO/WARNING/ERROR, e.g. the CUDA probe on CPUs
    environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def configure_logging(verbose: bool, level: str | None = None) -> None:
    """FleetVision's lines at ``level`` (INFO; DEBUG when verbose), libraries' at WARNING unless verbose."""
    own = getattr(logging, level or ("DEBUG" if verbose else "INFO"))
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    logger.setLevel(own)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


def _load_job(name: str) -> ModuleType:
    return importlib.import_module(JOBS[name].module)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one job; returns its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return ExitCode.OK if argv else ExitCode.USAGE
    ns = top.parse_args(argv[:1])
    job_name, rest = ns.job, argv[1:]
    verbose = any(flag in rest for flag in VERBOSE_FLAGS)
    if verbose:
        module = _load_job(job_name)
    else:
        from fleetvision.log_noise import native_startup_filtered

        quiet_environment()  # before the job module imports TensorFlow
        with native_startup_filtered():
            module = _load_job(job_name)

    parser = argparse.ArgumentParser(prog=f"fleetvision {job_name}", description=JOBS[job_name].summary)
    add_common_arguments(parser)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    configure_logging(args.verbose, args.log_level)

    from fleetvision.config import ConfigError, load_config
    from fleetvision.tables import TableContractError

    try:
        config = load_config(args.conf, overrides=args.overrides)
    except ConfigError as e:
        print(f"fleetvision {job_name}: {e}", file=sys.stderr)
        return ExitCode.USAGE

    spark = None
    try:
        needs_spark = getattr(module, "needs_spark", None)
        if needs_spark(args) if needs_spark is not None else getattr(module, "NEEDS_SPARK", False):
            from fleetvision.spark import DeltaJarsMissingError, build_spark

            try:
                spark = build_spark(config, app_name=f"fleetvision-{job_name}", quiet=not args.verbose)
            except DeltaJarsMissingError as e:  # one line naming the fix; a stack trace would say less
                print(f"fleetvision {job_name}: {e}", file=sys.stderr)
                return ExitCode.NO_DELTA
        return int(module.main(spark, config, args))
    except (ConfigError, TableContractError) as e:
        print(f"fleetvision {job_name}: {e}", file=sys.stderr)
        return ExitCode.USAGE
    finally:
        if spark is not None:
            spark.stop()


def run_job(job_name: str) -> None:
    """Entry point for ``jobs/<name>.py``: ``fleetvision <job_name> <argv...>``."""
    sys.exit(main([job_name, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
