"""Tier 1: model code without Spark or MLflow (spec, architecture, tf.data stages, metrics, promotion)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fleetvision.config import PromoteConfig, load_config
from fleetvision.models.eval_metrics import (
    EvalLabels,
    box_iou,
    evaluate_angle,
    evaluate_body,
    evaluate_plate,
    evaluate_task,
)
from fleetvision.models.promotion_rule import decide
from fleetvision.models.spec import TASK_OUTPUTS, TrainSpec, parse_tasks
from fleetvision.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


@pytest.fixture(scope="module")
def cfg():
    # the end-to-end architecture (MobileNetV3, flat heads, multi-view body); the default pretrained
    # backbone's nested heads are tested in test_pretrained_backbone.py
    return load_config(
        overrides=["models.input_size=64", "models.backbone=mobilenet_v3_small", "models.body_views=4"], environ={}
    )


def _jpeg(array: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **({"quality": 90} if fmt != "PNG" else {}))
    return buf.getvalue()


def _photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC))


# ------------------------------------------------------------------------------------------- spec
def test_parse_tasks_all_and_one() -> None:
    assert parse_tasks("all", ("angle", "banner", "plate", "body")) == ("angle", "banner", "plate", "body")
    assert parse_tasks("plate", ("angle",)) == ("plate",)
    with pytest.raises(ValueError, match="unknown model task 'wheels'"):
        parse_tasks("wheels", ("angle",))


def test_spec_rejects_bad_values(cfg) -> None:
    with pytest.raises(ValueError, match=r"left_half.*trained alone"):
        TrainSpec.from_config(cfg, ("angle", "banner"), angle_head="left_half")
    with pytest.raises(ValueError, match="unknown task"):
        TrainSpec(tasks=("angle", "colour"), input_size=64)
    with pytest.raises(ValueError, match="unknown field"):
        TrainSpec.from_config(cfg, ("angle",), colour=True)


def test_quick_mode_shrinks_model_and_data(cfg) -> None:
    spec = TrainSpec.from_config(cfg, ("angle",), quick=True)
    assert spec.quick and spec.epochs == 1 and spec.max_train_rows == 64 and spec.backbone_alpha < 1
    assert spec.outputs == ("angle",)
    assert TrainSpec.from_config(cfg, ("plate", "body")).outputs == ("plate_presence", "plate_box", "body")


# ----------------------------------------------------------------------------------- architecture
def test_task_models_have_the_contract_outputs(cfg) -> None:
    from fleetvision.models.architecture import build_multitask_model, task_model

    spec = TrainSpec.from_config(cfg, ("angle", "banner", "plate", "body"), quick=True)
    model = build_multitask_model(spec, TAXONOMY.num_classes, len(TAXONOMY.body_types))
    batch = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    expected = {"angle": (3, 27), "banner": (3, 1), "plate_presence": (3, 1), "plate_box": (3, 4), "body": (3, 7)}
    for task, names in TASK_OUTPUTS.items():
        out = task_model(model, task).predict_on_batch(batch)
        assert set(out) == set(names)
        for name in names:
            assert out[name].shape == expected[name]
    out = task_model(model, "plate").predict_on_batch(batch)
    box = out["plate_box"]
    assert (box >= 0).all() and (box <= 1).all()
    assert np.allclose(task_model(model, "angle").predict_on_batch(batch)["angle"].sum(axis=1), 1, atol=1e-4)


def test_split_head_pools_left_and_right_halves_separately(cfg) -> None:
    """The angle head's features are [mean over the left columns, mean over the right columns]."""
    import keras

    from fleetvision.models.architecture import build_multitask_model, task_model

    spec = TrainSpec.from_config(cfg, ("angle",), quick=True, input_size=96)
    model = build_multitask_model(spec, TAXONOMY.num_classes, len(TAXONOMY.body_types))
    probe = keras.Model(model.inputs, [model.get_layer("angle_left").input, model.get_layer("angle_halves").output])
    image = np.random.default_rng(0).integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    fmap, halves = probe.predict_on_batch(image)
    width = fmap.shape[2]
    assert width == 3  # odd: the middle column belongs to both halves
    expected = np.concatenate([fmap[:, :, :2].mean(axis=(1, 2)), fmap[:, :, 1:].mean(axis=(1, 2))], axis=1)
    np.testing.assert_allclose(halves, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="no output"):
        task_model(model, "banner")


