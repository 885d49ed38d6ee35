"""spark-submit entry point for `fleetvision evaluate`.

    spark-submit jobs/evaluate_model.py --conf conf/<env>.yaml [options]

Parses nothing itself: arguments go to `fleetvision evaluate` (see `--help`).
"""

from fleetvision.cli import run_job

if __name__ == "__main__":
    run_job("evaluate")
