"""``fleetvision import-labels``: your own labelled photos -> the ``training_images`` table.

Two layouts:

* ``--folder PATH``: one sub-folder per label, e.g. ``PATH/boot/*.jpg``, ``PATH/dashboard/*.jpg``.
  Labels are shot classes (``--task angle``, the default), body types (``--task body``),
  ``banner``/``no_banner`` (``--task banner``) or ``plate``/``no_plate`` (``--task plate``: presence
  only; the box stays unknown and does not train the box head).
* ``--votes votes.csv [more.csv ...] --images-dir PATH``: CSVs with columns ``image`` (path relative
  to ``--images-dir``; a ``file`` column, as ``fleetvision suggest-labels`` writes, works too),
  ``labeller``, ``label``: several people's votes (one CSV per labeller works: an empty ``labeller``
  is the CSV's file name). A photo's label counts when at least N labellers agree on it
  (N = ``models.consensus_min_votes``) AND they are a strict majority of the valid votes on that
  photo. Each labeller counts once per photo (their last vote wins); votes for unknown labels are
  not counted (and reported); rows with an empty ``label`` are not votes.

Angle labels may be coarse (:func:`angle_label_sets`): a shot class (``side_driver``), a group
(``exterior``, ``interior``, ``detail``), a view without its side (``front_3q``: either side), or a
body type alone (``suv``: the body head learns it, the angle head does not). A row stores the
classes its label allows in ``angle_allowed`` (a full label is a one-class set) and trains through
the partial-label loss (:mod:`fleetvision.models.losses`).

Photos are checked (they must decode), stored upright (EXIF orientation applied) and in RGB; photos
larger than ``models.import_max_side`` are shrunk (aspect kept). Anything else is stored byte for
byte. Each photo gets a stable split from a hash of its path (``models.import_eval_fraction`` go to
``eval``, ``import_val_fraction`` to ``val``, the rest to ``train``), so re-imports keep the frozen
eval set frozen. Rows are MERGEd by ``sample_id`` (a hash of the dataset, the photo's path and the
task), so an import can be re-run. A JSON report lists every photo that was dropped and why.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from pyspark.sql import SparkSession

from fleetvision.config import Config
from fleetvision.taxonomy import GROUPS, Taxonomy, load_taxonomy

logger = logging.getLogger(__name__)

NEEDS_SPARK = True

TASKS: tuple[str, ...] = ("angle", "banner", "plate", "body")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_KEEP_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
_WRITE_CHUNK = 500

# Why a photo was dropped (the report's reason codes).
UNKNOWN_LABEL = "unknown_label"
TOO_FEW_VOTES = "too_few_votes"
NO_MAJORITY = "no_majority"
MISSING_FILE = "missing_file"
NOT_IMAGE = "not_an_image"
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Dropped:
    """A photo (or a folder) left out, and why."""

    image: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Labelled:
    """A photo with its accepted label.

    Attributes:
        image: Path relative to the import root (the stable identity of the photo).
        path: Absolute path.
        label: The label, as written by the user (a vocabulary key).
        votes: Agreeing votes (votes import) or 0 (folder import).
    """

    image: str
    path: Path
    label: str
    votes: int = 0


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


# ----------------------------------------------------------------------------------------- labels
def _view_name(a: str, b: str) -> str:
    """The name two mirror partners share, without their side: ``front_3q`` for
    ``front_3q_driver``/``front_3q_passenger`` (or ``..._left``/``..._right``)."""
    common: list[str] = []
    for x, y in zip(a.split("_"), b.split("_"), strict=False):
        if x != y:
            break
        common.append(x)
    return "_".join(common)


def angle_label_sets(taxonomy: Taxonomy) -> dict[str, tuple[int, ...]]:
    """Every angle label a labeller may give -> the class indices it allows (sorted).

    The one place a label string becomes a set of classes: each class name allows itself; each
    group (``exterior``, ``interior``, ``detail``) allows its classes; each pair of mirror partners
    adds a view without a side (their shared name prefix, e.g. ``side`` for ``side_driver`` and
    ``side_passenger``) that allows both. Names come from the taxonomy, so renamed sides (flank
    classes) change the views with them.

    Raises:
        ValueError: A group or view name collides with a class name.
    """
    sets: dict[str, tuple[int, ...]] = {c.name: (c.index,) for c in taxonomy.classes}
    derived: dict[str, tuple[int, ...]] = {}
    for group in GROUPS:
        members = tuple(sorted(c.index for c in taxonomy.classes if c.group == group))
        if members:
            derived[group] = members
    for c in taxonomy.classes:
        if c.mirror is None:
            continue
        view = _view_name(c.name, c.mirror)
        if view and view != c.name:
            derived[view] = tuple(sorted({c.index, taxonomy.index(c.mirror)}))
    clash = sorted(set(derived) & set(sets))
    if clash:
        raise ValueError(f"taxonomy: coarse angle label(s) {clash} are also class names")
    return {**sets, **derived}


def allowed_angle_classes(label: str, taxonomy: Taxonomy) -> tuple[int, ...]:
    """The class indices an angle label allows (see :func:`angle_label_sets`); () for a body type.

    Raises:
        KeyError: The label is neither an angle label nor a body type.
    """
    key = _normalise(label)
    sets = {k.lower(): v for k, v in angle_label_sets(taxonomy).items()}
    if key in sets:
        return sets[key]
    if key in {b.lower() for b in taxonomy.body_types}:
        return ()
    raise KeyError(f"unknown angle label {label!r}; known: {', '.join(sorted(sets))} or a body type")


def label_vocabulary(task: str, taxonomy: Taxonomy) -> dict[str, str]:
    """Accepted label spellings (lower case) -> canonical label for a task.

    For ``angle``: shot classes, groups, views without a side and body types (a body label alone).

    Raises:
        ValueError: Unknown task.
    """
    if task == "angle":
        vocab = {b.lower(): b for b in taxonomy.body_types}
        clash = sorted(set(vocab) & {n.lower() for n in angle_label_sets(taxonomy)})
        if clash:
            raise ValueError(f"taxonomy: body type(s) {clash} are also angle labels")
        vocab.update({n.lower(): n for n in angle_label_sets(taxonomy)})
        return vocab
    if task == "body":
        return {b.lower(): b for b in taxonomy.body_types}
    if task == "banner":
        return {"banner": "banner", "no_banner": "no_banner", "yes": "banner", "no": "no_banner"}
    if task == "plate":
        return {"plate": "plate", "no_plate": "no_plate", "yes": "plate", "no": "no_plate"}
    raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def _normalise(label: str) -> str:
    return label.strip().lower().replace("-", "_").replace(" ", "_")


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
        label = vocab.get(_normalise(parts[0]))
        if label is None:
            dropped.append(Dropped(rel, UNKNOWN_LABEL, f"folder {parts[0]!r} is not a {task} label"))
            continue
        kept.append(Labelled(rel, path, label))
    return kept, dropped


@dataclass(frozen=True)
class Vote:
    """One row of a votes CSV."""

    image: str
    labeller: str
    label: str


def read_votes(csv_path: Path) -> list[Vote]:
    """Read ``image,labeller,label`` rows (extra columns are ignored; blank rows skipped).

    The photo column may be ``file`` instead of ``image`` (the CSV ``fleetvision suggest-labels``
    writes). An empty ``labeller`` is the CSV's file name without its suffix (one CSV per labeller);
    a row with an empty ``label`` was not labelled and is not a vote.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: A required column is missing (named).
    """
    if not csv_path.is_file():
        raise FileNotFoundError(f"--votes: no such file {csv_path}")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        image_col = "image" if "image" in header or "file" not in header else "file"
        missing = [c for c in (image_col, "labeller", "label") if c not in header]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {missing}; expected image, labeller, label")
        reader.fieldnames = header
        return [
            Vote(row[image_col].strip(), (row.get("labeller") or "").strip() or csv_path.stem, row["label"].strip())
            for row in reader
            if (row.get(image_col) or "").strip() and (row.get("label") or "").strip()
        ]


@dataclass(frozen=True)
class ConsensusResult:
    """Accepted labels, dropped photos and vote statistics of a consensus pass."""

    accepted: dict[str, tuple[str, int]]  # image -> (label, agreeing votes)
    dropped: list[Dropped]
    votes_total: int
    votes_unknown_label: int
    votes_superseded: int


def consensus(votes: Sequence[Vote], vocabulary: Mapping[str, str], min_votes: int) -> ConsensusResult:
    """Apply the consensus rule to each photo's votes.

    A label is accepted when at least ``min_votes`` distinct labellers chose it AND they are a strict
    majority of the photo's valid votes. Each labeller counts once per photo (their last vote).

    Args:
        votes: All votes, in file order.
        vocabulary: Accepted spellings -> canonical label (:func:`label_vocabulary`).
        min_votes: N, ``models.consensus_min_votes``.

    Raises:
        ValueError: ``min_votes`` < 1.
    """
    if min_votes < 1:
        raise ValueError(f"consensus: min_votes must be >= 1, got {min_votes}")
    latest: dict[str, dict[str, str]] = {}
    unknown = superseded = 0
    unknown_images: dict[str, set[str]] = {}
    for v in votes:
        label = vocabulary.get(_normalise(v.label))
        if label is None:
            unknown += 1
            unknown_images.setdefault(v.image, set()).add(v.label)
            latest.setdefault(v.image, {})
            continue
        per_image = latest.setdefault(v.image, {})
        if v.labeller in per_image:
            superseded += 1
        per_image[v.labeller] = label
    accepted: dict[str, tuple[str, int]] = {}
    dropped: list[Dropped] = []
    for image, by_labeller in sorted(latest.items()):
        tally = Counter(by_labeller.values())
        total = sum(tally.values())
        if total == 0:
            dropped.append(
                Dropped(image, UNKNOWN_LABEL, f"no valid votes (unknown labels: {sorted(unknown_images[image])})")
            )
            continue
        (top, count), *rest = tally.most_common()
        desc = ", ".join(f"{k}={n}" for k, n in tally.most_common())
        if count < min_votes:
            dropped.append(
                Dropped(image, TOO_FEW_VOTES, f"best label {top!r} has {count} of {min_votes} votes needed ({desc})")
            )
        elif count * 2 <= total or (rest and rest[0][1] == count):
            dropped.append(
                Dropped(image, NO_MAJORITY, f"{top!r} has {count} of {total} votes, not a majority ({desc})")
            )
        else:
            accepted[image] = (top, count)
    return ConsensusResult(accepted, dropped, len(votes), unknown, superseded)


# ----------------------------------------------------------------------------------------- photos
def prepare_photo(path: Path, max_side: int) -> tuple[bytes | None, str]:
    """The bytes to store for a photo, or None and why not.

    Returns the file's bytes unchanged when it is an upright RGB/greyscale JPEG, PNG or WebP no larger
    than ``max_side``; otherwise the photo re-encoded upright, RGB and shrunk (JPEG quality 95).

    Returns:
        (bytes or None, detail): detail says what was done or why it failed.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        return None, f"{MISSING_FILE}: {e}"
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
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
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
) -> list[dict[str, Any]]:
    """Read, check and convert each accepted photo into a row; failures go to the report."""
    rows: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    m = config.models
    for item in items:
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
        split = split_for(item.image, m.import_eval_fraction, m.import_val_fraction)
        rows.append(
            training_row(item, content, task, taxonomy, dataset=report.dataset, split=split, source=report.source)
        )
        report.by_label[item.label] = report.by_label.get(item.label, 0) + 1
        report.by_split[split] = report.by_split.get(split, 0) + 1
    report.accepted = len(rows)
    return rows


