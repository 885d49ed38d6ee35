"""The plate head's two box readings: the soft mean over all cells (training) and the peak window
(every saved model). No Spark: Keras on random feature maps, checked against a numpy reading."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fleetvision.models import plate_head
from fleetvision.models.plate_head import MAX_PLATE_SIDE, PEAK_RADIUS, has_peak_box, plate_heads, with_peak_box

GRID = 8  # the box grid: the stride-8 map


@pytest.fixture(scope="module")
def soft_head() -> keras.Model:
    keras.utils.set_random_seed(3)
    stride8 = keras.Input(shape=(GRID, GRID, 12), name="stride8")
    stride16 = keras.Input(shape=(GRID // 2, GRID // 2, 12), name="stride16")
    presence, box = plate_heads(None, stride8, stride16, dropout=0.0)
    return keras.Model([stride8, stride16], {"plate_presence": presence, "plate_box": box}, name="head_plate")


def _features(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.normal(0, 3, (n, GRID, GRID, 12)).astype("float32"),
        rng.normal(0, 3, (n, GRID // 2, GRID // 2, 12)).astype("float32"),
    ]


def _grid_parts(model: keras.Model, features: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    probe = keras.Model(
        model.inputs, [model.get_layer("plate_scores").output, model.get_layer("plate_cell_boxes").output]
    )
    scores, boxes = probe.predict(features, verbose=0)
    return scores, boxes


def _numpy_box(weights: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The box a weighting of the cells reads: weighted corner + weighted (offset, size) -> corners."""
    ys, xs = np.meshgrid(np.arange(GRID) / GRID, np.arange(GRID) / GRID, indexing="ij")
    gx = (weights * xs.reshape(-1)).sum(1)
    gy = (weights * ys.reshape(-1)).sum(1)
    ox, oy, w, h = np.moveaxis((weights[..., None] * boxes).sum(1), -1, 0)
    cx, cy, half = gx + ox / GRID, gy + oy / GRID, 0.5 * MAX_PLATE_SIDE
    return np.clip(np.stack([cx - half * w, cy - half * h, cx + half * w, cy + half * h], 1), 0.0, 1.0)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _peak_weights(scores: np.ndarray) -> np.ndarray:
    top = scores.argmax(1)
    rows, cols = np.divmod(np.arange(GRID * GRID), GRID)
    inside = (np.abs(rows[None] - (top // GRID)[:, None]) <= PEAK_RADIUS) & (
        np.abs(cols[None] - (top % GRID)[:, None]) <= PEAK_RADIUS
    )
    return _softmax(np.where(inside, scores, -np.inf))


def test_the_training_graph_reads_the_soft_mean_over_every_cell(soft_head):
    features = _features(16, seed=1)
    scores, boxes = _grid_parts(soft_head, features)
    out = soft_head.predict(features, verbose=0)
    np.testing.assert_allclose(out["plate_box"], _numpy_box(_softmax(scores), boxes), atol=1e-5)


def test_the_peak_box_reads_only_the_cells_around_the_top_score(soft_head):
    features = _features(32, seed=2)
    scores, boxes = _grid_parts(soft_head, features)
    peak = with_peak_box(soft_head)
    out = peak.predict(features, verbose=0)
    np.testing.assert_allclose(out["plate_box"], _numpy_box(_peak_weights(scores), boxes), atol=1e-4)
    # presence is untouched, and the two readings really differ on these maps
    np.testing.assert_allclose(out["plate_presence"], soft_head.predict(features, verbose=0)["plate_presence"])
    assert np.abs(out["plate_box"] - _numpy_box(_softmax(scores), boxes)).max() > 0.01


def test_two_plate_like_places_give_a_box_on_the_stronger_one_not_between_them():
    # a hand-set score map: two peaks far apart; every cell's box is a plate centred in the cell
    scores = np.full((1, GRID * GRID), -5.0, dtype="float32")
    scores[0, 1 * GRID + 1] = 4.0  # strong, top left
    scores[0, 6 * GRID + 6] = 3.5  # weaker, bottom right
    boxes = np.tile(np.array([0.5, 0.5, 0.4, 0.1], dtype="float32"), (1, GRID * GRID, 1))
    soft, peak = _numpy_box(_softmax(scores), boxes)[0], _numpy_box(_peak_weights(scores), boxes)[0]
    centre = lambda b: ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)  # noqa: E731
    assert centre(peak) == pytest.approx(((1 + 0.5) / GRID, (1 + 0.5) / GRID), abs=0.01)
    assert 0.3 < centre(soft)[0] < 0.7  # the soft mean sits between the two, on neither


def test_the_peak_box_is_built_once_and_survives_a_safe_mode_round_trip(soft_head, tmp_path):
    peak = with_peak_box(soft_head)
    assert has_peak_box(peak) and not has_peak_box(soft_head)
    assert with_peak_box(peak) is peak
    assert len(peak.trainable_weights) == len(soft_head.trainable_weights)  # no weights of its own
    path = tmp_path / "head.keras"
    peak.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    features = _features(4, seed=5)
    np.testing.assert_allclose(
        loaded.predict(features, verbose=0)["plate_box"], peak.predict(features, verbose=0)["plate_box"], atol=1e-6
    )


def test_a_model_without_a_box_grid_is_left_alone():
    x = keras.Input(shape=(4,))
    model = keras.Model(x, keras.layers.Dense(1, name="banner")(x))
    assert plate_head.with_peak_box(model) is model
