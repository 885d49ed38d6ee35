"""``fleetvision report``: one scoring run as a single self-contained HTML page.

:func:`render_report` is pure: dicts, numbers and thumbnail bytes in, one HTML string out, with inline
CSS, charts as inline SVG (matplotlib, no pyplot state) and photos as base64 ``data:`` URIs, so the
page can be mailed or attached to a ticket and opens anywhere offline. Every string that came from
data (image ids, error details, reasons) is HTML-escaped: error details quote hostile files.

The job entry (:func:`main`) reads the run's rows from ``scoring_runs``, ``image_tags``,
``listing_completeness``, ``hero_images`` and ``listing_images``, gathers samples on the driver (a few
photos per error code and a few hero picks, read with :mod:`fleetvision.decode`), renders, and
writes ``<paths.reports>/run-<run_id>.html`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetvision import __version__
from fleetvision.decode import ERROR_CODES, PhotoRoots, make_thumbnail, photo_bytes
from fleetvision.scoring import COMPONENTS
from fleetvision.scoring.checks import parse_dq_report

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fleetvision.config import Config

logger = logging.getLogger(__name__)

NEEDS_SPARK = True
THUMB_SIDE = 200
GALLERY_THUMB_SIDE = 72
GALLERY_THUMBS = 6
HEAD_BYTES = 32


# -------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class ErrorSample:
    """One failed photo shown in the report.

    Attributes:
        image_id: The photo.
        thumbnail: JPEG/PNG bytes when something could be shown (rarely, for a failure), else None.
        detail: ``image_tags.error_detail``.
        uri: Where the bytes live, if not inline.
        head: The first bytes of the file (shown as hex and text: an HTML error page is obvious).
        listing_id: The photo's listing.
    """

    image_id: str
    thumbnail: bytes | None = None
    detail: str | None = None
    uri: str | None = None
    head: bytes | None = None
    listing_id: str | None = None


@dataclass(frozen=True)
class HeroSample:
    """One listing's hero pick shown in the report."""

    listing_id: str
    thumbnail: bytes | None
    reason: str
    image_id: str | None = None
    completeness_score: float | None = None
    gallery: tuple[bytes | None, ...] = field(default_factory=tuple)


def _error_sample(item: ErrorSample | Sequence[Any]) -> ErrorSample:
    if isinstance(item, ErrorSample):
        return item
    image_id, thumbnail, *rest = item
    return ErrorSample(str(image_id), thumbnail, *(rest[:1]))


def _hero_sample(item: HeroSample | Sequence[Any]) -> HeroSample:
    if isinstance(item, HeroSample):
        return item
    listing_id, thumbnail, reason, *_ = item
    return HeroSample(str(listing_id), thumbnail, str(reason))


# ------------------------------------------------------------------------------------ helpers
def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


_IMAGE_TYPES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF8", "image/gif"))


