"""``notebooks/analyst_tour.ipynb`` runs top to bottom against a small demo warehouse (nbclient)."""

from __future__ import annotations

import uuid
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_score_job_support import OracleModels, StandInModelSet, write_inventory

from fleetvision import tables
from fleetvision.scoring.run import RunOptions, run_scoring
from fleetvision.taxonomy import load_taxonomy

pytestmark = pytest.mark.spark
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analyst_tour.ipynb"


@pytest.fixture()
def demo_database(spark, config, warehouse_dir):
    """A scored demo inventory in a database at Spark's default location under the warehouse."""
    name = f"demo_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE DATABASE {name}")  # <warehouse>/<name>.db, where the notebook looks
    cfg = config.model_copy(
        update={
            "tables": config.tables.model_copy(update={"database": name}),
            "scoring": config.scoring.model_copy(update={"max_decode_error_rate": 0.25, "min_scored_share": 0.75}),
        }
    )
    taxonomy = load_taxonomy()
    inv = write_inventory(spark, name, Path(cfg.paths.photos), taxonomy, n_listings=8, size=cfg.models.input_size)
    loader = OracleModels(inv.pixel_truth, taxonomy)
    run_scoring(spark, cfg, RunOptions(mode="full", model_set=StandInModelSet(), loader=loader, log_to_mlflow=False))
    yield cfg
    spark.sql(f"DROP DATABASE IF EXISTS {name} CASCADE")


def test_analyst_tour_runs_without_spark_against_the_demo_warehouse(demo_database, warehouse_dir, monkeypatch):
    monkeypatch.setenv("FLEETVISION__PATHS__WAREHOUSE", str(warehouse_dir))
    monkeypatch.setenv("FLEETVISION__TABLES__DATABASE", demo_database.tables.database)
    monkeypatch.setenv("FLEETVISION__PATHS__PHOTOS", demo_database.paths.photos)  # the photo root of its uris
    nb = nbformat.read(NOTEBOOK, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "sys.path" not in source and "pyspark" not in source and "def " not in source
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend renders the figures
    resources = {"metadata": {"path": str(NOTEBOOK.parent)}}
    NotebookClient(nb, timeout=300, kernel_name="python3", resources=resources).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs)
    assert "L000" in text  # listing ids from the demo inventory show up in the answers
    assert "unreadable_uri" in text and "too_many_pixels" in text  # failures by error code
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the completeness histogram and the hero picks
    assert tables.LISTING_COMPLETENESS.name in source
