"""Head soups (tier 1: Keras and numpy, no Spark): the averaged head, and what may not be averaged."""

from __future__ import annotations

import numpy as np
import pytest

from fleetvision.models.head_soup import (
    SoupError,
    check_recipe,
    check_same_architecture,
    recipe_differences,
    soup_heads,
    soup_weights,
    weighted_layers,
)

FEATURES, CLASSES = 12, 5


def _linear_head(seed: int, activation: str | None = "softmax", name: str = "head_angle"):
    """Pooled features -> dropout -> dense: the angle head's shape, small; weights drawn from ``seed``."""
    import keras

    x = keras.Input((FEATURES,), name="stride32")
    out = keras.layers.Dense(CLASSES, activation=activation, name="angle")(keras.layers.Dropout(0.2)(x))
    head = keras.Model(x, {"angle": out}, name=name)
    rng = np.random.default_rng(seed)
    head.set_weights([rng.normal(0, 1, w.shape).astype("float32") for w in head.get_weights()])
    return head


def _deep_head(seed: int):
    import keras

    x = keras.Input((FEATURES,), name="stride16")
    hidden = keras.layers.Dense(8, activation="relu", name="body_hidden")(x)
    head = keras.Model(x, {"body": keras.layers.Dense(3, activation="softmax", name="body")(hidden)}, name="head_body")
    rng = np.random.default_rng(seed)
    head.set_weights([rng.normal(0, 1, w.shape).astype("float32") for w in head.get_weights()])
    return head


def _spec(seed: int, **changes):
    return {"epochs": 5, "learning_rate": 0.003, "init_from": "models/starter", "seed": seed, **changes}


def test_a_linear_heads_soup_is_the_ensemble_of_its_members_logits() -> None:
    members = [_linear_head(s, activation=None) for s in (0, 1, 2)]
    soup = soup_heads(members)
    x = np.random.default_rng(9).normal(0, 1, (7, FEATURES)).astype("float32")
    logits = np.mean([m.predict(x, verbose=0)["angle"] for m in members], axis=0)
    np.testing.assert_allclose(soup.predict(x, verbose=0)["angle"], logits, rtol=1e-5, atol=1e-5)
    # with the softmax on top: the softmax of the mean logit, the same shape and name as a member
    softmax = [_linear_head(s) for s in (0, 1, 2)]
    soup = soup_heads(softmax)
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(soup.predict(x, verbose=0)["angle"], z / z.sum(axis=1, keepdims=True), atol=1e-5)
    assert soup.name == "head_angle" and weighted_layers(soup) == ["angle"]
    # the members are left as they were
    np.testing.assert_array_equal(softmax[0].get_weights()[1], _linear_head(0).get_weights()[1])


def test_soup_weights_average_floats_and_keep_the_first_members_other_weights() -> None:
    a = [np.array([1.0, 2.0], np.float32), np.array([7, 7], np.int64)]
    b = [np.array([3.0, 6.0], np.float32), np.array([9, 9], np.int64)]
    out = soup_weights([a, b])
    np.testing.assert_array_equal(out[0], [2.0, 4.0])
    assert out[0].dtype == np.float32
    np.testing.assert_array_equal(out[1], [7, 7])
    with pytest.raises(SoupError, match="shapes differ"):
        soup_weights([a, [np.zeros(3, np.float32), a[1]]])
    with pytest.raises(SoupError, match="hold"):
        soup_weights([a, a[:1]])
    with pytest.raises(SoupError, match="no members"):
        soup_weights([])


def test_heads_of_other_shapes_or_tasks_are_refused() -> None:
    import keras

    with pytest.raises(SoupError, match="at least two"):
        check_same_architecture([_linear_head(0)])
    with pytest.raises(SoupError, match="heads of one task"):
        check_same_architecture([_linear_head(0), _linear_head(1, name="head_banner")])
    x = keras.Input((FEATURES,), name="stride32")
    wider = keras.Model(x, {"angle": keras.layers.Dense(CLASSES + 1, name="angle")(x)}, name="head_angle")
    with pytest.raises(SoupError, match="weight shapes"):
        check_same_architecture([_linear_head(0), wider])
    other = keras.Model(x, {"angle": keras.layers.Dense(CLASSES, name="angle_2")(x)}, name="head_angle")
    with pytest.raises(SoupError, match="layers"):
        soup_heads([_linear_head(0), other])


def test_only_seeds_of_one_recipe_make_a_soup() -> None:
    linear = [_linear_head(0), _linear_head(1)]
    check_recipe([_spec(0), _spec(1)], linear)
    assert recipe_differences([_spec(0), _spec(1)]) == {}
    assert recipe_differences([_spec(0), _spec(1, epochs=8)]) == {"epochs": [5, 8]}
    assert recipe_differences([_spec(0), {k: v for k, v in _spec(1).items() if k != "epochs"}]) == {"epochs": [5, None]}
    with pytest.raises(SoupError, match=r"different recipes \(epochs: \[5, 8\]\)"):
        check_recipe([_spec(0), _spec(1, epochs=8)], linear)
    with pytest.raises(SoupError, match="seeds repeat"):
        check_recipe([_spec(3), _spec(3)], linear)
    # a linear head averages whatever its members started from; a deeper one only from one start
    check_recipe([_spec(0, init_from=None), _spec(1, init_from=None)], linear)
    deep = [_deep_head(0), _deep_head(1)]
    check_recipe([_spec(0), _spec(1)], deep)
    with pytest.raises(SoupError, match=r"2 weighted layers.*--init-from one model"):
        check_recipe([_spec(0, init_from=None), _spec(1, init_from=None)], deep)
