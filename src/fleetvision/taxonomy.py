"""The shot taxonomy: the classes the angle model predicts, loaded from the package's ``taxonomy.yaml``.

The file ships in the package (``fleetvision/resources/taxonomy.yaml``); ``conf/taxonomy.yaml`` is its
copy for readers, kept equal by a test.

One frozen object shared by the generator, the models and the scorer, so that a class index means
the same thing everywhere. The taxonomy is data: a market that needs another class edits the YAML.

Two vocabularies name the same classes, index for index:

* market names (``front_3q_driver``, ``side_passenger``, ...): what tags, completeness, hero picks,
  configs and labels say; driver and passenger side depend on the market's ``market.driver_side``.
* flank names (``front_3q_right``, ``side_left``, ...): what the angle model predicts: the car's own
  flank, the same in every market. The car's left is the left of someone sitting in it facing forward.

Under right-hand drive (``driver_side="right"``, the driver sits on the car's right) the driver side is
the right flank, so market index ``i`` and flank index ``i`` are the same class: angle models trained
before flank classes existed (all right-hand drive) mean the same flank classes, index for index.
Under left-hand drive a sided class's flank index is its mirror partner's index
(:meth:`Taxonomy.flank_permutation`). :func:`market_to_flank` and :func:`flank_to_market` map names.
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
Flank = Literal["left", "right"]
DriverSide = Literal["left", "right"]
DRIVER_SIDES: tuple[DriverSide, ...] = ("left", "right")
FLANK_SUFFIX: dict[str, Flank] = {"_left": "left", "_right": "right"}
# The flank each side is under right-hand drive: the order of the model's softmax (module docstring).
_FLANK_OF_SIDE_RHD: dict[str, Flank] = {"driver": "right", "passenger": "left"}
GROUPS: tuple[Group, ...] = ("exterior", "interior", "detail")



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
        flank_class: The angle model's name for softmax index ``index`` (``front_3q_right``): for a
            sided class, the flank its side is under right-hand drive; else ``name``.
    """

    name: str
    index: int
    group: Group
    mirror: str | None
    plate_visible: bool
    required: bool
    side: Side | None
    flank_class: str = ""

    def __post_init__(self) -> None:
        if not self.flank_class:
            object.__setattr__(self, "flank_class", self.name)

    @property
    def flank(self) -> Flank | None:
        """The car flank of ``flank_class`` (``left``/``right``), None for an unsided class."""
        for suffix, flank in FLANK_SUFFIX.items():
            if self.side is not None and self.flank_class.endswith(suffix):
                return flank
        return None