def _mirror(batch: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(batch[:, :, ::-1])


def _zoom_view(batch: np.ndarray, margin: int) -> np.ndarray:
    """The centre crop with ``margin`` pixels off every side, enlarged back (bilinear, half-pixel), as uint8."""
    import tensorflow as tf

    size = batch.shape[1]
    crop = batch[:, margin : size - margin, margin : size - margin].astype(np.float32)
    return np.clip(np.round(tf.image.resize(crop, (size, size), method="bilinear").numpy()), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("views", [2, 4])
def test_multi_view_body_is_the_mean_of_the_views_logits_and_mirror_invariant(cfg, tmp_path, views: int) -> None:
    import keras

    from fleetvision.models.architecture import build_multitask_model, task_model
    from fleetvision.models.starter import save_task_model

    spec = TrainSpec.from_config(cfg, ("body",), quick=True)
    model = build_multitask_model(spec, 27, 7)
    body = model.get_layer("body")
    batch = np.stack([_photo(64, 64, seed) for seed in range(4)])
    features = keras.Model(model.inputs, model.get_layer("body_features").output)
    # an untrained net's features barely vary between photos: give the head a kernel scaled to their
    # spread, so that its logits do (std ~3) and the views change the answer
    spread = np.concatenate([features.predict_on_batch(batch), features.predict_on_batch(_mirror(batch))]).std(0)
    kernel = np.random.default_rng(0).normal(size=body.kernel.shape) / (spread[:, None] + 1e-12) / np.sqrt(len(spread))
    body.set_weights([(3 * kernel).astype(np.float32), np.zeros(body.bias.shape, np.float32)])
    path = save_task_model(task_model(model, "body", body_views=views, body_zoom=0.75), tmp_path / "body.keras")
    multi = keras.saving.load_model(path, compile=False)  # safe mode: no custom code
    got = multi.predict_on_batch(batch)["body"]

    shown = [batch, _mirror(batch)]
    if views == 4:
        zoomed = _zoom_view(batch, 8)  # round(64 * (1 - 0.75) / 2)
        shown += [zoomed, _mirror(zoomed)]
    kernel, bias = (w.astype(np.float64) for w in body.get_weights())
    logits = np.mean([features.predict_on_batch(v).astype(np.float64) @ kernel + bias for v in shown], axis=0)
    want = np.exp(logits - logits.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=2e-5)
    one_view = task_model(model, "body").predict_on_batch(batch)["body"]
    assert np.abs(one_view - got).max() > 1e-3, "the views made no difference: the test would not see them"
    # the views of the mirrored photo are the mirrored views: same answer
    np.testing.assert_allclose(multi.predict_on_batch(_mirror(batch))["body"], got, atol=1e-5)
    mirrored_one_view = task_model(model, "body").predict_on_batch(_mirror(batch))["body"]
    assert np.abs(mirrored_one_view - one_view).max() > 1e-3, "one view is mirror-invariant: the check is empty"


def test_with_body_views_changes_the_views_of_a_saved_model_keeping_its_weights(cfg, tmp_path) -> None:
    import keras

    from fleetvision.models.architecture import build_multitask_model, task_model, with_body_views
    from fleetvision.models.starter import save_task_model

    model = build_multitask_model(TrainSpec.from_config(cfg, ("body",), quick=True, seed=3), 27, 7)
    batch = np.stack([_photo(64, 64, seed) for seed in range(3)])
    four = keras.saving.load_model(
        save_task_model(task_model(model, "body", body_views=4), tmp_path / "four.keras"), compile=False
    )
    for views in (1, 2, 4):
        again = keras.saving.load_model(save_task_model(with_body_views(four, views), tmp_path / f"{views}.keras"))
        want = task_model(model, "body", body_views=views).predict_on_batch(batch)["body"]
        np.testing.assert_allclose(again.predict_on_batch(batch)["body"], want, atol=1e-6)
    with pytest.raises(ValueError, match="no body head"):
        with_body_views(task_model(build_multitask_model(TrainSpec.from_config(cfg, ("banner",), quick=True), 27, 7),
                                   "banner"), 2)


def test_multi_view_body_rejects_bad_views_and_zoom(cfg) -> None:
    from fleetvision.models.architecture import build_multitask_model, multi_view_body, task_model

    model = build_multitask_model(TrainSpec.from_config(cfg, ("body", "banner"), quick=True), 27, 7)
    with pytest.raises(ValueError, match="body views must be 1, 2 or 4, got 3"):
        multi_view_body(model, 3)
    with pytest.raises(ValueError, match=r"body zoom must be in \[0.5, 1\), got 1.0"):
        multi_view_body(model, 4, 1.0)
    # the other tasks ignore the body views
    assert task_model(model, "banner", body_views=4).name == "fleetvision_banner"
    with pytest.raises(ValueError, match="body_views must be 1, 2 or 4"):
        TrainSpec.from_config(cfg, ("body",), body_views=3)
    with pytest.raises(ValueError, match="body_zoom"):
        load_config(overrides=["models.body_zoom=0.2"], environ={})
    assert TrainSpec.from_config(cfg, ("body",)).body_views == 4  # as configured
    assert load_config(environ={}).models.body_views == 1  # the default: the pretrained backbone's one view


# ---------------------------------------------------------------------------------------- pipeline
@pytest.mark.parametrize(
    ("fmt", "size"),
    [("JPEG", (1024, 768)), ("JPEG", (300, 200)), ("JPEG", (90, 100)), ("PNG", (640, 480)), ("WEBP", (500, 420))],
)
def test_tf_decode_matches_the_scoring_decoder(fmt: str, size: tuple[int, int]) -> None:
    import tensorflow as tf

    from fleetvision.decode import decode_photo
    from fleetvision.models.pipeline import decode_resize

    data = _jpeg(_photo(*size), fmt)
    served = decode_photo(data, 64, 10**8).array
    trained = decode_resize(tf.constant(data), 64).numpy()
    assert trained.shape == served.shape == (64, 64, 3) and trained.dtype == np.uint8
    assert np.abs(trained.astype(int) - served.astype(int)).max() <= 1


def test_flip_swaps_mirror_labels_and_box() -> None:
    import tensorflow as tf

    from fleetvision.models.pipeline import flip_example

    perm = TAXONOMY.flip_permutation
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    ex = {
        "image": tf.constant(image),
        "angle_index": tf.constant(TAXONOMY.index("side_driver")),
        "box": tf.constant([0.1, 0.2, 0.3, 0.4]),
    }
    flipped = flip_example(ex, perm, swap_labels=True)
    assert int(flipped["angle_index"]) == TAXONOMY.index("side_passenger")
    np.testing.assert_allclose(flipped["box"].numpy(), [0.7, 0.2, 0.9, 0.4], atol=1e-6)
    np.testing.assert_array_equal(flipped["image"].numpy(), image[:, ::-1])
    kept = flip_example(ex, perm, swap_labels=False)
    assert int(kept["angle_index"]) == TAXONOMY.index("side_driver")
    unknown = flip_example({**ex, "angle_index": tf.constant(-1)}, perm, swap_labels=True)
    assert int(unknown["angle_index"]) == -1
    dash = flip_example({**ex, "angle_index": tf.constant(TAXONOMY.index("dashboard"))}, perm, swap_labels=True)
    assert int(dash["angle_index"]) == TAXONOMY.index("dashboard")


def test_targets_mask_unknown_labels() -> None:
    import tensorflow as tf

    from fleetvision.models.pipeline import targets

    ex = {
        "image": tf.zeros((4, 4, 3), tf.uint8),
        "angle_index": tf.constant(3),
        "has_banner": tf.constant(-1),
        "plate_present": tf.constant(0),
        "box": tf.zeros(4),
        "box_known": tf.constant(0),
        "body_index": tf.constant(-1),
    }
    _, y, w = targets(ex, ("angle", "banner", "plate_presence", "plate_box", "body"), TAXONOMY.num_classes)
    weights = {k: float(v) for k, v in w.items()}
    assert weights == {"angle": 1.0, "banner": 0.0, "plate_presence": 1.0, "plate_box": 0.0, "body": 0.0}
    assert int(y["body"]) == 0 and y["banner"].shape == (1,)
    np.testing.assert_array_equal(y["angle"].numpy(), np.eye(TAXONOMY.num_classes)[3])
    _, _, w = targets({**ex, "angle_index": tf.constant(-1)}, ("angle",), TAXONOMY.num_classes)
    assert float(w["angle"]) == 0.0


def _tiny_source(n: int, size: int = 48):
    """A learnable toy set: banner = bright photo, angle = bright on the left or the right."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    contents, angle, banner = [], [], []
    for i in range(n):
        img = rng.integers(0, 60, (size, size + 16, 3), dtype=np.uint8)
        left = i % 2 == 0
        img[:, : size // 2] += 120 if left else 0
        img[:, size // 2 :] += 0 if left else 120
        bright = (i // 2) % 2 == 0
        if bright:
            img[:8] = 250
        contents.append(_jpeg(img))
        angle.append(TAXONOMY.index("side_driver" if left else "side_passenger"))
        banner.append(int(bright))
    return tf.data.Dataset.from_tensor_slices(
        {
            "content": contents,
            "angle_index": np.array(angle, np.int32),
            "has_banner": np.array(banner, np.int32),
            "plate_present": np.zeros(n, np.int32),
            "box": np.zeros((n, 4), np.float32),
            "box_known": np.zeros(n, np.int32),
            "body_index": np.full(n, -1, np.int32),
        }
    )


def test_training_a_few_steps_lowers_the_loss(cfg) -> None:
    from fleetvision.models.architecture import build_multitask_model
    from fleetvision.models.fit import fit
    from fleetvision.models.pipeline import training_dataset

    spec = TrainSpec.from_config(cfg, ("angle", "banner"), quick=True, epochs=8, learning_rate=3e-3)
    data = training_dataset(_tiny_source(32), spec, TAXONOMY.flip_permutation, augment=False)
    model = build_multitask_model(spec, TAXONOMY.num_classes, len(TAXONOMY.body_types))
    history = fit(model, spec, data, steps_per_epoch=2)
    assert len(history["loss"]) == 8
    assert history["loss"][-1] < 0.7 * history["loss"][0], history["loss"]


def test_augmented_dataset_shapes(cfg) -> None:
    from fleetvision.models.pipeline import training_dataset

    spec = TrainSpec.from_config(cfg, ("angle", "banner", "plate", "body"), quick=True)
    x, y, w = next(iter(training_dataset(_tiny_source(8), spec, TAXONOMY.flip_permutation)))
    assert x.shape == (8, 64, 64, 3) and x.dtype.name == "uint8"
    assert y["plate_box"].shape == (8, 4) and w["plate_box"].shape == (8,)
    pairs = {TAXONOMY.index("side_driver"), TAXONOMY.index("side_passenger")}
    assert y["angle"].shape == (8, TAXONOMY.num_classes)  # the allowed-class mask, one class each here
    assert set(np.argmax(y["angle"].numpy(), axis=1).tolist()) <= pairs
    np.testing.assert_array_equal(y["angle"].numpy().sum(axis=1), np.ones(8))


# ----------------------------------------------------------------------------------------- metrics
def _labels(n: int, **kw) -> EvalLabels:
    base = {
        "angle_index": np.full(n, -1),
        "has_banner": np.full(n, -1),
        "plate_present": np.full(n, -1),
        "box": np.zeros((n, 4)),
        "box_known": np.zeros(n, dtype=int),
        "body_index": np.full(n, -1),
    }
    base.update({k: np.asarray(v) for k, v in kw.items()})
    return EvalLabels(**base)


def test_angle_metrics_count_mirror_pairs() -> None:
    sd, sp, dash = (TAXONOMY.index(n) for n in ("side_driver", "side_passenger", "dashboard"))
    truth = np.array([sd, sp, sd, dash])
    pred = np.array([sd, sd, sp, dash])  # one right, two swapped, the dashboard right
    probs = np.eye(TAXONOMY.num_classes)[pred]
    ev = evaluate_angle(probs, _labels(4, angle_index=truth), TAXONOMY)
    assert ev.metrics["top1"] == pytest.approx(0.5)
    assert ev.metrics["mirror_pair_accuracy"] == pytest.approx(1 / 3)
    assert ev.metrics["mirror_swap_rate"] == pytest.approx(2 / 3)
    assert ev.confusion is not None and ev.confusion[sp, sd] == 1
    assert ev.per_class is not None and len(ev.per_class) == TAXONOMY.num_classes


def test_plate_metrics_precision_recall_iou() -> None:
    labels = _labels(
        4,
        plate_present=[1, 1, 0, 0],
        box=[[0.1, 0.1, 0.3, 0.2], [0.5, 0.5, 0.7, 0.6], [0, 0, 0, 0], [0, 0, 0, 0]],
        box_known=[1, 1, 0, 0],
    )
    presence = np.array([[0.9], [0.2], [0.8], [0.1]])  # TP, FN, FP (an odometer), TN
    boxes = np.array([[0.1, 0.1, 0.3, 0.2], [0.5, 0.5, 0.6, 0.6], [0.4, 0.4, 0.5, 0.5], [0, 0, 0, 0]])
    ev = evaluate_plate(presence, boxes, labels, 0.5)
    assert ev.metrics["precision"] == pytest.approx(0.5)
    assert ev.metrics["recall"] == pytest.approx(0.5)
    assert ev.metrics["mean_iou"] == pytest.approx(0.75)
    assert box_iou(np.array([[0, 0, 1, 1]]), np.array([[0, 0, 0.5, 1]]))[0] == pytest.approx(0.5)


def test_body_metrics_ignore_interior_rows() -> None:
    labels = _labels(3, body_index=[0, -1, 2])
    probs = np.eye(7)[[0, 5, 1]]
    ev = evaluate_body(probs, labels, TAXONOMY)
    assert ev.metrics["accuracy"] == pytest.approx(0.5) and ev.metrics["n"] == 2


def test_evaluate_task_checks_outputs() -> None:
    labels = _labels(2, has_banner=[1, 0])
    with pytest.raises(ValueError, match="needs model output 'banner'"):
        evaluate_task("banner", {"angle": np.zeros((2, 27))}, labels, TAXONOMY)
    with pytest.raises(ValueError, match="3 rows for 2 labels"):
        evaluate_task("banner", {"banner": np.zeros((3, 1))}, labels, TAXONOMY)
    ev = evaluate_task("banner", {"banner": np.array([[0.9], [0.1]])}, labels, TAXONOMY)
    assert ev.metrics["f1"] == 1.0


# --------------------------------------------------------------------------------------- promotion
def test_promotion_refuses_a_worse_candidate_and_names_the_metric() -> None:
    rules = PromoteConfig()
    d = decide(
        "plate",
        {"precision": 0.95, "recall": 0.80, "mean_iou": 0.7},
        {"precision": 0.93, "recall": 0.90, "mean_iou": 0.7},
        rules,
        candidate_version="4",
        champion_version="3",
    )
    assert not d.promote
    assert [c.metric for c in d.shortfalls] == ["recall"]
    assert "recall: candidate 0.8000 vs champion 0.9000" in d.message() and "FELL SHORT" in d.message()


def test_promotion_accepts_equal_or_better_and_respects_tolerance() -> None:
    champ = {"f1": 0.96}
    assert decide("banner", {"f1": 0.96}, champ, PromoteConfig(), candidate_version="2").promote
    assert not decide("banner", {"f1": 0.955}, champ, PromoteConfig(), candidate_version="2").promote
    assert decide("banner", {"f1": 0.955}, champ, PromoteConfig(tolerance=0.01), candidate_version="2").promote


def test_promotion_without_champion_uses_floors() -> None:
    rules = PromoteConfig(min_metrics={"body.accuracy": 0.85, "angle.top1": 0.99})
    assert decide("body", {"accuracy": 0.9, "macro_recall": 0.9}, None, rules, candidate_version="1").promote
    refused = decide("body", {"accuracy": 0.8, "macro_recall": 0.9}, None, rules, candidate_version="1")
    assert not refused.promote and refused.shortfalls[0].basis == "minimum"
    with pytest.raises(ValueError, match=r"body\.auc is configured"):
        decide("body", {"accuracy": 0.9}, None, PromoteConfig(min_metrics={"body.auc": 0.5}), candidate_version="1")


# ---------------------------------------------------------------------------------------- registry
def test_model_set_id_is_stable_and_order_free() -> None:
    from fleetvision.models.resolve import ModelRef, ModelSet

    def ref(task: str, version: str) -> ModelRef:
        name = f"fleetvision-{task}"
        return ModelRef(task, name, version, f"models:/{name}/{version}", f"file:///m/{task}", 64, TASK_OUTPUTS[task])

    a = ModelSet((ref("angle", "1"), ref("banner", "2")), alias="champion")
    b = ModelSet((ref("banner", "2"), ref("angle", "1")))
    c = ModelSet((ref("angle", "1"), ref("banner", "3")))
    assert a.model_set_id == b.model_set_id != c.model_set_id and len(a.model_set_id) == 12
    assert a.versions == {"angle": "1", "banner": "2"}
    assert a.uris == {"angle": "models:/fleetvision-angle/1", "banner": "models:/fleetvision-banner/2"}
    with pytest.raises(KeyError, match="no 'plate' model"):
        a["plate"]
    with pytest.raises(ValueError, match="one model per task"):
        ModelSet((ref("angle", "1"), ref("angle", "2")))


def test_predict_fn_checks_the_batch(cfg) -> None:
    from fleetvision.models.architecture import build_multitask_model, task_model
    from fleetvision.models.serving import predict_fn_for

    spec = TrainSpec.from_config(cfg, ("banner",), quick=True)
    predict = predict_fn_for(task_model(build_multitask_model(spec, 27, 7), "banner"), 64)
    assert predict(np.zeros((2, 64, 64, 3), np.uint8))["banner"].shape == (2, 1)
    assert predict(np.zeros((0, 64, 64, 3), np.uint8))["banner"].shape == (0, 1)
    with pytest.raises(ValueError, match=r"expects uint8 \[N, 64, 64, 3\], got float32"):
        predict(np.zeros((2, 64, 64, 3), np.float32))


# ------------------------------------------------------------------------------------- calibration
def test_balanced_threshold_and_bias_shift() -> None:
    import keras

    from fleetvision.models.calibration import balanced_threshold, shift_sigmoid_bias

    rng = np.random.default_rng(0)
    truth = np.r_[np.ones(100), np.zeros(300)].astype(int)
    scores = np.r_[rng.uniform(0.6, 1.0, 100), rng.uniform(0.0, 0.9, 300)]  # negatives reach 0.9
    t = balanced_threshold(scores, truth)
    flag = scores >= t
    precision, recall = (flag & (truth == 1)).sum() / flag.sum(), (flag & (truth == 1)).sum() / 100
    assert 0.6 < t < 0.9 and abs(precision - recall) < 0.05
    assert balanced_threshold(scores[:30], truth[:30]) is None  # too few negatives

    x = keras.Input((1,))
    dense = keras.layers.Dense(1, activation="sigmoid", name="plate_presence")
    model = keras.Model(x, dense(x))
    dense.set_weights([np.array([[4.0]], np.float32), np.array([0.0], np.float32)])
    z = np.linspace(-2, 2, 41, dtype=np.float32)[:, None]
    before = model.predict_on_batch(z)[:, 0]
    shift_sigmoid_bias(dense, found=0.8, target=0.5)
    after = model.predict_on_batch(z)[:, 0]
    np.testing.assert_array_equal(before >= 0.8, after >= 0.5)
    with pytest.raises(ValueError, match="one-unit Dense"):
        shift_sigmoid_bias(keras.layers.Dense(2, use_bias=False), 0.8, 0.5)


def test_mirror_study_table() -> None:
    from fleetvision.models.mirror_study import VARIANTS, markdown_table

    results = {
        "c_split_swap_flips": {
            "settings": VARIANTS["c_split_swap_flips"],
            "metrics": {"top1": 0.9, "mirror_pair_accuracy": 0.8, "mirror_swap_rate": 0.1, "mirror_accuracy.side": 0.7},
            "train_seconds": 12.0,
        }
    }
    lines = markdown_table(results).splitlines()
    assert lines[0].startswith("| variant | head | flips | top1 | mirror_pair_accuracy | mirror_swap_rate | side |")
    assert lines[2] == "| c_split_swap_flips | split | swap | 0.900 | 0.800 | 0.100 | 0.700 | 12 |"


def test_initialise_from_copies_backbone_and_same_named_heads(cfg, tmp_path) -> None:
    from fleetvision.models.architecture import build_multitask_model, initialise_from, load_model_file, task_model
    from fleetvision.models.starter import save_task_model

    spec = TrainSpec.from_config(cfg, ("angle", "body"), quick=True)
    trained = build_multitask_model(TrainSpec.from_config(cfg, ("angle", "body"), quick=True, seed=1), 27, 7)
    path = save_task_model(task_model(trained, "body"), tmp_path / "body.keras")
    fresh = build_multitask_model(spec, 27, 7)
    copied = initialise_from(fresh, load_model_file(str(path)))
    assert {"backbone", "body", "body_conv"} <= set(copied) and "angle" not in copied
    for a, b in zip(fresh.get_layer("backbone").get_weights(), trained.get_layer("backbone").get_weights()):
        np.testing.assert_array_equal(a, b)
    # a multi-view body model (its backbone and branch sit in the nested body_view) hands over the same
    multi = save_task_model(task_model(trained, "body", body_views=4), tmp_path / "body4.keras")
    again = build_multitask_model(spec, 27, 7)
    assert set(initialise_from(again, load_model_file(str(multi)))) == set(copied)
    for layer in ("backbone", "body_conv", "body"):
        for a, b in zip(again.get_layer(layer).get_weights(), trained.get_layer(layer).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    other = build_multitask_model(TrainSpec.from_config(cfg, ("body",), quick=True, backbone_alpha=0.5), 27, 7)
    with pytest.raises(ValueError, match="no matching backbone"):
        initialise_from(other, load_model_file(str(path)))
    with pytest.raises(FileNotFoundError, match="no model file"):
        load_model_file(str(tmp_path / "missing.keras"))


def test_softmax_prior_shift_reweights_classes_by_prior_over_training_share() -> None:
    import keras

    from fleetvision.models.calibration import shift_softmax_prior
    from fleetvision.synth.catalog import BODY_MIX

    rng = np.random.default_rng(0)
    layer = keras.layers.Dense(3, activation="softmax")
    x = rng.normal(size=(16, 5)).astype(np.float32)
    before = np.asarray(layer(x))
    train, prior = np.array([1 / 3, 1 / 3, 1 / 3]), np.array([0.6, 0.3, 0.1])
    shift = shift_softmax_prior(layer, train, prior)
    np.testing.assert_allclose(shift, np.log(prior / train), rtol=1e-6)
    expected = before * prior / train
    np.testing.assert_allclose(np.asarray(layer(x)), expected / expected.sum(1, keepdims=True), rtol=1e-4)
    with pytest.raises(ValueError, match="positive"):
        shift_softmax_prior(layer, train, np.array([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="no bias of width"):
        shift_softmax_prior(layer, np.ones(4) / 4, np.ones(4) / 4)
    # the default prior is the synthetic market's mix (the eval set's), not a copy that can drift
    assert load_config(environ={}).models.body_prior == BODY_MIX
