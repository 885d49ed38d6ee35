"""tf.data stages for training: decode, resize, augment, and targets with loss masks.

Everything here is TensorFlow ops mapped over a dataset (no Python per row), so it runs in
tf.data's own threads. The source dataset is whatever yields :data:`EXAMPLE_KEYS` dicts: the
petastorm feed (:mod:`fleetvision.feed`) in the jobs, ``from_tensor_slices`` in tests.

Decoding reproduces the scoring decoder (:func:`fleetvision.decode.decode_photo`) pixel for pixel
up to rounding (max difference 1 grey level, checked in tests): for a JPEG the same libjpeg DCT-domain
reduction Pillow's ``draft`` picks (the largest of 1/8, 1/4, 1/2 that keeps both sides >= S), then
an antialiased bilinear resize of the whole photo to S x S (aspect ratio squashed, no letterbox),
which is what Pillow's ``BILINEAR`` does when it shrinks. EXIF orientation is not applied here:
``fleetvision import-labels`` stores photos upright and the synthetic generator writes none.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from fleetvision.models.spec import TrainSpec

EXAMPLE_KEYS: tuple[str, ...] = (
    "content",
    "angle_index",
    "has_banner",
    "plate_present",
    "box",
    "box_known",
    "body_index",
)
"""Keys of a source element: content (encoded bytes), labels (-1 = unknown), box float32 [4].

A source may also carry ``row_weight`` (float32: every output's sample weight is multiplied by it;
1.0 when absent: :func:`targets`) and ``angle_mask`` (int64 bitmask of the angle classes a coarse label allows,
bit i = class i, 0 = none: :func:`fleetvision.feed.training_frame`); without it the allowed set is
``angle_index`` alone. :func:`with_angle_allowed` turns either into the float mask ``angle_allowed``.
"""

MAX_MASK_CLASSES = 63
"""An int64 bitmask holds the allowed set of at most 63 classes."""

_DRAFT_SCALES = (8, 4, 2, 1)
CROP_PROBABILITY = 0.3
AUGMENTATION = "flip-crop0.88-jitter-v1"
"""Names what :func:`augment_example` does; part of the feature cache's key, so change it with the code."""


def decode_resize(content: tf.Tensor, size: int) -> tf.Tensor:
    """Encoded image bytes -> uint8 [size, size, 3], the way the scoring decoder does it.

    Args:
        content: Scalar tf.string with JPEG, PNG, GIF, BMP or WebP bytes.
        size: Output side S.

    Returns:
        uint8 [S, S, 3] RGB.
    """

    def jpeg() -> tf.Tensor:
        shape = tf.io.extract_jpeg_shape(content)
        scale = tf.minimum(shape[0] // size, shape[1] // size)
        branch = tf.reduce_sum(tf.cast(scale < tf.constant(_DRAFT_SCALES[:-1]), tf.int32))
        decoders = [
            (lambda r=r: tf.io.decode_jpeg(content, channels=3, ratio=r, dct_method="INTEGER_ACCURATE"))
            for r in _DRAFT_SCALES
        ]
        return tf.switch_case(branch, decoders)

    def other() -> tf.Tensor:
        return tf.io.decode_image(content, channels=3, expand_animations=False)

    image = tf.cond(tf.io.is_jpeg(content), jpeg, other)
    image = tf.ensure_shape(image, [None, None, 3])
    resized = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def decode_example(example: dict[str, tf.Tensor], size: int) -> dict[str, tf.Tensor]:
    """Replace ``content`` by the decoded ``image`` (uint8 [S, S, 3])."""
    out = {k: v for k, v in example.items() if k != "content"}
    out["image"] = decode_resize(example["content"], size)
    return out


def with_angle_allowed(example: dict[str, tf.Tensor], num_classes: int) -> dict[str, tf.Tensor]:
    """Add ``angle_allowed`` (float32 [C], 1 = the label allows the class) and drop ``angle_mask``.

    From the ``angle_mask`` bitmask when the example has one, else one-hot of ``angle_index``
    (all zeros for -1: no angle label).

    Raises:
        ValueError: ``num_classes`` is over :data:`MAX_MASK_CLASSES`.
    """
    if num_classes > MAX_MASK_CLASSES:
        raise ValueError(f"angle_mask holds at most {MAX_MASK_CLASSES} classes, the taxonomy has {num_classes}")
    out = {k: v for k, v in example.items() if k != "angle_mask"}
    if "angle_mask" in example:
        bits = tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.range(num_classes, dtype=tf.int64))
        mask = tf.bitwise.bitwise_and(tf.cast(example["angle_mask"], tf.int64), bits) != 0
        out["angle_allowed"] = tf.cast(mask, tf.float32)
    else:
        out["angle_allowed"] = tf.one_hot(example["angle_index"], num_classes, dtype=tf.float32)
    return out


