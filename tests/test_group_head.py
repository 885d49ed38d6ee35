"""An angle model with a head of its own for the shot group: ``fleetvision.models.group_head`` and
``fleetvision group-head``.

The view head is the shipped starter's view head; the group head is that head with seeded noise on its
weights (so its groups differ). Both run on the installed backbone; no Spark (the evaluation path is the
one ``fleetvision soup`` shares and tests, ``head_release``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from fleetvision.models import group_head_job
from fleetvision.models.group_head import GroupHeadError, has_group_head, with_group_head
from fleetvision.scoring.shot_groups import ANGLE_GROUP, group_matrix
from fleetvision.taxonomy import load_taxonomy

STARTER = Path(__file__).resolve().parents[1] / "models" / "starter"
TAX = load_taxonomy()


def _plain_view_head() -> keras.Model:
    """The starter's view head alone (the starter's angle model may carry a group head itself)."""
    head = keras.saving.load_model(STARTER / "angle" / "head.keras", compile=False)
    if not has_group_head(head):
        return head
    return keras.Model(head.inputs, {"angle": head.get_layer("angle").output}, name=head.name)


def _head_folder(root: Path, head: keras.Model, seed: int) -> Path:
    """``root/angle/``: ``head`` with its backbone.json and a model card, as ``train --out root`` saves."""
    folder = root / "angle"
    folder.mkdir(parents=True)
    shutil.copy(STARTER / "angle" / "backbone.json", folder / "backbone.json")
    head.save(folder / "head.keras")
    card = json.loads((STARTER / "angle" / "metrics.json").read_text())
    card = {**card.get("view_head", card), "task": "angle", "mlflow_run_id": f"run-{seed}"}
    card["spec"] = {**card["spec"], "seed": seed}
    (folder / "metrics.json").write_text(json.dumps(card))
    return root


def _noisy(head: keras.Model, seed: int) -> keras.Model:
    other = keras.models.clone_model(head)
    rng = np.random.default_rng(seed)
    other.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in head.get_weights()])
    return other


@pytest.fixture(scope="module")
def heads() -> tuple[keras.Model, keras.Model]:
    view = _plain_view_head()
    return view, _noisy(view, 7)


def test_the_joined_head_gives_the_view_heads_softmax_and_the_group_heads_groups(heads) -> None:
    from fleetvision.models.pretrained import pools_halves

    view, group = heads
    joined = with_group_head(view, group, TAX)
    assert joined.name == "head_angle" and pools_halves(joined) and has_group_head(joined)
    maps = np.random.default_rng(0).normal(0, 1, (3, *view.inputs[0].shape[1:])).astype(np.float32)
    out = joined([maps], training=False)
    np.testing.assert_allclose(np.asarray(out["angle"]), np.asarray(view([maps], training=False)["angle"]), atol=1e-6)
    expected = np.asarray(group([maps], training=False)["angle"]) @ group_matrix(TAX)
    np.testing.assert_allclose(np.asarray(out[ANGLE_GROUP]), expected, atol=1e-5)
    assert np.abs(expected - np.asarray(out["angle"]) @ group_matrix(TAX)).max() > 1e-3  # another answer
    assert not joined.get_layer(ANGLE_GROUP).trainable  # the per-group sum is fixed
    with pytest.raises(GroupHeadError, match="already carries"):
        with_group_head(joined, group, TAX)
    body = keras.Model(view.inputs, {"angle": keras.layers.Dense(27, name="angle")(
        keras.layers.GlobalAveragePooling2D()(view.inputs[0]))}, name="head_angle")
    with pytest.raises(GroupHeadError, match="differ"):
        with_group_head(view, body, TAX)


def test_with_a_cabin_head_the_interior_is_its_and_the_rest_is_split_by_the_group_head(heads) -> None:
    """``[(1 - c) e, c, (1 - c) d]``: ``c`` the cabin head's interior probability, ``e`` and ``d`` the group
    head's exterior and detail shares of its non-interior mass."""
    view, group = heads
    cabin = _noisy(view, 11)
    joined = with_group_head(view, group, TAX, cabin)
    assert has_group_head(joined)
    fixed = ("angle_group_masked", "angle_group_shares", "angle_cabin_groups", "angle_cabin_interior",
             "angle_cabin_rest", "angle_cabin_at_interior")
    assert not any(joined.get_layer(name).trainable for name in fixed)
    maps = np.random.default_rng(3).normal(0, 1, (4, *view.inputs[0].shape[1:])).astype(np.float32)
    out = joined([maps], training=False)
    matrix = group_matrix(TAX)
    c = (np.asarray(cabin([maps], training=False)["angle"]) @ matrix)[:, 1]
    g = np.asarray(group([maps], training=False)["angle"]) @ matrix
    e, d = g[:, 0] / (g[:, 0] + g[:, 2]), g[:, 2] / (g[:, 0] + g[:, 2])
    expected = np.stack([(1 - c) * e, c, (1 - c) * d], axis=1)
    np.testing.assert_allclose(np.asarray(out[ANGLE_GROUP]), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out["angle"]), np.asarray(view([maps], training=False)["angle"]), atol=1e-6)
    assert np.abs(expected - g).max() > 1e-3  # not the group head's own answer
    with pytest.raises(GroupHeadError, match="already carries"):
        with_group_head(view, group, TAX, joined)
    body = keras.Model(view.inputs, {"angle": keras.layers.Dense(27, name="angle")(
        keras.layers.GlobalAveragePooling2D()(view.inputs[0]))}, name="head_angle")
    with pytest.raises(GroupHeadError, match="differ"):
        with_group_head(view, group, TAX, body)


