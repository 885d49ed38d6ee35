"""The nightly scoring job: photo tags, listing completeness, hero picks and their checks.

The pure core (no Spark) lives in :mod:`fleetvision.decode`, :mod:`fleetvision.quality` and the
modules ``tags``, ``completeness``, ``hero``, ``checks``, ``lease_decision``, ``report_html`` and
``report_charts`` here; the Spark wiring is ``job`` (the CLI entry), ``run`` (the orchestration) and its
stages (``work``, ``image_stages``, ``listing_stage``, ``dq_stage``, ``ledger``, ``mlflow_record``), with
``udf``, ``staging``, ``lease`` and ``report`` (the report job). The core's settings travel as one
small frozen :class:`ScoringRules`, built once on the driver from ``config.scoring`` and the taxonomy,
so UDF closures never capture the config.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from fleetvision.config import ScoringConfig
    from fleetvision.taxonomy import Taxonomy

RULES_FORMAT = 1
"""Bumped when the scoring logic changes in a way the rules' values do not show."""

COMPONENTS: tuple[str, ...] = ("required_shots", "photo_count", "banner_free", "quality", "no_failures")
"""The completeness components, each 0-1; ``completeness_score`` is their weighted mean x 100."""


@dataclass(frozen=True)
class ScoringRules:
    """Everything the pure scoring functions need to know, resolved and checked against the taxonomy.

    Build with :meth:`from_config`. Small and picklable: ship it to UDFs. Field meanings are those of
    the same-named ``ScoringConfig`` fields (``docs/scoring.md``).
    """

    banner_threshold: float
    plate_threshold: float
    required_shots: tuple[str, ...]
    target_photos: int
    completeness_weights: tuple[tuple[str, float], ...]
    sharpness_good: float
    brightness_low: float
    brightness_high: float
    body_min_score: float
    body_mismatch_reason: bool
    hero_preference: tuple[str, ...]
    hero_min_angle_score: float
    gallery_exterior_order: tuple[str, ...]
    gallery_hero_first: bool
    max_decode_error_rate: float
    min_scored_share: float
    max_angle_drift: float
    drift_metric: Literal["tvd", "psi"]
    drift_min_images: int
    driver_side: Literal["left", "right"] = "right"
    plate_flank_strength: float = 0.0
    plate_flank_outlier_rate: float = 0.0
    flank_symmetry: bool = False
    plate_symmetry: bool = False

    @classmethod
    def from_config(cls, scoring: ScoringConfig, taxonomy: Taxonomy, *, driver_side: str = "right") -> ScoringRules:
        """Resolve ``config.scoring`` against the taxonomy.

        ``driver_side`` (``config.market.driver_side``) names the angle model's flank classes in market
        terms when tags are written: under right-hand drive the car's right flank is the driver side.

        ``required_shots`` None becomes the taxonomy's required classes. Exterior classes missing from
        ``gallery_exterior_order`` are appended in taxonomy order, so a class added to the taxonomy is
        never dropped from galleries.

        Raises:
            ValueError: ``driver_side`` is not ``left`` or ``right``.
            ValueError: A shot name in ``required_shots``, ``hero_preference`` or
                ``gallery_exterior_order`` is not a taxonomy class (or, for the gallery, not exterior),
                or a list repeats a name. The message names the key and the value.
        """
        if driver_side not in ("left", "right"):
            raise ValueError(f"market.driver_side must be 'left' or 'right', got {driver_side!r}")
        known = set(taxonomy.names)
        exterior = taxonomy.in_group("exterior")

        def check(key: str, names: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
            names = tuple(names)
            allowed_set = set(allowed)
            bad = [n for n in names if n not in allowed_set]
            if bad:
                what = "exterior shot classes" if allowed_set != known else "taxonomy classes"
                raise ValueError(f"scoring.{key}: {bad} are not {what}; known: {sorted(allowed_set)}")
            if len(set(names)) != len(names):
                raise ValueError(f"scoring.{key}: repeats a name: {list(names)}")
            return names

        required = taxonomy.required if scoring.required_shots is None else scoring.required_shots
        gallery = check("gallery_exterior_order", scoring.gallery_exterior_order, exterior)
        gallery = gallery + tuple(n for n in exterior if n not in gallery)
        return cls(
            banner_threshold=scoring.banner_threshold,
            plate_threshold=scoring.plate_threshold,
            required_shots=check("required_shots", required, known),
            target_photos=scoring.target_photos,
            completeness_weights=tuple((k, float(scoring.completeness_weights.get(k, 0.0))) for k in COMPONENTS),
            sharpness_good=scoring.sharpness_good,
            brightness_low=scoring.brightness_low,
            brightness_high=scoring.brightness_high,
            body_min_score=scoring.body_min_score,
            body_mismatch_reason=scoring.body_mismatch_reason,
            hero_preference=check("hero_preference", scoring.hero_preference, known),
            hero_min_angle_score=scoring.hero_min_angle_score,
            gallery_exterior_order=gallery,
            gallery_hero_first=scoring.gallery_hero_first,
            max_decode_error_rate=scoring.max_decode_error_rate,
            min_scored_share=scoring.min_scored_share,
            max_angle_drift=scoring.max_angle_drift,
            drift_metric=scoring.drift_metric,
            drift_min_images=scoring.drift_min_images,
            driver_side=driver_side,  # type: ignore[arg-type]
            plate_flank_strength=scoring.plate_flank_strength,
            plate_flank_outlier_rate=scoring.plate_flank_outlier_rate,
            flank_symmetry=scoring.flank_symmetry,
            plate_symmetry=scoring.plate_symmetry,
        )

    @classmethod
    def default(cls, taxonomy: Taxonomy, *, driver_side: str = "right") -> ScoringRules:
        """The rules for the default ``ScoringConfig`` (and a market with driver side ``driver_side``)."""
        from fleetvision.config import ScoringConfig

        return cls.from_config(ScoringConfig(), taxonomy, driver_side=driver_side)

    @property
    def flank_cue(self) -> tuple[float, float]:
        """``(plate_flank_strength, plate_flank_outlier_rate)``: the plate-position flank cue's setting
        (:mod:`fleetvision.scoring.plate_flank`), as tags apply it and the prediction cache is keyed by it;
        a strength of 0 turns the cue off."""
        return (self.plate_flank_strength, self.plate_flank_outlier_rate)

    @property
    def weights(self) -> Mapping[str, float]:
        return dict(self.completeness_weights)

    @property
    def version(self) -> str:
        """``"<RULES_FORMAT>.<hash>"``: changes whenever a rule changes; written to ``scorer_version``."""
        payload = json.dumps(asdict(self), sort_keys=True, default=list)
        return f"{RULES_FORMAT}.{hashlib.sha256(payload.encode()).hexdigest()[:10]}"

    def replace(self, **changes: object) -> ScoringRules:
        """A copy with some fields changed (tests and what-if analyses)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"ScoringRules has no field(s) {sorted(unknown)}")
        return type(self)(**{**asdict(self), **changes})  # type: ignore[arg-type]