def flip_example(
    example: dict[str, tf.Tensor], flip_permutation: Sequence[int], swap_labels: bool
) -> dict[str, tf.Tensor]:
    """Mirror the photo left-right; mirror the plate box; optionally swap mirror-partner labels.

    Args:
        example: A decoded example (``image``, ``angle_index``, ``box``, ...).
        flip_permutation: ``taxonomy.flip_permutation``: class i seen in a mirror is class p[i].
        swap_labels: True: a left-flank shot becomes a right-flank shot (``angle_index`` is a flank
            class, :func:`fleetvision.feed.training_frame`; the truth for a mirrored photo).
            False: labels are kept (the flip-invariant recipe, for comparison only).
    """
    out = dict(example)
    out["image"] = tf.image.flip_left_right(example["image"])
    box = example["box"]
    out["box"] = tf.stack([1.0 - box[2], box[1], 1.0 - box[0], box[3]])
    if swap_labels:
        perm = tf.constant(list(flip_permutation), dtype=tf.int32)
        angle = example["angle_index"]
        out["angle_index"] = tf.where(angle >= 0, tf.gather(perm, tf.maximum(angle, 0)), angle)
        if "angle_allowed" in example:
            # the mirrored photo allows class p[i] where the photo allowed i (p is an involution)
            out["angle_allowed"] = tf.gather(example["angle_allowed"], perm)
    return out


