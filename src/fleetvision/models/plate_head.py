"""The plate head: presence, and a box read from a grid of cells.

Every cell of a fine feature grid (stride 4, or stride 8 on a pretrained backbone) predicts a score and
a box (the centre's offset inside the cell, the width and the height). Two ways turn that grid into one
box, both built from built-in Keras layers only (a saved ``.keras`` file loads in safe mode):

* **soft** (training): a softmax over all the cells' scores weights all the cells' boxes, a
  differentiable "soft argmax". Every cell gets a gradient, so the score map learns where plates are.
* **peak** (every saved and registered model): the same softmax, restricted to the 3 x 3 cells around
  the highest score. When a photo holds more than one plate-like place (a dealer's sign, a
  headlight, a second car), the soft mean lands between them, on neither; the peak window keeps the
  box on the strongest one. It has no weights of its own: :func:`with_peak_box` adds it to a trained
  head.

Measured on the real dev set with the same trained head (``benchmarks/bench_real_dev.py``,
docs/models.md): box IoU >= 0.5 on 0.47 of the photos with the soft box, 0.81 with the peak box.
"""

from __future__ import annotations

import keras
import numpy as np

# Largest plate width/height the box head can express, as a share of the photo side.
MAX_PLATE_SIDE = 0.5
# The peak window: cells within this many rows/columns of the highest score take part.
PEAK_RADIUS = 1
# How far below the top score a cell's score may be and still count as a peak (1 / PEAK_SHARPNESS),
# and how much is taken off the scores of cells outside the window (so their softmax weight is 0).
PEAK_SHARPNESS = 1.0e4
_OUTSIDE_PENALTY = 1.0e4
_PEAK_MARK = "plate_peak_window"


def avg_max_pool(features: keras.KerasTensor, prefix: str) -> keras.KerasTensor:
    """Average- and max-pooled features side by side: [N, 2C]."""
    return keras.layers.Concatenate(name=f"{prefix}_pool")(
        [
            keras.layers.GlobalAveragePooling2D(name=f"{prefix}_avg")(features),
            keras.layers.GlobalMaxPooling2D(name=f"{prefix}_max")(features),
        ]
    )


def _cell_grid(height: int, width: int) -> np.ndarray:
    """[H*W, 2] kernel: a one-hot cell index -> the (x, y) of the cell's top-left corner, normalised."""
    ys, xs = np.meshgrid(np.arange(height) / height, np.arange(width) / width, indexing="ij")
    return np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1).astype("float32")


def _corners_kernel(height: int, width: int) -> np.ndarray:
    """[6, 4] kernel: (gx, gy, ox, oy, w, h) -> (x0, y0, x1, y1).

    gx, gy: expected cell corner; ox, oy in [0, 1]: centre offset inside a cell (in cells);
    w, h in [0, 1]: size as a share of ``MAX_PLATE_SIDE``.
    """
    half = 0.5 * MAX_PLATE_SIDE
    return np.array(
        [
            [1.0, 0.0, 1.0, 0.0],  # gx
            [0.0, 1.0, 0.0, 1.0],  # gy
            [1.0 / width, 0.0, 1.0 / width, 0.0],  # ox
            [0.0, 1.0 / height, 0.0, 1.0 / height],  # oy
            [-half, 0.0, half, 0.0],  # w
            [0.0, -half, 0.0, half],  # h
        ],
        dtype="float32",
    )


def _fixed_dense(units: int, kernel: np.ndarray, name: str, inputs: keras.KerasTensor) -> keras.KerasTensor:
    layer = keras.layers.Dense(units, use_bias=False, trainable=False, name=name)
    out = layer(inputs)
    layer.set_weights([kernel])
    return out


def _box_from_weights(
    weights: keras.KerasTensor, cell_boxes: keras.KerasTensor, height: int, width: int, prefix: str, out_name: str
) -> keras.KerasTensor:
    """Weighted cell boxes -> (x0, y0, x1, y1) in [0, 1]. ``weights`` [N, H*W] sum to 1."""
    cells = height * width
    weighted = keras.layers.Multiply(name=f"{prefix}_weighted")(
        [cell_boxes, keras.layers.Reshape((cells, 1), name=f"{prefix}_weight_col")(weights)]
    )
    # sum over cells = cells x mean over cells
    box_params = keras.layers.Rescaling(float(cells), name=f"{prefix}_box_params")(
        keras.layers.GlobalAveragePooling1D(name=f"{prefix}_box_mean")(weighted)
    )
    corner = _fixed_dense(2, _cell_grid(height, width), f"{prefix}_box_grid", weights)
    centre_size = keras.layers.Concatenate(name=f"{prefix}_box_centre_size")([corner, box_params])
    corners = _fixed_dense(4, _corners_kernel(height, width), f"{prefix}_box_corners", centre_size)
    return keras.layers.ReLU(max_value=1.0, name=out_name)(corners)


