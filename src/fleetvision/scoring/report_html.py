"""The run report's page: one scoring run as a single self-contained HTML document (pure, no Spark).

:func:`render_report` takes one :class:`ReportInputs` (dicts, numbers and thumbnail bytes) and returns
one HTML string, with inline CSS, charts as inline SVG (:mod:`fleetvision.scoring.report_charts`) and
photos as base64 ``data:`` URIs, so the page can be mailed or attached to a ticket and opens anywhere
offline. Every string that came from data (image ids, error details, reasons) is HTML-escaped: error
details quote hostile files. The job that gathers the inputs from the tables is
:mod:`fleetvision.scoring.report`.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fleetvision import __version__
from fleetvision.decode import ERROR_CODES
from fleetvision.scoring import COMPONENTS
from fleetvision.scoring.checks import parse_dq_report
from fleetvision.scoring.report_charts import angle_svg, barh_svg, histogram_svg

HEAD_BYTES = 32
"""How many first bytes of a failed photo the page shows (as hex and text)."""


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


@dataclass(frozen=True)
class ReportInputs:
    """Everything :func:`render_report` shows about one run: plain values, no SparkSession.

    Checked and normalised on construction: mappings are copied, samples given as tuples become
    :class:`ErrorSample`/:class:`HeroSample`, sequences become tuples. Missing pieces stay empty and
    are shown as "no data".

    Attributes:
        run: The ``scoring_runs`` row (run_id, mode, status, started_at, finished_at, counts,
            model_set_id, model_versions, mlflow_run_id, dq_passed, dq_report, message).
        stage_seconds: Stage name -> seconds (None: ``dq_report["stage_seconds"]``).
        error_counts: Error code -> number of photos with it in this run.
        error_samples: Error code -> samples (:class:`ErrorSample`, or ``(image_id, thumbnail)`` tuples).
        score_values: ``completeness_score`` of the listings this run scored.
        hero_samples: :class:`HeroSample`, or ``(listing_id, thumbnail, reason)`` tuples.
        angle_counts: Predicted shot label -> count (None: ``dq_report["angle_counts"]``).
        previous_angle_counts: The previous run's (None: ``dq_report["previous_angle_counts"]``).
        dq_report: The parsed ``dq_report`` (None: parsed from ``run["dq_report"]``).
        component_means: Completeness component -> mean over the scored listings.
        top_reasons: ``(reason, listings)`` pairs, most frequent first.
        generated_at: Shown in the footer (None: the time of rendering, UTC).

    Raises:
        TypeError: ``run`` (or another mapping field) is not a mapping.
    """

    run: Mapping[str, Any]
    stage_seconds: Mapping[str, float] | None = None
    error_counts: Mapping[str, int] = field(default_factory=dict)
    error_samples: Mapping[str, Sequence[ErrorSample]] = field(default_factory=dict)
    score_values: Sequence[float] = ()
    hero_samples: Sequence[HeroSample] = ()
    angle_counts: Mapping[str, float] | None = None
    previous_angle_counts: Mapping[str, float] | None = None
    dq_report: Mapping[str, Any] | None = None
    component_means: Mapping[str, float] = field(default_factory=dict)
    top_reasons: Sequence[tuple[str, int]] = ()
    generated_at: datetime | None = None

    def __post_init__(self) -> None:
        optional = ("stage_seconds", "angle_counts", "previous_angle_counts", "dq_report")
        for name in ("run", "error_counts", "error_samples", "component_means", *optional):
            value = getattr(self, name)
            if value is None and name in optional:
                continue
            if not isinstance(value, Mapping):
                raise TypeError(f"ReportInputs.{name} must be a mapping, got {type(value).__name__}")
            object.__setattr__(self, name, dict(value))
        samples = {str(code): tuple(map(_error_sample, items)) for code, items in self.error_samples.items()}
        object.__setattr__(self, "error_samples", samples)
        object.__setattr__(self, "score_values", tuple(float(v) for v in self.score_values))
        object.__setattr__(self, "hero_samples", tuple(map(_hero_sample, self.hero_samples)))
        object.__setattr__(self, "top_reasons", tuple((str(r), n) for r, n in self.top_reasons))


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
def render_report(inputs: ReportInputs) -> str:
    """Render one scoring run as a self-contained HTML page.

    Missing pieces are shown as "no data", never as an error: a report is most needed when a run
    went wrong.

    Args:
        inputs: The run and what was gathered about it.

    Returns:
        The HTML document.

    Raises:
        TypeError: ``inputs`` is not a :class:`ReportInputs`.
    """
    if not isinstance(inputs, ReportInputs):
        raise TypeError(f"render_report takes a ReportInputs, got {type(inputs).__name__}")
    run = inputs.run
    report = inputs.dq_report if inputs.dq_report is not None else parse_dq_report(run.get("dq_report"))
    stages = inputs.stage_seconds if inputs.stage_seconds is not None else report.get("stage_seconds") or {}
    angles = inputs.angle_counts if inputs.angle_counts is not None else report.get("angle_counts") or {}
    previous = inputs.previous_angle_counts
    previous = previous if previous is not None else report.get("previous_angle_counts")
    run_id = str(run.get("run_id", "?"))
    generated_at = inputs.generated_at or datetime.now(UTC)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>FleetVision run {_e(run_id)}</title><style>{_CSS}</style></head><body><main>",
        _header(run),
        _counts(run),
        _checks(report, run),
        _stages(stages),
        _scores(np.asarray(inputs.score_values, dtype=np.float64), inputs.component_means, inputs.top_reasons),
        _angles(angles, previous),
        _errors(inputs.error_counts, inputs.error_samples),
        _heroes(inputs.hero_samples),
        f"<footer>fleetvision {_e(__version__)} &middot; generated "
        f"{_e(generated_at.strftime('%Y-%m-%d %H:%M:%S %Z'))}</footer>",
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
        + barh_svg(labels, values, "seconds")
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
        out.append(histogram_svg(values))
    if component_means:
        names = [c for c in COMPONENTS if c in component_means] + [c for c in component_means if c not in COMPONENTS]
        out.append("<h3>Mean of each component (0-1)</h3>")
        out.append(barh_svg(names, [float(component_means[c]) for c in names], "mean", color="#4f8f5b", xmax=1.0))
    if top_reasons:
        rows = "".join(f"<tr><td>{_e(r)}</td><td class='num'>{_e(_fmt(n))}</td></tr>" for r, n in top_reasons)
        out.append(f"<h3>Most frequent reasons</h3><table><tr><th>reason</th><th>listings</th></tr>{rows}</table>")
    return "".join(out)


def _angles(current: Mapping[str, float], previous: Mapping[str, float] | None) -> str:
    if not current:
        return '<h2>Shot labels</h2><p class="muted">no shot labels recorded</p>'
    note = "" if previous else '<p class="muted">no previous run to compare with</p>'
    return "<h2>Shot labels</h2>" + note + angle_svg(current, previous)


def _errors(counts: Mapping[str, int], samples: Mapping[str, Sequence[ErrorSample]]) -> str:
    out = ["<h2>Decode errors</h2>"]
    codes = [c for c in ERROR_CODES if c in counts or c in samples]
    codes += sorted(c for c in set(counts) | set(samples) if c not in ERROR_CODES)
    if not codes:
        out.append('<p class="muted">no photo failed to decode</p>')
        return "".join(out)
    rows = "".join(f"<tr><td>{_e(c)}</td><td class='num'>{_e(_fmt(counts.get(c, 0)))}</td></tr>" for c in codes)
    out.append(f"<table><tr><th>error code</th><th>photos</th></tr>{rows}</table>")
    for code in codes:
        items = samples.get(code, ())
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