def augment_example(
    example: dict[str, tf.Tensor], spec: TrainSpec, flip_permutation: Sequence[int], seed: tf.Tensor
) -> dict[str, tf.Tensor]:
    """Random flip (per ``spec.flip_mode``), brightness/contrast jitter and, at times, a mild zoom-crop.

    The crop keeps at least 88% of each side and moves the plate box with it (clipped), so box
    targets stay true.

    Args:
        example: A decoded example.
        spec: The training spec.
        flip_permutation: ``taxonomy.flip_permutation``.
        seed: int32 [2] stateless seed for this example.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=6)
    out = dict(example)
    if spec.flip_mode != "none":
        do_flip = tf.random.stateless_uniform([], seeds[0]) < 0.5
        swap = spec.flip_mode == "swap"
        out = tf.cond(
            do_flip,
            lambda: flip_example(out, flip_permutation, swap),
            lambda: dict(out),
        )
    image = tf.cast(out["image"], tf.float32)
    size = tf.shape(image)[0]
    # Zoom-crop, some of the time.
    do_crop = tf.random.stateless_uniform([], seeds[1]) < CROP_PROBABILITY
    frac = tf.where(do_crop, tf.random.stateless_uniform([], seeds[2], 0.88, 1.0), 1.0)
    off = tf.random.stateless_uniform([2], seeds[3]) * (1.0 - frac)
    y0, x0 = off[0], off[1]
    crop_box = tf.stack([y0, x0, y0 + frac, x0 + frac])
    image = tf.image.crop_and_resize(image[None], crop_box[None], [0], tf.stack([size, size]))[0]
    box = out["box"]
    moved = tf.stack([(box[0] - x0) / frac, (box[1] - y0) / frac, (box[2] - x0) / frac, (box[3] - y0) / frac])
    out["box"] = tf.where(out["box_known"] > 0, tf.clip_by_value(moved, 0.0, 1.0), box)
    # Photometric jitter.
    image = tf.image.stateless_random_brightness(image, 0.12 * 255.0, seeds[4])
    image = tf.image.stateless_random_contrast(image, 0.8, 1.2, seeds[5])
    out["image"] = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    return out


def targets(
    example: dict[str, tf.Tensor], outputs: Sequence[str], num_classes: int | None = None
) -> tuple[tf.Tensor, dict[str, tf.Tensor], dict[str, tf.Tensor]]:
    """(image, targets, sample weights) for Keras; a weight of 0 masks an unknown label.

    * ``angle``: the allowed-class mask (float [C], ``angle_allowed``, or one-hot of ``angle_index``
      when the example has no mask and ``num_classes`` is given), trained by the partial-label loss
      (:mod:`fleetvision.models.losses`); masked where it allows nothing.
    * ``body``: class index; masked where -1 (body is -1 on interior and detail shots, so only
      exterior shots, and photos labelled with a body type alone, train the body head).
    * ``banner``/``plate_presence``: 0/1; masked where -1.
    * ``plate_box``: masked unless a plate is present and its box is known.

    Every output's weight is then multiplied by the example's ``row_weight`` when it has one (extra
    datasets mixed in at a lower weight, ``models.extra_datasets``), so a masked label stays masked.
    """
    y: dict[str, tf.Tensor] = {}
    w: dict[str, tf.Tensor] = {}

    def known(v: tf.Tensor) -> tf.Tensor:
        return tf.cast(v >= 0, tf.float32)

    for name in outputs:
        if name == "angle":
            if "angle_allowed" in example:
                allowed = example["angle_allowed"]
            elif num_classes is not None:
                allowed = tf.one_hot(example["angle_index"], num_classes, dtype=tf.float32)
            else:
                raise ValueError("targets: the angle output needs angle_allowed in the example or num_classes")
            y[name], w[name] = allowed, tf.cast(tf.reduce_max(allowed) > 0, tf.float32)
        elif name == "body":
            y[name], w[name] = tf.maximum(example["body_index"], 0), known(example["body_index"])
        elif name == "banner":
            v = example["has_banner"]
            y[name], w[name] = tf.cast(tf.maximum(v, 0), tf.float32)[None], known(v)
        elif name == "plate_presence":
            v = example["plate_present"]
            y[name], w[name] = tf.cast(tf.maximum(v, 0), tf.float32)[None], known(v)
        elif name == "plate_box":
            present = tf.logical_and(example["plate_present"] > 0, example["box_known"] > 0)
            y[name], w[name] = example["box"], tf.cast(present, tf.float32)
        else:
            raise ValueError(f"unknown model output {name!r}")
    if "row_weight" in example:
        row_weight = tf.cast(example["row_weight"], tf.float32)
        w = {name: weight * row_weight for name, weight in w.items()}
    return example["image"], y, w


def training_dataset(
    source: tf.data.Dataset,
    spec: TrainSpec,
    flip_permutation: Sequence[int],
    *,
    augment: bool = True,
    cache: bool = True,
) -> tf.data.Dataset:
    """Source examples -> batched (image, targets, weights) for ``model.fit``.

    Decoded images are cached in memory after the first pass (S*S*3 bytes a row: 49 KB at S=128),
    so the source (petastorm, Spark) is read once and each later epoch only re-augments.

    Args:
        source: Unbatched dicts with :data:`EXAMPLE_KEYS`, finite (one pass).
        spec: The training spec.
        flip_permutation: ``taxonomy.flip_permutation``.
        augment: Random flips/crops/jitter (training) or none (validation).
        cache: Keep decoded images in memory between epochs.
    """
    num_classes = len(flip_permutation)
    ds = source.map(
        lambda e: with_angle_allowed(decode_example(e, spec.input_size), num_classes),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if cache:
        ds = ds.cache()
    if augment:
        ds = ds.shuffle(spec.shuffle_buffer, seed=spec.seed, reshuffle_each_iteration=True)
        counter = tf.data.Dataset.counter(dtype=tf.int32)
        rng = tf.data.Dataset.zip(ds, counter)
        ds = rng.map(
            lambda e, i: augment_example(e, spec, flip_permutation, tf.stack([tf.constant(spec.seed, tf.int32), i])),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    outputs = spec.outputs
    ds = ds.map(lambda e: targets(e, outputs), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(spec.batch_size).prefetch(tf.data.AUTOTUNE)
