"""A scoring run's summary: what it did, as one value, and its one-screen rendering.

Every ``scoring_runs`` column is a :class:`RunSummary` field of the same name (:mod:`.ledger` writes
the row from it); ``to_dict`` is the MLflow ``summary.json``; ``render`` is what ``fleetvision score``
prints.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fleetvision.exit_codes import ExitCode

if TYPE_CHECKING:
    from fleetvision.spark import Placement

STATUS_SUCCEEDED = "succeeded"
STATUS_FAILED_DQ = "failed_dq"


def new_run_id(now: datetime) -> str:
    """A sortable, unique run id: ``YYYYmmddTHHMMSSZ-<8 hex>``."""
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunSummary:
    """What a run did; printed at the end, logged to MLflow as ``summary.json``, its ledger row.

    Built once, when the run's stages have returned (frozen: stages return values, they do not fill it in).

    ``images_scored`` counts photos whose predictions were inferred in this run (every photo sharing the
    bytes of an inferred one included), ``images_cached`` those answered by predictions an earlier run
    left in the prediction cache, ``images_failed`` those with an error code; every selected photo is in
    exactly one of them. ``photos_inferred`` is the number of distinct photos (content hashes) this run
    scored (a one-pass run, :mod:`fleetvision.scoring.one_pass`, scores each copy of a duplicate photo, and
    still counts it once here).
    """

    run_id: str
    mode: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    input_table_version: int | None = None
    from_version: int | None = None
    listings_table_version: int | None = None
    model_set_id: str | None = None
    model_versions: dict[str, str] = field(default_factory=dict)
    images_in: int = 0
    images_scored: int = 0
    images_cached: int = 0
    images_failed: int = 0
    images_deleted: int = 0
    photos_inferred: int = 0
    failed_by_code: dict[str, int] = field(default_factory=dict)
    listings_updated: int = 0
    listings_removed: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    score_stats: dict[str, float] = field(default_factory=dict)
    angle_counts: dict[str, int] = field(default_factory=dict)
    dq_passed: bool | None = None
    dq_breached: list[str] = field(default_factory=list)
    dq_report: str | None = None
    mlflow_run_id: str | None = None
    message: str | None = None
    # where the run ran: the master, where that setting came from, the executors (not in the ledger)
    placement: Placement | None = None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.status == STATUS_SUCCEEDED else ExitCode.FAILED

    @property
    def total_seconds(self) -> float:
        return sum(self.stage_seconds.values())

    @property
    def throughput(self) -> float:
        """Selected photos per second over the whole run."""
        return self.images_in / self.total_seconds if self.total_seconds > 0 else 0.0

    def counts(self) -> dict[str, int]:
        """The image and listing counts (MLflow metrics)."""
        names = ("images_in", "images_scored", "images_cached", "images_failed", "images_deleted")
        names += ("photos_inferred", "listings_updated", "listings_removed")
        return {name: int(getattr(self, name)) for name in names}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("started_at", "finished_at"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        out["throughput_images_per_s"] = round(self.throughput, 3)
        out["exit_code"] = self.exit_code
        out.pop("dq_report", None)
        return out

    def render(self) -> str:
        """The one-screen text summary the job prints."""
        verdict = "OK" if self.status == STATUS_SUCCEEDED else f"FAILED ({self.status})"
        versions = ", ".join(f"{k}={v}" for k, v in sorted(self.model_versions.items())) or "-"
        failed = ", ".join(f"{k}={v}" for k, v in sorted(self.failed_by_code.items())) or "none"
        stages = "  ".join(f"{k} {v:.1f}s" for k, v in self.stage_seconds.items())
        window = (
            f"{self.from_version}..{self.input_table_version}"
            if self.from_version is not None
            else f"@{self.input_table_version}"
        )
        lines = [
            f"FleetVision scoring run {self.run_id}: {verdict}",
            f"  mode            {self.mode} (listing_images {window}, listings @{self.listings_table_version})",
            f"  models          {self.model_set_id} [{versions}]",
            f"  images in       {self.images_in}",
            f"    inferred      {self.images_scored} ({self.photos_inferred} distinct photos scored)",
            f"    from cache    {self.images_cached}",
            f"    failed        {self.images_failed} ({failed})",
            f"    tags removed  {self.images_deleted}",
            f"  listings        {self.listings_updated} recomputed, {self.listings_removed} removed",
            f"  time            {self.total_seconds:.1f}s ({self.throughput:.1f} images/s): {stages}",
        ]
        if self.score_stats:
            stats = ", ".join(f"{k}={v:.3g}" for k, v in sorted(self.score_stats.items()))
            lines.append(f"  scores          {stats}")
        dq = "passed" if self.dq_passed else f"BREACHED: {', '.join(self.dq_breached) or '?'}"
        lines.append(f"  checks          {dq}")
        lines.append(f"  watermark       {'moved' if self.status == STATUS_SUCCEEDED else 'NOT moved'}")
        lines.append(f"  mlflow run      {self.mlflow_run_id or '-'}")
        if self.placement is not None:
            lines.append(f"  spark           {self.placement.describe()}")
        if self.message:
            lines.append(f"  note            {self.message}")
        return "\n".join(lines)
