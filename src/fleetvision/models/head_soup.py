"""A model soup of heads: several heads of one task, trained by one recipe with different seeds, averaged
weight by weight into one head of the same shape (Wortsman et al., *Model soups*, 2022).

Why: heads trained on renders carry seed noise into real photos (five angle heads of one recipe gave
balanced real view recall 0.644-0.690, docs/models.md). Averaging the members takes most of that noise
out at no cost at scoring time: the soup is one head with the members' architecture, so it runs on the
same single backbone pass, is read, fused, served and fine-tuned (``train --init-from``) like any head.
For a head whose only weighted layer is its final dense layer (the angle head), averaging the weights is
exactly averaging the members' logits, an ensemble. Deeper heads average well only when every member
started from the same weights, so those soups need members trained ``--init-from`` one place.

Pure Keras and numpy: :func:`soup_heads` and the checks take loaded heads and model cards; the job
(:mod:`fleetvision.models.soup_job`) reads and writes the folders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

# spec fields that may differ between the members of one soup: the seed is the point; where each run
# was saved to says nothing about what it learnt
FREE_SPEC_FIELDS = frozenset({"seed"})


class SoupError(ValueError):
    """The members cannot make a soup (different architecture, backbone or recipe, or too few)."""


def weighted_layers(head: keras.Model) -> list[str]:
    """Names of the layers of ``head`` that hold weights, in order (nested models' layers included)."""
    names: list[str] = []
    for layer in head.layers:
        if isinstance(layer, keras.Model):
            names += [f"{layer.name}/{n}" for n in weighted_layers(layer)]
        elif layer.weights:
            names.append(layer.name)
    return names


def check_same_architecture(heads: Sequence[keras.Model]) -> None:
    """Every head has the first's layers and weight shapes.

    Raises:
        SoupError: Fewer than two heads, or one that differs (which one, and how).
    """
    if len(heads) < 2:
        raise SoupError(f"a soup needs at least two members, got {len(heads)}")
    first = heads[0]
    layers = weighted_layers(first)
    shapes = [tuple(w.shape) for w in first.weights]
    for i, head in enumerate(heads[1:], start=1):
        if head.name != first.name:
            raise SoupError(f"member {i} is {head.name!r}, member 0 is {first.name!r}: heads of one task only")
        if weighted_layers(head) != layers:
            raise SoupError(f"member {i} has layers {weighted_layers(head)}, member 0 {layers}")
        theirs = [tuple(w.shape) for w in head.weights]
        if theirs != shapes:
            raise SoupError(f"member {i}'s weight shapes {theirs} differ from member 0's {shapes}")


def recipe_differences(specs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The spec fields (model cards' ``spec``) whose values differ between members, seed aside.

    A field missing from a card counts as a value of its own (``None``).
    """
    keys = sorted({k for spec in specs for k in spec} - FREE_SPEC_FIELDS)
    return {k: [spec.get(k) for spec in specs] for k in keys if len({repr(spec.get(k)) for spec in specs}) > 1}


def check_recipe(specs: Sequence[Mapping[str, Any]], heads: Sequence[keras.Model]) -> None:
    """The members were trained by one recipe, and a deep head's members from one starting point.

    Raises:
        SoupError: The recipes differ (the fields, with each member's value), the seeds repeat (the
            same run twice averages to itself), or a head with more than one weighted layer has
            members that did not all start ``--init-from`` one place (their hidden units need not
            line up, and averaging them would break the head).
    """
    differ = recipe_differences(specs)
    if differ:
        listed = "; ".join(f"{k}: {v}" for k, v in differ.items())
        raise SoupError(f"the members were trained by different recipes ({listed}): a soup averages seeds of one")
    seeds = [spec.get("seed") for spec in specs]
    if len(set(map(repr, seeds))) < len(seeds):
        raise SoupError(f"the members' seeds repeat ({seeds}): each member must be a run of its own seed")
    deep = len(weighted_layers(heads[0])) > 1
    if deep and not specs[0].get("init_from"):
        raise SoupError(
            f"{heads[0].name} has {len(weighted_layers(heads[0]))} weighted layers and its members were not trained "
            "--init-from one model: only heads that started from the same weights average into a working head"
        )


def soup_weights(members: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """The element-wise mean of each weight over the members (floating weights, in their own dtype);
    a non-floating weight (a counter, a seed state) is the first member's.

    Raises:
        SoupError: The members hold different numbers or shapes of weights.
    """
    if not members:
        raise SoupError("no members")
    count = len(members[0])
    if any(len(m) != count for m in members):
        raise SoupError(f"the members hold {[len(m) for m in members]} weights")
    out = []
    for parts in zip(*members, strict=True):
        arrays = [np.asarray(p) for p in parts]
        if len({a.shape for a in arrays}) > 1:
            raise SoupError(f"weight shapes differ between members: {[a.shape for a in arrays]}")
        if np.issubdtype(arrays[0].dtype, np.floating):
            out.append(np.mean(np.stack(arrays).astype(np.float64), axis=0).astype(arrays[0].dtype))
        else:
            out.append(arrays[0].copy())
    return out


def soup_heads(heads: Sequence[keras.Model]) -> keras.Model:
    """One head with the members' architecture and the mean of their weights.

    The members are not changed: the soup is a clone of the first member.

    Raises:
        SoupError: As :func:`check_same_architecture`.
    """
    check_same_architecture(heads)
    soup = keras.models.clone_model(heads[0])
    soup.set_weights(soup_weights([h.get_weights() for h in heads]))
    return soup
