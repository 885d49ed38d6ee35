"""spark-submit entry point for `fleetvision group-head`.

    spark-submit jobs/group_head_model.py --conf conf/<env>.yaml [options]

Parses nothing itself: arguments go to `fleetvision group-head` (see `--help`).
"""

from fleetvision.cli import run_job

if __name__ == "__main__":
    run_job("group-head")
