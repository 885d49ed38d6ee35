"""A scoring run's MLflow record: params, metrics, ``summary.json``, ``dq_report.json`` and the hero contact sheet.

MLflow is a record of the run, not a dependency of its outputs: a tracking-server outage is logged and
noted in the run's summary, and the run goes on to its ledger row.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession

from fleetvision.photo_uris import PhotoRoots
from fleetvision.scoring.hero_sheet import hero_contact_sheet
from fleetvision.scoring.summary import RunSummary

if TYPE_CHECKING:
    from fleetvision.config import Config

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MlflowRecord:
    """What recording the run in MLflow gave: its MLflow run id, or None and a note saying why not."""

    run_id: str | None
    note: str | None = None


def run_params(config: Config, summary: RunSummary) -> dict[str, Any]:
    """The MLflow params of a run: its input versions, model set and batch settings."""
    params: dict[str, Any] = {
        "mode": summary.mode,
        "input_table_version": summary.input_table_version,
        "from_version": summary.from_version,
        "listings_table_version": summary.listings_table_version,
        "model_set_id": summary.model_set_id,
        "arrow_max_records_per_batch": config.spark.arrow_max_records_per_batch,
        "model_batch_size": config.scoring.batch_size,
        "input_size": config.models.input_size,
    }
    params.update({f"model_version.{k}": v for k, v in summary.model_versions.items()})
    return params


def run_metrics(summary: RunSummary) -> dict[str, float]:
    """The MLflow metrics of a run: counts, throughput, failures by code, stage times and score figures."""
    metrics: dict[str, float] = {
        **summary.counts(),
        "throughput_images_per_s": summary.throughput,
        "dq_passed": float(bool(summary.dq_passed)),
    }
    metrics.update({f"failed.{k}": v for k, v in summary.failed_by_code.items()})
    metrics.update({f"stage_seconds.{k}": v for k, v in summary.stage_seconds.items()})
    infer_s = summary.stage_seconds.get("infer", 0.0)
    if summary.photos_inferred and infer_s > 0:
        metrics["inference_photos_per_s"] = summary.photos_inferred / infer_s
    metrics.update({f"score.{k}": v for k, v in summary.score_stats.items()})
    return {k: float(v) for k, v in metrics.items()}


def log_to_mlflow(
    spark: SparkSession, config: Config, summary: RunSummary, affected: DataFrame, input_version: int
) -> MlflowRecord:
    """Record the run in MLflow (params, metrics, summary JSON, contact sheet).

    Never raises for an MLflow failure: it is logged, and the record's ``note`` says what failed.

    Returns:
        The MLflow run id (None if MLflow failed) and the note.
    """
    try:
        import mlflow

        from fleetvision.tracking import configure_mlflow

        configure_mlflow(config)
        with mlflow.start_run(run_name=f"score-{summary.run_id}") as active:
            recorded = replace(summary, mlflow_run_id=active.info.run_id)
            mlflow.set_tags(
                {"fleetvision.job": "score", "fleetvision.run_id": summary.run_id, "status": summary.status}
            )
            mlflow.log_params(run_params(config, recorded))
            mlflow.log_metrics(run_metrics(recorded))
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "summary.json"
                path.write_text(json.dumps(recorded.to_dict(), indent=2, sort_keys=True, default=str))
                mlflow.log_artifact(str(path))
                (Path(tmp) / "dq_report.json").write_text(recorded.dq_report or "{}")
                mlflow.log_artifact(str(Path(tmp) / "dq_report.json"))
                png = hero_contact_sheet(
                    spark,
                    config.tables.database,
                    affected,
                    input_version,
                    config.scoring.max_image_pixels,
                    config.scoring.report_hero_samples,
                    remote=config.paths.remote_options,
                    roots=PhotoRoots(config.paths.photo_root_locations()),
                    max_declared_pixels=config.scoring.max_declared_pixels,
                    max_bytes=config.scoring.max_image_bytes,
                )
                if png is not None:
                    (Path(tmp) / "hero_contact_sheet.png").write_bytes(png)
                    mlflow.log_artifact(str(Path(tmp) / "hero_contact_sheet.png"))
            return MlflowRecord(recorded.mlflow_run_id)
    except Exception as e:  # MLflow is a record, not a dependency of the outputs
        logger.warning("MLflow logging failed for run %s: %s", summary.run_id, e, exc_info=True)
        return MlflowRecord(None, f"MLflow logging failed: {type(e).__name__}: {e}"[:300])
