"""spark-submit entry point for `fleetvision soup`.

    spark-submit jobs/soup_model.py --conf conf/<env>.yaml [options]

Parses nothing itself: arguments go to `fleetvision soup` (see `--help`).
"""

from fleetvision.cli import run_job

if __name__ == "__main__":
    run_job("soup")