def _data_uri(data: bytes | None) -> str | None:
    """A ``data:`` URI for JPEG/PNG/GIF/WebP bytes; None for anything else (never embed unknown bytes)."""
    if not data:
        return None
    mime = next((m for magic, m in _IMAGE_TYPES if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _img(data: bytes | None, alt: str, cls: str = "thumb") -> str:
    uri = _data_uri(data)
    if uri is None:
        return f'<div class="{cls} placeholder" title="{_e(alt)}">no preview</div>'
    return f'<img class="{cls}" src="{uri}" alt="{_e(alt)}">'


def _hexdump(data: bytes | None) -> str:
    if not data:
        return "(no bytes)"
    hexed = " ".join(f"{b:02x}" for b in data[:HEAD_BYTES])
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in data[:HEAD_BYTES])
    return f"{hexed}\n{text}"


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return str(value)


def _svg(fig: Any) -> str:
    """A matplotlib Figure as an inline ``<svg>`` element (deterministic ids, text as text)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "fleetvision"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    start = text.find("<svg")
    return f'<div class="chart">{text[start:]}</div>' if start >= 0 else ""


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.patch.set_alpha(0.0)
    return fig


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def _histogram_svg(values: np.ndarray) -> str:
    fig = _figure(6.4, 2.4)
    ax = fig.add_subplot()
    ax.hist(values, bins=np.linspace(0, 100, 21), color="#3b6ea5", edgecolor="white")
    ax.set_xlim(0, 100)
    ax.set_xlabel("completeness_score", fontsize=8)
    ax.set_ylabel("listings", fontsize=8)
    _style(ax)
    return _svg(fig)


def _barh_svg(
    labels: Sequence[str], values: Sequence[float], xlabel: str, color: str = "#3b6ea5", xmax: float | None = None
) -> str:
    fig = _figure(6.4, 0.3 * len(labels) + 0.6)
    ax = fig.add_subplot()
    y = np.arange(len(labels))
    ax.barh(y, values, color=color)
    ax.set_yticks(y, labels=labels)
    ax.invert_yaxis()
    if xmax is not None:
        ax.set_xlim(0, xmax)
    ax.set_xlabel(xlabel, fontsize=8)
    _style(ax)
    return _svg(fig)


def _angle_svg(current: Mapping[str, float], previous: Mapping[str, float] | None) -> str:
    labels = sorted(set(current) | set(previous or {}), key=lambda k: -float(current.get(k, 0)))
    cur_total = sum(current.values()) or 1.0
    fig = _figure(6.4, 0.26 * len(labels) + 0.8)
    ax = fig.add_subplot()
    y = np.arange(len(labels))
    height = 0.4 if previous else 0.8
    ax.barh(
        y - (height / 2 if previous else 0),
        [current.get(k, 0) / cur_total for k in labels],
        height,
        color="#3b6ea5",
        label="this run",
    )
    if previous:
        prev_total = sum(previous.values()) or 1.0
        ax.barh(
            y + height / 2,
            [previous.get(k, 0) / prev_total for k in labels],
            height,
            color="#c9a227",
            label="previous run",
        )
        ax.legend(fontsize=8, frameon=False)
    ax.set_yticks(y, labels=labels)
    ax.invert_yaxis()
    ax.set_xlabel("share of scored photos", fontsize=8)
    _style(ax)
    return _svg(fig)


_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2733;margin:0;
background:#f4f6f8}
main{max-width:1120px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d5dbe1;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 6px}
.sub{color:#5b6776;margin:0 0 16px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;font-size:12px;vertical-align:middle}
.ok{background:#d8f0de;color:#17622c}.bad{background:#fadcdc;color:#8a1c1c}.skip{background:#e6e9ed;color:#4a5562}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #dde3e9;border-radius:6px;padding:10px 14px;min-width:130px}
.card .n{font-size:20px;font-weight:600}.card .l{color:#5b6776;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border:1px solid #dde3e9;padding:5px 8px;text-align:left;vertical-align:top}th{background:#eef1f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{background:#fff;border:1px solid #dde3e9;border-radius:6px;padding:8px;margin:8px 0;overflow-x:auto}
.chart svg{max-width:100%;height:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px}
.tile{background:#fff;border:1px solid #dde3e9;border-radius:6px;padding:8px;overflow:hidden}
.tile .meta{font-size:12px;color:#3b4654;overflow-wrap:anywhere}
img.thumb,.thumb.placeholder{width:100%;height:170px;object-fit:contain;background:#e9edf1;border-radius:4px;display:block}
.placeholder{display:flex;align-items:center;justify-content:center;color:#7a8593;font-size:12px}
.strip{display:flex;gap:4px;margin-top:6px;flex-wrap:nowrap;overflow:hidden}
img.mini,.mini.placeholder{width:46px;height:36px;object-fit:cover;border-radius:3px;background:#e9edf1;font-size:9px}
pre{background:#f0f2f5;padding:6px;font-size:11px;white-space:pre-wrap;overflow-wrap:anywhere;margin:6px 0 0}
.muted{color:#7a8593}
footer{color:#7a8593;font-size:12px;margin-top:32px}
"""


# -------------------------------------------------------------------------------------- render
def render_report(
    run: Mapping[str, Any],
    *,
    stage_seconds: Mapping[str, float] | None = None,
    error_counts: Mapping[str, int] | None = None,
    error_samples: Mapping[str, Sequence[ErrorSample | Sequence[Any]]] | None = None,
    score_values: Sequence[float] | np.ndarray = (),
    hero_samples: Sequence[HeroSample | Sequence[Any]] = (),
    angle_counts: Mapping[str, float] | None = None,
    previous_angle_counts: Mapping[str, float] | None = None,
    dq_report: Mapping[str, Any] | None = None,
    component_means: Mapping[str, float] | None = None,
    top_reasons: Sequence[tuple[str, int]] = (),
    generated_at: datetime | None = None,
) -> str:
    """Render one scoring run as a self-contained HTML page.

    Missing pieces are shown as "no data", never as an error: a report is most needed when a run
    went wrong.

    Args:
        run: The ``scoring_runs`` row (run_id, mode, status, started_at, finished_at, counts,
            model_set_id, model_versions, mlflow_run_id, dq_passed, dq_report, message).
        stage_seconds: Stage name -> seconds (default: ``dq_report["stage_seconds"]``).
        error_counts: Error code -> number of photos with it in this run.
        error_samples: Error code -> samples (:class:`ErrorSample`, or ``(image_id, thumbnail)`` tuples).
        score_values: ``completeness_score`` of the listings this run scored.
        hero_samples: :class:`HeroSample`, or ``(listing_id, thumbnail, reason)`` tuples.
        angle_counts: Predicted shot label -> count (default: ``dq_report["angle_counts"]``).
        previous_angle_counts: The previous run's (default: ``dq_report["previous_angle_counts"]``).
        dq_report: The parsed ``dq_report`` (default: parsed from ``run["dq_report"]``).
        component_means: Completeness component -> mean over the scored listings.
        top_reasons: ``(reason, listings)`` pairs, most frequent first.
        generated_at: Shown in the footer (default: now, UTC).

    Returns:
        The HTML document.
    """
    report = dict(dq_report) if dq_report is not None else parse_dq_report(run.get("dq_report"))
    stage_seconds = stage_seconds if stage_seconds is not None else report.get("stage_seconds") or {}
    angle_counts = angle_counts if angle_counts is not None else report.get("angle_counts") or {}
    if previous_angle_counts is None:
        previous_angle_counts = report.get("previous_angle_counts")
    run_id = str(run.get("run_id", "?"))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>FleetVision run {_e(run_id)}</title><style>{_CSS}</style></head><body><main>",
        _header(run),
        _counts(run),
        _checks(report, run),
        _stages(stage_seconds),
        _scores(np.asarray(list(score_values), dtype=np.float64), component_means, top_reasons),
        _angles(angle_counts, previous_angle_counts),
        _errors(error_counts or {}, error_samples or {}),
        _heroes([_hero_sample(h) for h in hero_samples]),
        f"<footer>fleetvision {_e(__version__)} &middot; generated "
        f"{_e((generated_at or datetime.now(UTC)).strftime('%Y-%m-%d %H:%M:%S %Z'))}</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _header(run: Mapping[str, Any]) -> str:
    status = str(run.get("status") or "unknown")
    cls = "ok" if status == "succeeded" else "bad"
    started, finished = run.get("started_at"), run.get("finished_at")
    duration = ""
    if isinstance(started, datetime) and isinstance(finished, datetime):
        duration = f" &middot; {(finished - started).total_seconds():,.1f} s"
    rows = [
        ("mode", run.get("mode")),
        ("input table version", run.get("input_table_version")),
        ("from version", run.get("from_version")),
        ("model set", run.get("model_set_id")),
        ("MLflow run", run.get("mlflow_run_id")),
        ("message", run.get("message")),
    ]
    versions = run.get("model_versions") or {}
    if isinstance(versions, Mapping) and versions:
        rows.append(("model versions", ", ".join(f"{k}: {v}" for k, v in sorted(versions.items()))))
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in rows if v is not None)
    return (
        f'<h1>Scoring run {_e(run.get("run_id"))} <span class="badge {cls}">{_e(status)}</span></h1>'
        f'<p class="sub">{_e(started)} &rarr; {_e(finished)}{duration}</p>'
        f"<table>{table}</table>"
    )


