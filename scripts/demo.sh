#!/usr/bin/env bash
# `make demo`: the whole nightly flow on the embedded default (Spark local, Delta under ./warehouse,
# MLflow in ./mlflow.db). Starts from an empty warehouse each time so the figures are comparable.
#   DEMO_LISTINGS=1000 make demo    # a larger inventory
set -euo pipefail
cd "$(dirname "$0")/.."
FV=".venv/bin/fleetvision"
# The jobs keep Spark, Ivy and TensorFlow quiet themselves (docs/runbook.md, *Logs*); DEMO_VERBOSE=1 shows all
VERBOSE="${DEMO_VERBOSE:+--verbose}"
LISTINGS="${DEMO_LISTINGS:-500}"
t0=$(date +%s)
stamp() { echo; echo "== [$(( $(date +%s) - t0 ))s] $*"; }

stamp "fresh demo warehouse (./warehouse), keeping the MLflow store (./mlflow.db)"
rm -rf warehouse reports

stamp "1/6 generate a synthetic inventory of ${LISTINGS} listings (photos under ./warehouse/photos)"
$FV generate --listings "${LISTINGS}" ${VERBOSE}

stamp "2/6 register the shipped starter models as champions (no-op if a champion exists)"
$FV promote --starter ${VERBOSE}

stamp "3/6 full score"
$FV score --mode full ${VERBOSE}

stamp "4/6 one day of churn on the inventory (Delta updates; the change data feed records them)"
$FV generate --evolve ${VERBOSE}

stamp "5/6 incremental score (only what changed)"
$FV score --mode incremental ${VERBOSE}

stamp "6/6 HTML report of the last run"
$FV report ${VERBOSE}

stamp "done in $(( $(date +%s) - t0 ))s. Where to look:"
cat <<TXT
  Tables (Spark SQL):   .venv/bin/pyspark, then spark.table("fleetvision.listing_completeness")
                        (tables: listings, listing_images, image_tags, listing_completeness, hero_images,
                         prediction_cache, scoring_runs; schemas in docs/tables.md)
  Without Spark:        .venv/bin/python -c "from deltalake import DeltaTable; \\
                          print(DeltaTable('warehouse/fleetvision.db/listing_completeness').to_pandas().head())"
  MLflow UI:            .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db   (then http://127.0.0.1:5000)
  Reports:              $(ls -1 reports/*.html 2>/dev/null | tr '\n' ' ')
  Analyst notebook:     notebooks/analyst_tour.ipynb
TXT
