"""spark-submit entry point for `fleetvision suggest-labels`.

    spark-submit jobs/suggest_labels.py --conf conf/<env>.yaml [options]

Parses nothing itself: arguments go to `fleetvision suggest-labels` (see `--help`).
"""

from fleetvision.cli import run_job

if __name__ == "__main__":
    run_job("suggest-labels")
