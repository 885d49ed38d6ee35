"""spark-submit entry point for `fleetvision promote`.

    spark-submit jobs/promote_model.py --conf conf/<env>.yaml [options]

Parses nothing itself: arguments go to `fleetvision promote` (see `--help`).
"""

from fleetvision.cli import run_job

if __name__ == "__main__":
    run_job("promote")
