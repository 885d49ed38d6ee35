"""Shared fixtures.

Tier 1 (pure) tests need none of these but the taxonomy and the default scoring rules. Tier 2 (Spark) tests
share one session-scoped ``local[2]``
session with Delta and an embedded metastore in a temporary warehouse, and each test gets its own
database (``fv_<hex>``) whose tables live under the test's ``tmp_path``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


@pytest.fixture(scope="session")
def taxonomy():
    """The packaged shot taxonomy (``conf/taxonomy.yaml``)."""
    from fleetvision.taxonomy import load_taxonomy

    return load_taxonomy()


@pytest.fixture(scope="session")
def rules(taxonomy):
    """The default scoring rules for that taxonomy."""
    from fleetvision.scoring import ScoringRules

    return ScoringRules.default(taxonomy)


@pytest.fixture(scope="session")
def warehouse_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="session")
def base_config(warehouse_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The local profile pointed at temporary places (warehouse, MLflow SQLite, photos)."""
    from fleetvision.config import load_config

    root = tmp_path_factory.mktemp("fv")
    return load_config(
        overrides=[
            f"paths.warehouse={warehouse_dir}",
            f"paths.photos={root / 'photos'}",
            f"paths.artifacts={root / 'artifacts'}",
            f"paths.reports={root / 'reports'}",
            f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
            "spark.master=local[2]",
            "spark.shuffle_partitions=2",
            "spark.driver_memory=3g",
        ],
        environ={},
    )


@pytest.fixture(scope="session")
def spark(base_config) -> Iterator:
    from fleetvision.spark import build_spark

    session = build_spark(base_config, app_name="fleetvision-tests")
    yield session
    session.stop()


@pytest.fixture()
def database(spark, tmp_path: Path) -> Iterator[str]:
    """A fresh database for one test, stored under the test's tmp_path, dropped afterwards."""
    name = f"fv_{uuid.uuid4().hex[:10]}"
    spark.sql(f"CREATE DATABASE {name} LOCATION '{tmp_path / (name + '.db')}'")
    yield name
    spark.sql(f"DROP DATABASE IF EXISTS {name} CASCADE")


@pytest.fixture()
def local_mlflow_config(base_config, tmp_path: Path):
    """``base_config`` with an MLflow store of this test's own (SQLite, artifacts under ``tmp_path``), its
    experiment created; no Spark."""
    import mlflow

    cfg = base_config.model_copy(
        update={"mlflow": base_config.mlflow.model_copy(update={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})}
    )
    mlflow.set_tracking_uri(cfg.mlflow.resolved_tracking_uri())
    mlflow.create_experiment(cfg.mlflow.experiment, artifact_location=(tmp_path / "mlartifacts").as_uri())
    return cfg


@pytest.fixture()
def config(base_config, database: str, tmp_path: Path):
    """``base_config`` with this test's database and its own photo and artifact folders."""
    return base_config.model_copy(
        update={
            "tables": base_config.tables.model_copy(update={"database": database}),
            "paths": base_config.paths.model_copy(
                update={
                    "photos": str(tmp_path / "photos"),
                    "artifacts": str(tmp_path / "artifacts"),
                    "reports": str(tmp_path / "reports"),
                }
            ),
        }
    )


def pytest_configure(config: pytest.Config) -> None:
    # tests/servers.py is a helper module, importable by test files
    import sys

    sys.path.insert(0, str(Path(__file__).parent))


# The longest test files (`.ci/run --durations`, session 8: a standalone cluster, an installed wheel,
# whole scoring runs), started first: `make test` hands whole files to two xdist workers in collection
# order (`--no-loadscope-reorder`: xdist's default order, files with the most tests first, puts the
# 3-test cluster file near the end; in the first two-worker run the last 7% of the tests took 31 of its
# 54 minutes).
LONGEST_FIRST = (
    "test_cluster_submit.py",
    "test_installed_wheel.py",
    "test_score_job.py",
    "test_run_lease.py",
    "test_photo_roots.py",
    "test_score_job_inputs.py",
    "test_integration_servers.py",
    "test_metastore.py",
)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
