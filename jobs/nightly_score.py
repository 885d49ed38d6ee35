"""spark-submit entry point for `fleetvision score`.

    spark-submit jobs/nightly_score.py --conf conf/<env>.yaml [options]

Parses nothing itself: arguments go to `fleetvision score` (see `--help`).
"""

from fleetvision.cli import run_job

if __name__ == "__main__":
    run_job("score")
