"""spark-submit entry point for `fleetvision report`.

    spark-submit jobs/report.py --conf conf/<env>.yaml [options]

Parses nothing itself: arguments go to `fleetvision report` (see `--help`).
"""

from fleetvision.cli import run_job

if __name__ == "__main__":
    run_job("report")