def _counts(run: Mapping[str, Any]) -> str:
    keys = [
        ("images_in", "images in"),
        ("images_scored", "inferred"),
        ("images_cached", "from cache"),
        ("images_failed", "failed"),
        ("images_deleted", "deleted"),
        ("listings_updated", "listings updated"),
    ]
    cards = "".join(
        f'<div class="card"><div class="n">{_e(_fmt(run.get(k)))}</div><div class="l">{_e(label)}</div></div>'
        for k, label in keys
    )
    return f'<h2>Counts</h2><div class="cards">{cards}</div>'


def _checks(report: Mapping[str, Any], run: Mapping[str, Any]) -> str:
    checks = report.get("checks") or []
    if not checks:
        passed = run.get("dq_passed")
        note = "no check results recorded" + ("" if passed is None else f" (dq_passed={passed})")
        return f'<h2>Data-quality checks</h2><p class="muted">{_e(note)}</p>'
    rows = []
    for c in checks:
        if c.get("skipped"):
            badge = '<span class="badge skip">skipped</span>'
        elif c.get("passed"):
            badge = '<span class="badge ok">passed</span>'
        else:
            badge = '<span class="badge bad">breached</span>'
        rows.append(
            f"<tr><td>{_e(c.get('name'))}</td><td class='num'>{_e(_fmt(c.get('value')))}</td>"
            f"<td class='num'>{_e(_fmt(c.get('threshold')))}</td><td>{badge}</td><td>{_e(c.get('message'))}</td></tr>"
        )
    head = "<tr><th>check</th><th>value</th><th>threshold</th><th>result</th><th>detail</th></tr>"
    return f"<h2>Data-quality checks</h2><table>{head}{''.join(rows)}</table>"