def plate_heads(
    stride4: keras.KerasTensor | None, stride8: keras.KerasTensor, stride16: keras.KerasTensor, dropout: float
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """(plate_presence [N, 1], plate_box [N, 4]) with the soft box (the training graph)."""
    up = keras.layers.UpSampling2D(2, interpolation="bilinear", name="plate_up")(stride16)
    fused = keras.layers.Concatenate(name="plate_fuse")([stride8, up])
    context = keras.layers.SeparableConv2D(64, 3, padding="same", activation="relu", name="plate_conv")(fused)
    # presence: pooled stride-8 features
    pooled = keras.layers.Dropout(dropout, name="plate_presence_dropout")(avg_max_pool(context, "plate"))
    presence = keras.layers.Dense(1, activation="sigmoid", name="plate_presence")(pooled)
    # box: a stride-4 grid (edges of a plate a few pixels tall need the fine map), each cell with its
    # own box (a pretrained backbone's heads get no stride-4 map: the box grid is then the stride-8 one)
    fine = (
        keras.layers.Concatenate(name="plate_fuse_fine")(
            [stride4, keras.layers.UpSampling2D(2, interpolation="bilinear", name="plate_up_fine")(context)]
        )
        if stride4 is not None
        else context
    )
    local = keras.layers.SeparableConv2D(48, 3, padding="same", activation="relu", name="plate_conv_fine")(fine)
    local = keras.layers.Conv2D(48, 1, activation="relu", name="plate_conv2")(local)
    height, width = int(local.shape[1]), int(local.shape[2])
    cells = height * width
    scores = keras.layers.Conv2D(1, 1, name="plate_cell_score")(local)
    weights = keras.layers.Softmax(name="plate_cell_weight")(
        keras.layers.Reshape((cells,), name="plate_scores")(scores)
    )
    cell_box = keras.layers.Conv2D(4, 1, activation="sigmoid", name="plate_cell_box")(local)
    cell_box = keras.layers.Reshape((cells, 4), name="plate_cell_boxes")(cell_box)
    return presence, _box_from_weights(weights, cell_box, height, width, "plate", "plate_box")


def has_peak_box(model: keras.Model) -> bool:
    """True when the model's plate box is already the peak box."""
    return any(layer.name == _PEAK_MARK for layer in model.layers)


def with_peak_box(model: keras.Model) -> keras.Model:
    """The same model with its ``plate_box`` output read from the peak window (see the module doc).

    Shares every layer (and so every weight) with ``model``; adds only weightless layers. A model that
    already has the peak box, or has no plate box grid, is returned unchanged.

    Args:
        model: A plate head (a pretrained task model's nested ``head_plate``), or a plate model cut out
            of a flat multi-task model, built by :func:`plate_heads`.

    Returns:
        A model with the same inputs and two outputs, ``plate_presence`` and ``plate_box``.
    """
    names = {layer.name for layer in model.layers}
    if has_peak_box(model) or not {"plate_scores", "plate_cell_boxes", "plate_box"} <= names:
        return model
    scores = model.get_layer("plate_scores").output  # [N, H*W]
    cell_boxes = model.get_layer("plate_cell_boxes").output  # [N, H*W, 4]
    grid = model.get_layer("plate_cell_score").output  # [N, H, W, 1]
    height, width = int(grid.shape[1]), int(grid.shape[2])
    cells = height * width
    score_map = keras.layers.Reshape((height, width, 1), name="plate_peak_scores")(scores)
    top = keras.layers.GlobalMaxPooling2D(keepdims=True, name="plate_peak_top")(score_map)
    below_top = keras.layers.Subtract(name="plate_peak_below_top")([score_map, top])  # <= 0, 0 at the top
    # 1 at the top cell, 0 wherever the score is more than 1/PEAK_SHARPNESS below it
    is_top = keras.layers.ReLU(name="plate_peak_is_top")(
        keras.layers.Rescaling(PEAK_SHARPNESS, offset=1.0, name="plate_peak_sharpen")(below_top)
    )
    side = 2 * PEAK_RADIUS + 1
    window = keras.layers.MaxPooling2D(side, strides=1, padding="same", name=_PEAK_MARK)(is_top)
    # 0 inside the window, -_OUTSIDE_PENALTY outside: those cells' softmax weights become 0
    penalty = keras.layers.Rescaling(_OUTSIDE_PENALTY, offset=-_OUTSIDE_PENALTY, name="plate_peak_penalty")(window)
    local_scores = keras.layers.Add(name="plate_peak_local_scores")([score_map, penalty])
    weights = keras.layers.Softmax(name="plate_peak_weight")(
        keras.layers.Reshape((cells,), name="plate_peak_flat")(local_scores)
    )
    box = _box_from_weights(weights, cell_boxes, height, width, "plate_peak", "plate_box_peak")
    presence = model.get_layer("plate_presence").output
    return keras.Model(model.inputs, {"plate_presence": presence, "plate_box": box}, name=model.name)
