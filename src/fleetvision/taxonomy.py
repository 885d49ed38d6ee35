"""The shot taxonomy: the classes the angle model predicts, loaded from ``conf/taxonomy.yaml``.

One frozen object shared by the generator, the models and the scorer, so that a class index means
the same thing everywhere. The taxonomy is data: a market that needs another class edits the YAML.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml

logger = logging.getLogger(__name__)

Group = Literal["exterior", "interior", "detail"]
Side = Literal["driver", "passenger"]
GROUPS: tuple[Group, ...] = ("exterior", "interior", "detail")

DEFAULT_TAXONOMY_PATH = Path(__file__).resolve().parents[2] / "conf" / "taxonomy.yaml"


@dataclass(frozen=True)
class ShotClass:
    """One shot class.

    Attributes:
        name: Stable identifier, used in tables and model outputs.
        index: Position in the model's softmax.
        group: ``exterior``, ``interior`` or ``detail``.
        mirror: Name of the class that is this one's mirror image, or None.
        plate_visible: Whether a licence plate can appear in this shot.
        required: Whether a complete listing should have this shot.
        side: ``driver``/``passenger`` for side-specific exterior shots, else None.
    """

    name: str
    index: int
    group: Group
    mirror: str | None
    plate_visible: bool
    required: bool
    side: Side | None


@dataclass(frozen=True)
class Taxonomy:
    """The ordered shot classes and body types."""

    classes: tuple[ShotClass, ...]
    body_types: tuple[str, ...]
    version: int = 1

    def __post_init__(self) -> None:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"taxonomy has duplicate class names: {sorted(n for n in names if names.count(n) > 1)}")
        by_name = {c.name: c for c in self.classes}
        for c in self.classes:
            if c.group not in GROUPS:
                raise ValueError(f"taxonomy class {c.name!r}: group {c.group!r} is not one of {GROUPS}")
            if c.mirror is not None:
                partner = by_name.get(c.mirror)
                if partner is None:
                    raise ValueError(f"taxonomy class {c.name!r}: mirror {c.mirror!r} is not a class")
                if partner.mirror != c.name:
                    raise ValueError(f"taxonomy class {c.name!r}: mirror {c.mirror!r} does not point back")
        if len(set(self.body_types)) != len(self.body_types) or not self.body_types:
            raise ValueError("taxonomy body_types must be a non-empty list of unique names")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @cached_property
    def _by_name(self) -> dict[str, ShotClass]:
        return {c.name: c for c in self.classes}

    def __getitem__(self, name: str) -> ShotClass:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown shot class {name!r}; known: {', '.join(self.names)}") from None

    def index(self, name: str) -> int:
        return self[name].index

    def in_group(self, group: Group) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes if c.group == group)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes if c.required)

    @property
    def mirror_pairs(self) -> tuple[tuple[str, str], ...]:
        """Each (driver-side, passenger-side) pair once."""
        return tuple((c.name, c.mirror) for c in self.classes if c.mirror is not None and c.side == "driver")

    @cached_property
    def flip_permutation(self) -> tuple[int, ...]:
        """Index map for a horizontal flip: ``flip_permutation[i]`` is the label of class ``i`` mirrored."""
        return tuple(self.index(c.mirror) if c.mirror else c.index for c in self.classes)

    def body_index(self, body_type: str) -> int:
        try:
            return self.body_types.index(body_type)
        except ValueError:
            raise KeyError(f"unknown body type {body_type!r}; known: {', '.join(self.body_types)}") from None


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read and validate a taxonomy YAML file.

    Args:
        path: The YAML file; defaults to the repository's ``conf/taxonomy.yaml``.

    Returns:
        The validated taxonomy.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a valid taxonomy (the message names the class and field).
    """
    p = Path(path) if path is not None else DEFAULT_TAXONOMY_PATH
    if not p.exists():
        raise FileNotFoundError(f"taxonomy file not found: {p}")
    raw = yaml.safe_load(p.read_text())
    if not isinstance(raw, dict) or "classes" not in raw or "body_types" not in raw:
        raise ValueError(f"{p}: a taxonomy needs top-level 'classes' and 'body_types'")
    allowed = {"name", "group", "mirror", "plate_visible", "required", "side"}
    classes = []
    for i, entry in enumerate(raw["classes"]):
        extra = set(entry) - allowed
        if extra:
            raise ValueError(f"{p}: class #{i} ({entry.get('name')!r}) has unknown keys {sorted(extra)}")
        missing = allowed - set(entry)
        if missing:
            raise ValueError(f"{p}: class #{i} ({entry.get('name')!r}) lacks keys {sorted(missing)}")
        classes.append(
            ShotClass(
                name=str(entry["name"]),
                index=i,
                group=entry["group"],
                mirror=entry["mirror"],
                plate_visible=bool(entry["plate_visible"]),
                required=bool(entry["required"]),
                side=entry["side"],
            )
        )
    return Taxonomy(classes=tuple(classes), body_types=tuple(raw["body_types"]), version=int(raw.get("version", 1)))
