"""The run report's charts: matplotlib figures as inline ``<svg>`` elements (pure, no pyplot state).

Text stays text (``svg.fonttype=none``) and ids are deterministic (a fixed hash salt, no date), so the
same inputs give the same page.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


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


def histogram_svg(values: np.ndarray) -> str:
    """Completeness scores (0-100) in 20 bins."""
    fig = _figure(6.4, 2.4)
    ax = fig.add_subplot()
    ax.hist(values, bins=np.linspace(0, 100, 21), color="#3b6ea5", edgecolor="white")
    ax.set_xlim(0, 100)
    ax.set_xlabel("completeness_score", fontsize=8)
    ax.set_ylabel("listings", fontsize=8)
    _style(ax)
    return _svg(fig)


def barh_svg(
    labels: Sequence[str], values: Sequence[float], xlabel: str, color: str = "#3b6ea5", xmax: float | None = None
) -> str:
    """One horizontal bar per label, in the given order (top to bottom)."""
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


def angle_svg(current: Mapping[str, float], previous: Mapping[str, float] | None) -> str:
    """Each shot label's share of the run's photos, beside the previous run's when there is one."""
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