def plan_import(
    args: argparse.Namespace, config: Config, taxonomy: Taxonomy
) -> tuple[list[dict[str, Any]], ImportReport]:
    """The rows to write and the report, from the command-line arguments (no Spark).

    Raises:
        ValueError: Bad argument combination or a malformed votes file.
        FileNotFoundError: The folder, CSV or images directory does not exist.
    """
    task = args.task
    vocab = label_vocabulary(task, taxonomy)
    if args.folder is not None:
        root = Path(args.folder).expanduser().resolve()
        report = ImportReport(task=task, dataset=args.dataset or f"folder:{root}", source="folder")
        items, dropped = scan_folder(root, task, taxonomy)
        report.dropped.extend(dropped)
    else:
        if args.images_dir is None:
            raise ValueError("--votes needs --images-dir (the folder the CSV's image paths are relative to)")
        csv_paths = [Path(v).expanduser().resolve() for v in _as_list(args.votes)]
        csv_path = csv_paths[0]
        images_dir = Path(args.images_dir).expanduser().resolve()
        if not images_dir.is_dir():
            raise FileNotFoundError(f"--images-dir: not a directory: {images_dir}")
        report = ImportReport(
            task=task,
            dataset=args.dataset or f"votes:{csv_path}",
            source="votes",
            consensus_min_votes=config.models.consensus_min_votes,
        )
        votes = [v for p in csv_paths for v in read_votes(p)]
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


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


