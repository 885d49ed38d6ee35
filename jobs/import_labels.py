"""spark-submit entry point for `fleetvision import-labels`.

    spark-submit jobs/import_labels.py --conf conf/<env>.yaml [options]

Parses nothing itself: arguments go to `fleetvision import-labels` (see `--help`).
"""

from fleetvision.cli import run_job

if __name__ == "__main__":
    run_job("import-labels")
