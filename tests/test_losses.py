"""The partial-label loss (pure) and the allowed-class masks the training feed gives it."""

from __future__ import annotations

import numpy as np
import pytest

from fleetvision.models.losses import (
    partial_label_accuracy,
    partial_label_loss,
    partial_label_loss_numpy,
    partial_label_loss_per_row,
)
from fleetvision.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_one_class_sets_equal_categorical_cross_entropy() -> None:
    import keras

    probs = _softmax(np.random.default_rng(0).normal(size=(6, 5)))
    onehot = np.eye(5)[[0, 1, 2, 3, 4, 2]]
    expected = np.asarray(keras.losses.categorical_crossentropy(onehot, probs)).mean()
    assert float(partial_label_loss(onehot, probs)) == pytest.approx(expected, rel=1e-5)
    assert partial_label_loss_numpy(onehot, probs) == pytest.approx(expected, rel=1e-6)


def test_coarse_sets_sum_probabilities_and_empty_rows_do_not_count() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]])
    mask = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]], np.float32)  # a group, a class, no label
    expected = (-np.log(0.8) - np.log(0.1)) / 2  # mean over the two labelled rows
    assert float(partial_label_loss(mask, probs)) == pytest.approx(expected, rel=1e-5)
    assert partial_label_loss_numpy(mask, probs) == pytest.approx(expected, rel=1e-9)
    per_row = np.asarray(partial_label_loss_per_row(mask, probs))
    np.testing.assert_allclose(per_row, [-np.log(0.8), -np.log(0.1), 0.0], rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(partial_label_accuracy(mask, probs)), [1.0, 0.0, 0.0])
    assert float(partial_label_loss(np.zeros((2, 3)), probs[:2])) == 0.0
    # an allowed set of every class costs nothing
    assert float(partial_label_loss(np.ones((3, 3)), probs)) == pytest.approx(0.0, abs=1e-6)


def test_loss_is_finite_and_has_no_gradient_from_unlabelled_rows() -> None:
    import tensorflow as tf

    logits = tf.Variable([[10.0, -10.0, 0.0], [1.0, 2.0, 3.0]])
    mask = tf.constant([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    with tf.GradientTape() as tape:
        loss = partial_label_loss(mask, tf.nn.softmax(logits))
    grad = tape.gradient(loss, logits).numpy()
    assert np.isfinite(float(loss)) and np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[1], 0.0)


def test_feed_bitmask_becomes_the_allowed_mask_and_flips_with_the_photo() -> None:
    import tensorflow as tf

    from fleetvision.models.pipeline import flip_example, targets, with_angle_allowed

    c = TAXONOMY.num_classes
    side = [TAXONOMY.index("side_driver"), TAXONOMY.index("side_passenger")]
    front = TAXONOMY.index("front_3q_driver")
    ex = {
        "image": tf.zeros((4, 6, 3), tf.uint8),
        "angle_index": tf.constant(-1),
        "angle_mask": tf.constant(sum(1 << i for i in side), tf.int64),
        "box": tf.zeros(4),
        "body_index": tf.constant(2),
    }
    out = with_angle_allowed(ex, c)
    assert "angle_mask" not in out
    assert np.flatnonzero(out["angle_allowed"].numpy()).tolist() == sorted(side)
    one = with_angle_allowed({**ex, "angle_mask": tf.constant(1 << front, tf.int64)}, c)
    flipped = flip_example(one, TAXONOMY.flip_permutation, swap_labels=True)
    assert np.flatnonzero(flipped["angle_allowed"].numpy()).tolist() == [TAXONOMY.index("front_3q_passenger")]
    _, y, w = targets(out, ("angle", "body"))
    assert float(w["angle"]) == 1.0 and float(w["body"]) == 1.0 and y["angle"].shape == (c,)
    body_only = with_angle_allowed({**ex, "angle_mask": tf.constant(0, tf.int64)}, c)
    _, _, w = targets(body_only, ("angle", "body"))
    assert float(w["angle"]) == 0.0 and float(w["body"]) == 1.0
    with pytest.raises(ValueError, match="at most 63 classes"):
        with_angle_allowed(ex, 64)