def _check_driver_side(driver_side: str) -> DriverSide:
    if driver_side not in DRIVER_SIDES:
        raise ValueError(f"driver_side must be one of {DRIVER_SIDES}, got {driver_side!r}")
    return driver_side  # type: ignore[return-value]


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
            if c.side is None:
                if c.flank_class != c.name:
                    raise ValueError(f"taxonomy class {c.name!r}: flank_class is only for sided classes")
                continue
            want = _FLANK_OF_SIDE_RHD.get(c.side)
            if want is None:
                raise ValueError(f"taxonomy class {c.name!r}: side {c.side!r} is not driver, passenger or null")
            if c.mirror is None or by_name[c.mirror].side == c.side:
                raise ValueError(f"taxonomy class {c.name!r}: a sided class needs a mirror on the other side")
            if c.flank != want:
                raise ValueError(
                    f"taxonomy class {c.name!r}: side {c.side} needs a flank_class ending _{want} (the flank "
                    f"it is under right-hand drive, the softmax order), got {c.flank_class!r}"
                )
        flank_names = [c.flank_class for c in self.classes]
        if len(set(flank_names)) != len(flank_names):
            repeated = sorted({n for n in flank_names if flank_names.count(n) > 1})
            raise ValueError(f"taxonomy flank_class names repeat: {repeated}")
        clash = {c.flank_class for c in self.classes if c.side is not None} & set(names)
        if clash:
            raise ValueError(f"taxonomy flank_class names {sorted(clash)} are also market class names")
        if len(set(self.body_types)) != len(self.body_types) or not self.body_types:
            raise ValueError("taxonomy body_types must be a non-empty list of unique names")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def flank_names(self) -> tuple[str, ...]:
        """The angle model's vocabulary: softmax index ``i`` is the flank class ``flank_names[i]``."""
        return tuple(c.flank_class for c in self.classes)

    def flank_permutation(self, driver_side: str) -> tuple[int, ...]:
        """Index map between the vocabularies: market index ``i`` is flank index ``p[i]``, and back.

        The identity under right-hand drive; under left-hand drive each sided class swaps with its
        mirror partner (the driver side is then the car's left). An involution: ``p[p[i]] == i``.

        Raises:
            ValueError: ``driver_side`` is not ``left`` or ``right``.
        """
        if _check_driver_side(driver_side) == "right":
            return tuple(range(self.num_classes))
        return tuple(self.index(c.mirror) if c.side is not None and c.mirror else c.index for c in self.classes)

    def market_names(self, driver_side: str) -> tuple[str, ...]:
        """Market name of each flank index: ``market_names(d)[j]`` is what flank class ``j`` is called
        in a market with driver side ``d`` (the tag written for an angle softmax argmax ``j``)."""
        return tuple(self.names[i] for i in self.flank_permutation(driver_side))

    @cached_property
    def _by_name(self) -> dict[str, ShotClass]:
        return {c.name: c for c in self.classes}

    @cached_property
    def _by_flank_name(self) -> dict[str, ShotClass]:
        return {c.flank_class: c for c in self.classes}

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

    def market_to_flank(self, name: str, driver_side: str) -> str:
        """The flank class a market-named class is: ``side_driver`` -> ``side_right`` under right-hand drive,
        ``side_left`` under left-hand drive; unsided classes keep their name.

        Raises:
            KeyError: ``name`` is not a market class name.
            ValueError: ``driver_side`` is not ``left`` or ``right``.
        """
        return self.flank_names[self.flank_permutation(driver_side)[self.index(name)]]

    def flank_to_market(self, flank_class: str, driver_side: str) -> str:
        """The market name of a flank class: ``side_right`` -> ``side_driver`` under right-hand drive,
        ``side_passenger`` under left-hand drive; unsided classes keep their name.

        Raises:
            KeyError: ``flank_class`` is not in :attr:`flank_names`.
            ValueError: ``driver_side`` is not ``left`` or ``right``.
        """
        cls = self._by_flank_name.get(flank_class)
        if cls is None:
            raise KeyError(f"unknown flank class {flank_class!r}; known: {', '.join(self.flank_names)}")
        return self.market_names(driver_side)[cls.index]

    def body_index(self, body_type: str) -> int:
        try:
            return self.body_types.index(body_type)
        except ValueError:
            raise KeyError(f"unknown body type {body_type!r}; known: {', '.join(self.body_types)}") from None


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read and validate a taxonomy YAML file.

    Args:
        path: The YAML file; defaults to the one shipped in the package (same as ``conf/taxonomy.yaml``).

    Returns:
        The validated taxonomy.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a valid taxonomy (the message names the class and field).
    """
    if path is None:
        from fleetvision.resources import TAXONOMY, resource_path

        path = resource_path(TAXONOMY)
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"taxonomy file not found: {p}")
    raw = yaml.safe_load(p.read_text())
    if not isinstance(raw, dict) or "classes" not in raw or "body_types" not in raw:
        raise ValueError(f"{p}: a taxonomy needs top-level 'classes' and 'body_types'")
    required = {"name", "group", "mirror", "plate_visible", "required", "side"}
    allowed = required | {"flank_class"}
    classes = []
    for i, entry in enumerate(raw["classes"]):
        extra = set(entry) - allowed
        if extra:
            raise ValueError(f"{p}: class #{i} ({entry.get('name')!r}) has unknown keys {sorted(extra)}")
        missing = required - set(entry)
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
                flank_class=str(entry.get("flank_class") or ""),
            )
        )
    return Taxonomy(classes=tuple(classes), body_types=tuple(raw["body_types"]), version=int(raw.get("version", 1)))
