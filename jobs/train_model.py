"""spark-submit entry point for `fleetvision train`.

    spark-submit jobs/train_model.py --conf conf/<env>.yaml [options]

Parses nothing itself: arguments go to `fleetvision train` (see `--help`).
"""

from fleetvision.cli import run_job

if __name__ == "__main__":
    run_job("train")
