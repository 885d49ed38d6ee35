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


# ------------------------------------------------------------------ generalised cross-entropy (body)
def test_generalised_cross_entropy_matches_its_reference_and_its_limits() -> None:
    from fleetvision.models.losses import (
        generalised_cross_entropy,
        generalised_cross_entropy_numpy,
        generalised_cross_entropy_per_row,
    )

    probs = _softmax(np.random.default_rng(1).normal(size=(8, 7)))
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 2])
    p = probs[np.arange(8), labels]
    for q in (0.3, 0.7, 1.0):
        got = np.asarray(generalised_cross_entropy_per_row(labels, probs, q))
        np.testing.assert_allclose(got, (1 - p**q) / q, rtol=1e-5)
        np.testing.assert_allclose(generalised_cross_entropy_numpy(labels, probs, q), (1 - p**q) / q, rtol=1e-9)
    # the Keras loss takes [N, 1] labels as the pipeline gives them
    np.testing.assert_allclose(np.asarray(generalised_cross_entropy(0.7)(labels[:, None], probs)),
                               (1 - p**0.7) / 0.7, rtol=1e-5)
    # q -> 0 is the cross-entropy; q = 1 is 1 - p (half the L1 distance to the one-hot label)
    np.testing.assert_allclose(generalised_cross_entropy_numpy(labels, probs, 1e-6), -np.log(p), rtol=1e-4)
    np.testing.assert_allclose(generalised_cross_entropy_numpy(labels, probs, 1.0),
                               np.abs(np.eye(7)[labels] - probs).sum(axis=1) / 2, rtol=1e-9)
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="q must be in"):
            generalised_cross_entropy(bad)


def test_generalised_cross_entropy_pulls_less_on_unlikely_labels() -> None:
    """Its gradient is the cross-entropy's times p^q: a label the model finds unlikely pulls far less."""
    import tensorflow as tf

    from fleetvision.models.losses import generalised_cross_entropy_per_row

    logits = tf.Variable([[4.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    labels = tf.constant([0, 1])  # a likely label, an unlikely (maybe wrong) one
    with tf.GradientTape(persistent=True) as tape:
        probs = tf.nn.softmax(logits)
        gce = generalised_cross_entropy_per_row(labels, probs, 0.7)
        ce = -tf.math.log(tf.gather(probs, labels, axis=1, batch_dims=1))
    g_gce = tape.gradient(gce, logits).numpy()
    g_ce = tape.gradient(ce, logits).numpy()
    p = tf.gather(probs, labels, axis=1, batch_dims=1).numpy()
    np.testing.assert_allclose(g_gce, g_ce * (p**0.7)[:, None], rtol=1e-4, atol=1e-7)
    share = np.linalg.norm(g_gce, axis=1) / np.linalg.norm(g_ce, axis=1)
    assert share[1] < 0.1 < 0.9 < share[0]  # p = 0.018 and 0.965: 0.059 and 0.975 of the pull


def test_body_loss_setting_reaches_the_compiled_model_and_trains_it() -> None:
    import keras

    from fleetvision.config import load_config
    from fleetvision.models.fit import fit, losses_for
    from fleetvision.models.spec import TrainSpec

    config = load_config(overrides=["models.body_loss=gce", "models.body_loss_q=0.5"])
    spec = TrainSpec.from_config(config, ["body"], epochs=40, batch_size=32, learning_rate=0.05)
    assert (spec.body_loss, spec.body_loss_q) == ("gce", 0.5)
    assert losses_for(spec)["body"].__name__ == "generalised_cross_entropy_q0_5"
    assert losses_for(TrainSpec.from_config(load_config(), ["body"]))["body"] == "sparse_categorical_crossentropy"
    with pytest.raises(ValueError, match="body_loss"):
        TrainSpec.from_config(config, ["body"], body_loss="focal")

    # three clusters, a fifth of the labels flipped to another class: the head still learns the clusters
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 600)
    x = (np.eye(3)[truth] * 3 + rng.normal(size=(600, 3))).astype("float32")
    labels = truth.copy()
    flip = rng.random(600) < 0.2
    labels[flip] = (truth[flip] + rng.integers(1, 3, flip.sum())) % 3
    inputs = keras.Input((3,))
    model = keras.Model(inputs, {"body": keras.layers.Dense(3, activation="softmax", name="body")(inputs)})
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(
        (x, {"body": labels[:, None]}, {"body": np.ones(600, "float32")})).batch(32)
    history = fit(model, spec, data, steps_per_epoch=19)
    assert history["loss"][-1] < history["loss"][0]
    predicted = np.asarray(model.predict(x, verbose=0)["body"]).argmax(axis=1)
    assert (predicted == truth).mean() > 0.95
