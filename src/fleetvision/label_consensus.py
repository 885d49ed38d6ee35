"""Labels from people: the label vocabulary of each task and the consensus rule over votes (pure, no Spark).

A label is a vocabulary key of its task (:func:`label_vocabulary`): shot classes, groups, views without a
side and body types (``angle``), body types (``body``), ``banner``/``no_banner``, ``plate``/``no_plate``.
Angle labels may be coarse (:func:`angle_label_sets`): a shot class (``side_driver``), a group
(``exterior``, ``interior``, ``detail``), a view without its side (``front_3q``: either side), or a
body type alone (``suv``: the body head learns it, the angle head does not).

Votes (:func:`read_votes`: CSV rows ``image``, ``labeller``, ``label``) become labels by
:func:`consensus`: a photo's label counts when at least N labellers agree on it AND they are a strict
majority of the valid votes on that photo. Each labeller counts once per photo (their last vote wins);
votes for unknown labels are not counted (and reported); rows with an empty ``label`` are not votes.
Photos left out get a :class:`Dropped` with one of the reason codes below.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleetvision.taxonomy import GROUPS, Taxonomy

TASKS: tuple[str, ...] = ("angle", "banner", "plate", "body")

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
    key = normalise_label(label)
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


def normalise_label(label: str) -> str:
    """A label as written (``"Side Driver"``, ``front-3q``) -> its vocabulary key spelling (``side_driver``)."""
    return label.strip().lower().replace("-", "_").replace(" ", "_")


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
        label = vocabulary.get(normalise_label(v.label))
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