def _stages(stage_seconds: Mapping[str, float]) -> str:
    if not stage_seconds:
        return '<h2>Stage times</h2><p class="muted">no stage times recorded</p>'
    labels = [str(k) for k in stage_seconds]
    values = [float(v) for v in stage_seconds.values()]
    total = sum(values) or 1.0
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td class='num'>{v:,.2f}</td><td class='num'>{100 * v / total:.1f}%</td></tr>"
        for k, v in zip(labels, values)
    )
    return (
        "<h2>Stage times</h2>"
        + _barh_svg(labels, values, "seconds")
        + f"<table><tr><th>stage</th><th>seconds</th><th>share</th></tr>{rows}</table>"
    )


def _scores(
    values: np.ndarray, component_means: Mapping[str, float] | None, top_reasons: Sequence[tuple[str, int]]
) -> str:
    values = values[np.isfinite(values)]
    out = ["<h2>Completeness scores</h2>"]
    if values.size == 0:
        out.append('<p class="muted">no listings scored in this run</p>')
    else:
        q10, q50, q90 = np.percentile(values, [10, 50, 90])
        stats = [("listings", values.size), ("mean", float(values.mean())), ("p10", q10), ("median", q50), ("p90", q90)]
        out.append(
            '<div class="cards">'
            + "".join(
                f'<div class="card"><div class="n">{_e(_fmt(v, 1))}</div><div class="l">{_e(k)}</div></div>'
                for k, v in stats
            )
            + "</div>"
        )
        out.append(_histogram_svg(values))
    if component_means:
        names = [c for c in COMPONENTS if c in component_means] + [c for c in component_means if c not in COMPONENTS]
        out.append("<h3>Mean of each component (0-1)</h3>")
        out.append(_barh_svg(names, [float(component_means[c]) for c in names], "mean", color="#4f8f5b", xmax=1.0))
    if top_reasons:
        rows = "".join(f"<tr><td>{_e(r)}</td><td class='num'>{_e(_fmt(n))}</td></tr>" for r, n in top_reasons)
        out.append(f"<h3>Most frequent reasons</h3><table><tr><th>reason</th><th>listings</th></tr>{rows}</table>")
    return "".join(out)