# -------------------------------------------------------------------------------------------- job
def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--folder", help="a folder with one sub-folder of photos per label")
    src.add_argument(
        "--votes",
        nargs="+",
        help="CSV(s) of votes: image (or file), labeller, label; several labellers' CSVs are pooled",
    )
    parser.add_argument("--images-dir", help="with --votes: the folder the CSV's image paths are relative to")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="angle",
        help="what the labels are (default: angle: a shot class, a group, a view without a side or a body type)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="dataset name for the rows (default folder:<path> or votes:<csv>); "
        "train on it with --set models.training_dataset=<name>",
    )
    parser.add_argument(
        "--report", type=Path, default=None, help="report JSON (default <paths.reports>/import-labels-<time>.json)"
    )


def write_rows(spark: SparkSession, config: Config, rows: Sequence[dict[str, Any]], run_id: str) -> None:
    """MERGE the rows into ``training_images`` (created if missing), a chunk at a time."""
    from fleetvision.tables import TRAINING_IMAGES, ensure_table, merge_upsert

    ensure_table(spark, config.tables.database, TRAINING_IMAGES)
    for start in range(0, len(rows), _WRITE_CHUNK):
        df = spark.createDataFrame(list(rows[start : start + _WRITE_CHUNK]), schema=TRAINING_IMAGES.schema)
        merge_upsert(spark, config.tables.database, TRAINING_IMAGES, df, run_id=run_id)


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run the job; 0 when photos were imported, 1 when none passed, 2 on bad arguments or files."""
    if spark is None:
        raise ValueError("fleetvision import-labels needs a SparkSession")
    taxonomy = load_taxonomy()
    try:
        rows, report = plan_import(args, config, taxonomy)
    except (ValueError, FileNotFoundError) as e:
        logger.error("fleetvision import-labels: %s", e)
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report_path = args.report or config.paths.resolve("reports") / f"import-labels-{stamp}.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(report.to_json())
    for d in report.dropped[:20]:
        logger.info("dropped %s: %s %s", d.image, d.reason, d.detail)
    if not rows:
        logger.error("%s; nothing written. Report: %s", report.summary(), report_path)
        return 1
    write_rows(spark, config, rows, run_id=f"import-labels-{stamp}")
    logger.info(
        "%s. Written to %s.training_images (dataset %r). Report: %s",
        report.summary(),
        config.tables.database,
        report.dataset,
        report_path,
    )
    return 0
