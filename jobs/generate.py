"""spark-submit entry point for `fleetvision generate`.

    spark-submit jobs/generate.py --conf conf/<env>.yaml [options]

Parses nothing itself: arguments go to `fleetvision generate` (see `--help`).
"""

from fleetvision.cli import run_job

if __name__ == "__main__":
    run_job("generate")