def test_the_scoring_model_answers_the_group_in_the_same_pass(heads, tmp_path: Path) -> None:
    """Saved, loaded on the installed backbone and fused with the other starter models: ``angle_group``
    comes out beside ``angle`` and ``angle_mirror``, and the tags read it."""
    from fleetvision.models.pretrained import load_saved_task_model
    from fleetvision.models.serving import fused_predictors
    from fleetvision.scoring import ScoringRules
    from fleetvision.scoring.tags import tag_rows

    view, group = heads
    root = _head_folder(tmp_path / "joined", with_group_head(view, group, TAX), 0)
    models = {"angle": load_saved_task_model(root / "angle", "angle"),
              "banner": load_saved_task_model(STARTER / "banner", "banner")}
    size = int(models["angle"].input_shape[1])
    (key, predict), = fused_predictors(models, size).items()
    assert key == "angle+banner"
    batch = np.random.default_rng(2).integers(0, 256, (2, size, size, 3), np.uint8)
    out = predict(batch)
    assert set(out) == {"angle", "banner", "angle_mirror", ANGLE_GROUP}
    np.testing.assert_allclose(out[ANGLE_GROUP].sum(axis=1), 1.0, atol=1e-5)
    frame = tag_rows(out, TAX, ScoringRules.default(TAX), names=("angle", "banner"))
    best_group = [("exterior", "interior", "detail")[int(i)] for i in out[ANGLE_GROUP].argmax(axis=1)]
    assert frame["shot_group"].tolist() == best_group  # the group is the group head's


def test_training_can_start_from_a_joined_head(heads, caplog) -> None:
    """``train angle --init-from`` a model whose angle head carries a group head: the view head's layers
    are copied one by one (the heads differ as a whole)."""
    from fleetvision.models.architecture import initialise_from
    from fleetvision.models.pretrained import compose_task_model, load_saved_task_model, nested_backbone

    view, group = heads
    backbone = nested_backbone(load_saved_task_model(STARTER / "banner", "banner"))
    source = compose_task_model(backbone, with_group_head(view, group, TAX), "angle")
    fresh_head = keras.models.clone_model(view)
    fresh_head.set_weights([np.zeros_like(w) for w in view.get_weights()])
    target = compose_task_model(backbone, fresh_head, "angle")
    copied = initialise_from(target, source)
    assert "backbone" in copied and "head_angle/angle" in copied
    assert "angle_group_classes" in caplog.text and "not carried" in caplog.text  # said, not silently dropped
    for got, want in zip(fresh_head.get_layer("angle").get_weights(), view.get_layer("angle").get_weights(),
                         strict=True):
        np.testing.assert_array_equal(got, want)


def _args(views: Path, groups: Path, out: Path, **kw) -> argparse.Namespace:
    return argparse.Namespace(views=views, groups=groups, out=out, register=kw.pop("register", False),
                              cabin=kw.pop("cabin", None), no_eval=True, conf=None, overrides=[], **kw)


def test_the_job_saves_the_joined_head_with_its_card_and_registers_it(
    heads, local_mlflow_config, tmp_path, caplog
) -> None:
    from fleetvision.models.resolve import mlflow_client

    view, group = heads
    views, groups = _head_folder(tmp_path / "v", view, 0), _head_folder(tmp_path / "g", group, 1)
    out = tmp_path / "out"
    assert group_head_job.main(None, local_mlflow_config, _args(views, groups, out, register=True)) == 0
    assert sorted(p.name for p in (out / "angle").iterdir()) == ["backbone.json", "head.keras", "metrics.json"]
    saved = keras.saving.load_model(out / "angle" / "head.keras", compile=False)
    assert has_group_head(saved)
    card = json.loads((out / "angle" / "metrics.json").read_text())
    assert card["command"].startswith("fleetvision group-head --views") and card["spec"]["seed"] == 0
    assert card["view_head"]["mlflow_run_id"] == "run-0" and card["group_head"]["mlflow_run_id"] == "run-1"
    version = mlflow_client(local_mlflow_config).search_model_versions("name='fleetvision-angle'")[0]
    assert version.tags["fleetvision.source"] == "group-head"
    assert "cabin_head" not in card

    # with a cabin head: the card names it and the command gives it
    cabins, with_cabin = _head_folder(tmp_path / "c", _noisy(view, 11), 2), tmp_path / "with_cabin"
    assert group_head_job.main(None, local_mlflow_config, _args(views, groups, with_cabin, cabin=cabins)) == 0
    card = json.loads((with_cabin / "angle" / "metrics.json").read_text())
    assert card["cabin_head"]["mlflow_run_id"] == "run-2" and f"--cabin {cabins}" in card["command"]

    # refused, nothing written: a head that already carries one, another backbone, overwriting an input
    again = tmp_path / "again"
    assert group_head_job.main(None, local_mlflow_config, _args(out, groups, again)) == 2
    assert "already carries" in caplog.text and not again.exists()
    meta = json.loads((groups / "angle" / "backbone.json").read_text())
    (groups / "angle" / "backbone.json").write_text(json.dumps({**meta, "input_size": 192}))
    assert group_head_job.main(None, local_mlflow_config, _args(views, groups, again)) == 2
    assert "different backbones" in caplog.text and not again.exists()
    (groups / "angle" / "backbone.json").write_text(json.dumps(meta))
    before = (views / "angle" / "head.keras").read_bytes()
    assert group_head_job.main(None, local_mlflow_config, _args(views, groups, views)) == 2
    assert "would overwrite" in caplog.text and (views / "angle" / "head.keras").read_bytes() == before
