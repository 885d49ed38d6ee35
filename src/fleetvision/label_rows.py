"""Labelled photos -> ``training_images`` rows, and the report of what was kept and dropped (pure, no Spark).

:func:`plan_import` takes one :class:`ImportRequest` (a folder-per-label tree, or votes CSVs and the
folder their photos are in) and returns the rows to write and an :class:`ImportReport`; the job
(:mod:`fleetvision.labels_import`) builds the request from the command line and writes the rows.
Labels and the consensus over votes come from :mod:`fleetvision.label_consensus`. A row stores the angle
classes its label allows in ``angle_allowed`` (a full label is a one-class set) and trains through the
partial-label loss (:mod:`fleetvision.models.losses`).

Photos are checked (they must decode), stored upright (EXIF orientation applied) and in RGB; photos
larger than ``models.import_max_side`` are shrunk (aspect kept). Anything else is stored byte for
byte. Each photo gets a stable split from a hash of its path (``models.import_eval_fraction`` go to
``eval``, ``import_val_fraction`` to ``val``, the rest to ``train``), so re-imports keep the frozen
eval set frozen. A row's ``sample_id`` is a hash of the dataset, the photo's path and the task, so an
import can be re-run.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from fleetvision.config import Config
from fleetvision.label_consensus import (
    DUPLICATE,
    MISSING_FILE,
    NOT_IMAGE,
    TASKS,
    UNKNOWN_LABEL,
    Dropped,
    allowed_angle_classes,
    consensus,
    label_vocabulary,
    normalise_label,
    read_votes,
)
from fleetvision.taxonomy import Taxonomy

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_KEEP_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


@dataclass(frozen=True)
class ImportRequest:
    """What to import: a folder-per-label tree, or votes CSVs with the folder their photos are in.

    Paths are made absolute (``~`` expanded) on construction; whether they exist is checked by
    :func:`plan_import`.

    Attributes:
        task: What the labels are, one of :data:`~fleetvision.label_consensus.TASKS`.
        folder: The tree with one sub-folder of photos per label (None for a votes import).
        votes: The votes CSVs, pooled (empty for a folder import).
        images_dir: With ``votes``: the folder the CSVs' image paths are relative to.
        dataset: The rows' dataset name (None: ``folder:<folder>`` or ``votes:<first CSV>``).

    Raises:
        ValueError: An unknown task, neither or both of ``folder`` and ``votes``, or ``votes``
            without ``images_dir``.
    """

    task: str = "angle"
    folder: Path | None = None
    votes: tuple[Path, ...] = ()
    images_dir: Path | None = None
    dataset: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {', '.join(TASKS)}")
        if (self.folder is None) == (not self.votes):
            raise ValueError("import-labels: give exactly one of a label folder (--folder) or votes CSVs (--votes)")
        if self.votes and self.images_dir is None:
            raise ValueError("--votes needs --images-dir (the folder the CSV's image paths are relative to)")
        object.__setattr__(self, "folder", _absolute(self.folder))
        votes = (self.votes,) if isinstance(self.votes, str | Path) else self.votes
        object.__setattr__(self, "votes", tuple(Path(v).expanduser().resolve() for v in votes))
        object.__setattr__(self, "images_dir", _absolute(self.images_dir))


def _absolute(path: Path | str | None) -> Path | None:
    return None if path is None else Path(path).expanduser().resolve()


@dataclass(frozen=True)
class Labelled:
    """A photo with its accepted label.

    Attributes:
        image: Path relative to the import root (the stable identity of the photo).
        path: Absolute path (None: the bytes come from elsewhere, see :func:`build_rows`' ``read``).
        label: The label, as written by the user (a vocabulary key).
        votes: Agreeing votes (votes import) or 0 (folder import).
        split_key: What the split is drawn from (photos with the same key share a split); None: ``image``.
    """

    image: str
    path: Path | None
    label: str
    votes: int = 0
    split_key: str | None = None


@dataclass
class ImportReport:
    """What an import did: kept, dropped (with reasons), and the vote statistics."""

    task: str
    dataset: str
    source: str
    accepted: int = 0
    by_label: dict[str, int] = field(default_factory=dict)
    by_split: dict[str, int] = field(default_factory=dict)
    dropped: list[Dropped] = field(default_factory=list)
    votes_total: int = 0
    votes_unknown_label: int = 0
    votes_superseded: int = 0
    consensus_min_votes: int | None = None
    audit: dict[str, Any] | None = None  # import-labels --from-listings --audit: the declared-type audit

    @property
    def dropped_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(d.reason for d in self.dropped).items()))

    def to_json(self) -> str:
        payload = asdict(self)
        payload["dropped_by_reason"] = self.dropped_by_reason
        return json.dumps(payload, indent=2, sort_keys=True) + "\n"

    def summary(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in self.dropped_by_reason.items()) or "none"
        return (
            f"import-labels ({self.task}, {self.dataset}): {self.accepted} photos accepted "
            f"{dict(sorted(self.by_label.items()))}; {len(self.dropped)} dropped ({reasons})"
        )


def scan_folder(root: Path, task: str, taxonomy: Taxonomy) -> tuple[list[Labelled], list[Dropped]]:
    """Photos of a folder-per-label tree.

    Files directly under ``root`` and files in a folder whose name is not a label are dropped
    (``unknown_label``); files with a non-image suffix are ignored.

    Raises:
        FileNotFoundError: ``root`` is not a directory.
    """
    if not root.is_dir():
        raise FileNotFoundError(f"--folder: not a directory: {root}")
    vocab = label_vocabulary(task, taxonomy)
    kept: list[Labelled] = []
    dropped: list[Dropped] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        rel = path.relative_to(root).as_posix()
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            dropped.append(Dropped(rel, UNKNOWN_LABEL, "not inside a label folder"))
            continue
        label = vocab.get(normalise_label(parts[0]))
        if label is None:
            dropped.append(Dropped(rel, UNKNOWN_LABEL, f"folder {parts[0]!r} is not a {task} label"))
            continue
        kept.append(Labelled(rel, path, label))
    return kept, dropped


# ----------------------------------------------------------------------------------------- photos
def prepare_photo(path: Path, max_side: int) -> tuple[bytes | None, str]:
    """The bytes to store for the photo at ``path``, or None and why not (:func:`prepare_bytes`)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return None, f"{MISSING_FILE}: {e}"
    return prepare_bytes(data, max_side)


def prepare_bytes(data: bytes, max_side: int) -> tuple[bytes | None, str]:
    """The bytes to store for a photo, or None and why not.

    Returns the bytes unchanged when they are an upright RGB/greyscale JPEG, PNG or WebP no larger than
    ``max_side``; otherwise the photo re-encoded upright, RGB and shrunk (JPEG quality 95).

    Returns:
        (bytes or None, detail): detail says what was done or why it failed.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            orientation = im.getexif().get(0x0112, 1)
            fmt, mode, size = im.format, im.mode, im.size
            if fmt in _KEEP_FORMATS and orientation == 1 and mode in ("RGB", "L") and max(size) <= max_side:
                return data, "kept"
            upright = ImageOps.exif_transpose(im) or im
            if upright.mode in ("RGBA", "LA", "P", "PA"):
                rgba = upright.convert("RGBA")
                canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                upright = Image.alpha_composite(canvas, rgba)
            rgb = upright.convert("RGB")
            if max(rgb.size) > max_side:
                rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            rgb.save(out, "JPEG", quality=95)
            return (
                out.getvalue(),
                f"re-encoded (format {fmt}, mode {mode}, orientation {orientation}, {size[0]}x{size[1]})",
            )
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        return None, f"{NOT_IMAGE}: {type(e).__name__}: {e}"


def split_for(image: str, eval_fraction: float, val_fraction: float) -> str:
    """Stable split of a photo from a hash of its relative path."""
    u = int(hashlib.sha256(image.encode()).hexdigest()[:12], 16) / float(16**12)
    if u < eval_fraction:
        return "eval"
    if u < eval_fraction + val_fraction:
        return "val"
    return "train"


def training_row(
    item: Labelled, content: bytes, task: str, taxonomy: Taxonomy, *, dataset: str, split: str, source: str
) -> dict[str, Any]:
    """A ``training_images`` row: the task's label set, every other label unknown (-1/null).

    ``angle_allowed`` lists the angle classes the label allows (empty: no angle label). For an
    ``angle`` label of one class, ``angle``/``angle_index`` name it; for a coarse one, ``angle`` is the
    label as given and ``angle_index`` is -1 (so it never counts in angle accuracy); a body type
    given as an ``angle`` label sets the body label only.
    """
    row: dict[str, Any] = {
        "sample_id": hashlib.sha256(f"{dataset}\n{item.image}\n{task}".encode()).hexdigest()[:32],
        "dataset": dataset,
        "split": split,
        "content": bytearray(content),
        "angle": None,
        "angle_index": -1,
        "angle_allowed": [],
        "has_banner": -1,
        "plate_present": -1,
        "plate_box": [],
        "body_type": None,
        "body_index": -1,
        "source": source,
    }
    if task == "angle":
        allowed = allowed_angle_classes(item.label, taxonomy)
        if not allowed:
            row["body_type"], row["body_index"] = item.label, taxonomy.body_index(item.label)
        else:
            row["angle"], row["angle_allowed"] = item.label, list(allowed)
            row["angle_index"] = allowed[0] if len(allowed) == 1 else -1
    elif task == "body":
        row["body_type"], row["body_index"] = item.label, taxonomy.body_index(item.label)
    elif task == "banner":
        row["has_banner"] = 1 if item.label == "banner" else 0
    elif task == "plate":
        row["plate_present"] = 1 if item.label == "plate" else 0
    return row


def build_rows(
    items: Iterable[Labelled],
    task: str,
    taxonomy: Taxonomy,
    config: Config,
    report: ImportReport,
    read: Callable[[Labelled], tuple[bytes | None, str]] | None = None,
) -> list[dict[str, Any]]:
    """Read, check and convert each accepted photo into a row; failures go to the report.

    ``read`` gives a photo's stored bytes or None and why (default: :func:`prepare_photo` of its
    ``path``). The report's counts are added to, so several calls can share one report.
    """
    rows: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    m = config.models
    for item in items:
        if read is not None:
            content, detail = read(item)
        elif item.path is None:
            content, detail = None, f"{MISSING_FILE}: no path"
        else:
            content, detail = prepare_photo(item.path, m.import_max_side)
        if content is None:
            reason, _, rest = detail.partition(": ")
            report.dropped.append(Dropped(item.image, reason, rest))
            continue
        digest = hashlib.sha256(content).hexdigest()
        if digest in seen:
            report.dropped.append(Dropped(item.image, DUPLICATE, f"same bytes as {seen[digest]}"))
            continue
        seen[digest] = item.image
        split = split_for(item.split_key or item.image, m.import_eval_fraction, m.import_val_fraction)
        rows.append(
            training_row(item, content, task, taxonomy, dataset=report.dataset, split=split, source=report.source)
        )
        report.by_label[item.label] = report.by_label.get(item.label, 0) + 1
        report.by_split[split] = report.by_split.get(split, 0) + 1
    report.accepted += len(rows)
    return rows


def plan_import(
    request: ImportRequest, config: Config, taxonomy: Taxonomy
) -> tuple[list[dict[str, Any]], ImportReport]:
    """The rows to write and the report of one import request.

    Args:
        request: What to import.
        config: ``models.consensus_min_votes``, ``import_max_side``, ``import_eval_fraction`` and
            ``import_val_fraction`` apply.
        taxonomy: The label vocabulary's source.

    Raises:
        ValueError: A malformed votes file.
        FileNotFoundError: The folder, a CSV or the images directory does not exist.
    """
    task = request.task
    vocab = label_vocabulary(task, taxonomy)
    if request.folder is not None:
        root = request.folder
        report = ImportReport(task=task, dataset=request.dataset or f"folder:{root}", source="folder")
        items, dropped = scan_folder(root, task, taxonomy)
        report.dropped.extend(dropped)
    else:
        images_dir = request.images_dir
        if images_dir is None or not images_dir.is_dir():
            raise FileNotFoundError(f"--images-dir: not a directory: {images_dir}")
        report = ImportReport(
            task=task,
            dataset=request.dataset or f"votes:{request.votes[0]}",
            source="votes",
            consensus_min_votes=config.models.consensus_min_votes,
        )
        votes = [v for p in request.votes for v in read_votes(p)]
        result = consensus(votes, vocab, config.models.consensus_min_votes)
        report.dropped.extend(result.dropped)
        report.votes_total, report.votes_unknown_label = result.votes_total, result.votes_unknown_label
        report.votes_superseded = result.votes_superseded
        items = []
        for image, (label, count) in sorted(result.accepted.items()):
            path = (images_dir / image).resolve()
            if not path.is_file():
                report.dropped.append(Dropped(image, MISSING_FILE, f"no file {path}"))
                continue
            items.append(Labelled(image, path, label, count))
    rows = build_rows(items, task, taxonomy, config, report)
    return rows, report