def _angles(current: Mapping[str, float], previous: Mapping[str, float] | None) -> str:
    if not current:
        return '<h2>Shot labels</h2><p class="muted">no shot labels recorded</p>'
    note = "" if previous else '<p class="muted">no previous run to compare with</p>'
    return "<h2>Shot labels</h2>" + note + _angle_svg(current, previous)


def _errors(counts: Mapping[str, int], samples: Mapping[str, Sequence[ErrorSample | Sequence[Any]]]) -> str:
    out = ["<h2>Decode errors</h2>"]
    codes = [c for c in ERROR_CODES if c in counts or c in samples]
    codes += sorted(c for c in set(counts) | set(samples) if c not in ERROR_CODES)
    if not codes:
        out.append('<p class="muted">no photo failed to decode</p>')
        return "".join(out)
    rows = "".join(f"<tr><td>{_e(c)}</td><td class='num'>{_e(_fmt(counts.get(c, 0)))}</td></tr>" for c in codes)
    out.append(f"<table><tr><th>error code</th><th>photos</th></tr>{rows}</table>")
    for code in codes:
        items = [_error_sample(s) for s in samples.get(code, ())]
        if not items:
            continue
        out.append(f"<h3>{_e(code)}</h3><div class='grid'>")
        for s in items:
            where = f"<br>uri: {_e(s.uri)}" if s.uri else ""
            listing = f"<br>listing: {_e(s.listing_id)}" if s.listing_id else ""
            detail = f"<br>{_e(s.detail)}" if s.detail else ""
            head = f"<pre>{_e(_hexdump(s.head))}</pre>" if s.head is not None else ""
            # Most failures have nothing to show: no grey placeholder then, the first bytes say more.
            picture = _img(s.thumbnail, s.image_id) if _data_uri(s.thumbnail) else ""
            out.append(
                f"<div class='tile'>{picture}"
                f"<div class='meta'><b>{_e(s.image_id)}</b>{listing}{where}{detail}</div>{head}</div>"
            )
        out.append("</div>")
    return "".join(out)


def _heroes(samples: Sequence[HeroSample]) -> str:
    if not samples:
        return '<h2>Hero picks</h2><p class="muted">no hero picks in this run</p>'
    tiles = []
    for h in samples:
        score = f" &middot; score {_e(_fmt(h.completeness_score, 1))}" if h.completeness_score is not None else ""
        strip = ""
        if h.gallery:
            minis = "".join(_img(g, "gallery photo", cls="mini") for g in h.gallery)
            strip = f"<div class='strip'>{minis}</div>"
        tiles.append(
            f"<div class='tile'>{_img(h.thumbnail, h.listing_id)}"
            f"<div class='meta'><b>{_e(h.listing_id)}</b>{score}<br>{_e(h.reason)}</div>{strip}</div>"
        )
    return f"<h2>Hero picks</h2><div class='grid'>{''.join(tiles)}</div>"


# ------------------------------------------------------------------------------------------ job
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--run-id`` (default: the latest run) and ``--out`` (default: ``<paths.reports>/run-<run_id>.html``)."""
    parser.add_argument("--run-id", default=None, help="the run to report (default: the most recent run)")
    parser.add_argument(
        "--out", default=None, metavar="PATH", help="output file (default: <paths.reports>/run-<id>.html)"
    )


@dataclass
class ReportInputs:
    """What :func:`gather_report_inputs` collects for :func:`render_report`."""

    run: dict[str, Any]
    error_counts: dict[str, int] = field(default_factory=dict)
    error_samples: dict[str, list[ErrorSample]] = field(default_factory=dict)
    score_values: list[float] = field(default_factory=list)
    hero_samples: list[HeroSample] = field(default_factory=list)
    component_means: dict[str, float] = field(default_factory=dict)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)


def gather_report_inputs(spark: SparkSession, config: Config, run_id: str | None = None) -> ReportInputs | None:
    """Read one run's rows from the tables and collect the report's pieces on the driver.

    Only aggregates and a bounded number of samples (``scoring.report_error_samples`` per error code,
    ``scoring.report_hero_samples`` heroes) reach the driver, plus one float per listing scored.

    Returns:
        The inputs, or None when the run (or any run, without ``run_id``) does not exist.
    """
    from pyspark.sql import functions as F

    from fleetvision.tables import (
        HERO_IMAGES,
        IMAGE_TAGS,
        LISTING_COMPLETENESS,
        LISTING_IMAGES,
        SCORING_RUNS,
        qualified,
    )

    db = config.tables.database
    sc = config.scoring
    remote = config.paths.remote_options
    roots = PhotoRoots(config.paths.photo_root_locations())
    limits = {"max_pixels": sc.max_image_pixels, "max_declared_pixels": sc.max_declared_pixels}
    runs = spark.table(qualified(db, SCORING_RUNS))
    runs = runs.filter(F.col("run_id") == run_id) if run_id else runs.orderBy(F.col("started_at").desc())
    first = runs.limit(1).collect()
    if not first:
        return None
    run = first[0].asDict(recursive=True)
    rid = run["run_id"]
    inputs = ReportInputs(run=run)

    tags = spark.table(qualified(db, IMAGE_TAGS)).filter(F.col("run_id") == rid)
    images = spark.table(qualified(db, LISTING_IMAGES)).select("image_id", "uri", "content")
    failed = tags.filter(F.col("decode_status") == "error")
    for row in failed.groupBy("error_code").count().collect():
        inputs.error_counts[str(row["error_code"])] = int(row["count"])
    if sc.report_error_samples:
        from pyspark.sql import Window

        ranked = failed.withColumn(
            "_rank", F.row_number().over(Window.partitionBy("error_code").orderBy("image_id"))
        ).filter(F.col("_rank") <= sc.report_error_samples)
        rows = (
            ranked.join(images, "image_id", "left")
            .select("image_id", "listing_id", "error_code", "error_detail", "uri", "content")
            .collect()
        )
        for row in sorted(rows, key=lambda r: (str(r["error_code"]), str(r["image_id"]))):
            data = photo_bytes(row["content"], row["uri"], max_bytes=sc.max_image_bytes, remote=remote, roots=roots)
            thumb = make_thumbnail(data, THUMB_SIDE, **limits) if data else None
            inputs.error_samples.setdefault(str(row["error_code"]), []).append(
                ErrorSample(
                    image_id=str(row["image_id"]),
                    thumbnail=thumb,
                    detail=row["error_detail"],
                    uri=row["uri"],
                    head=data[:HEAD_BYTES] if data is not None else None,
                    listing_id=row["listing_id"],
                )
            )

    comp = spark.table(qualified(db, LISTING_COMPLETENESS)).filter(F.col("run_id") == rid)
    inputs.score_values = [float(r[0]) for r in comp.select("completeness_score").collect() if r[0] is not None]
    means = comp.agg(*[F.avg(F.col("components").getItem(c)).alias(c) for c in COMPONENTS]).collect()
    if means:
        inputs.component_means = {c: float(means[0][c]) for c in COMPONENTS if means[0][c] is not None}
    # numbers vary between listings ("2 photos could not be read"): count reasons by their wording
    reason_rows = (
        comp.select(F.explode("reasons").alias("reason"))
        .select(F.regexp_replace("reason", r"\d+", "N").alias("reason"))
        .groupBy("reason")
        .count()
        .orderBy(F.col("count").desc(), "reason")
        .limit(10)
        .collect()
    )
    inputs.top_reasons = [(str(r["reason"]), int(r["count"])) for r in reason_rows]

    if sc.report_hero_samples:
        heroes = (
            spark.table(qualified(db, HERO_IMAGES))
            .filter(F.col("run_id") == rid)
            .orderBy("listing_id")
            .limit(sc.report_hero_samples)
            .join(comp.select("listing_id", "completeness_score"), "listing_id", "left")
            .collect()
        )
        wanted: set[str] = set()
        for h in heroes:
            if h["hero_image_id"]:
                wanted.add(h["hero_image_id"])
            wanted.update((h["gallery_order"] or [])[:GALLERY_THUMBS])
        photo_rows = images.filter(F.col("image_id").isin(sorted(wanted))).collect() if wanted else []
        raw = {
            r["image_id"]: photo_bytes(r["content"], r["uri"], max_bytes=sc.max_image_bytes, remote=remote, roots=roots)
            for r in photo_rows
        }
        for h in sorted(heroes, key=lambda r: str(r["listing_id"])):
            hero_id = h["hero_image_id"]
            gallery = tuple(
                make_thumbnail(raw.get(i), GALLERY_THUMB_SIDE, **limits)
                for i in (h["gallery_order"] or [])[:GALLERY_THUMBS]
            )
            inputs.hero_samples.append(
                HeroSample(
                    listing_id=str(h["listing_id"]),
                    thumbnail=make_thumbnail(raw.get(hero_id), THUMB_SIDE, **limits) if hero_id else None,
                    reason=str(h["hero_reason"]),
                    image_id=hero_id,
                    completeness_score=h["completeness_score"],
                    gallery=gallery,
                )
            )
    return inputs


_SAFE_RUN_ID = re.compile(r"[^A-Za-z0-9._-]+")


def report_path(config: Config, run_id: str) -> str:
    """``<paths.reports>/run-<run_id>.html``, the run id made safe for a file name."""
    name = f"run-{_SAFE_RUN_ID.sub('_', run_id)}.html"
    if config.paths.is_remote("reports"):
        return config.paths.reports.rstrip("/") + "/" + name
    return str(config.paths.resolve("reports") / name)


def _write(spark: SparkSession, target: str, text: str) -> None:
    if "://" in target and not target.startswith("file://"):
        # An object store: write through Hadoop's FileSystem, which has the cluster's credentials.
        from fleetvision import hadoop_fs

        hadoop_fs.write_text(spark, target, text)
        return
    local = Path(target[len("file://") :] if target.startswith("file://") else target)
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(text, encoding="utf-8")


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Render the chosen run's report and write it.

    Returns:
        0 when written; 1 when there is no such run (or no run at all).

    Raises:
        ValueError: Called without a SparkSession.
    """
    if spark is None:
        raise ValueError("fleetvision report needs a SparkSession")
    inputs = gather_report_inputs(spark, config, run_id=args.run_id)
    if inputs is None:
        what = f"run {args.run_id!r}" if args.run_id else "any scoring run"
        logger.error("report: %s not found in %s.scoring_runs", what, config.tables.database)
        return 1
    text = render_report(
        inputs.run,
        error_counts=inputs.error_counts,
        error_samples=inputs.error_samples,
        score_values=inputs.score_values,
        hero_samples=inputs.hero_samples,
        component_means=inputs.component_means,
        top_reasons=inputs.top_reasons,
    )
    target = args.out or report_path(config, str(inputs.run["run_id"]))
    _write(spark, target, text)
    logger.info("report for run %s written to %s (%d KiB)", inputs.run["run_id"], target, len(text) // 1024)
    return 0
