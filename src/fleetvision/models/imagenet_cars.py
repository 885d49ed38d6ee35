"""How car-like a photo looks to an ImageNet classifier: a label-free measure of how real renders look.

The converted EfficientNet-Lite0 classifier (:func:`fleetvision.models.efficientnet_lite.imagenet_classifier`)
learnt "car" from real photos. On a real listing photo nearly all of its probability falls on the
ImageNet classes of cars, vans and light trucks (and two car parts); on a render that does not look like
a car it falls on other things. The share that lands on those classes (the *car mass*) and whether the
top class is one of them need no labels, so a renderer change can be judged in minutes, before any
training and without the real dev set (``benchmarks/bench_render_realism.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

CAR_CLASSES: dict[int, str] = {
    407: "ambulance",
    436: "beach wagon",
    468: "cab",
    511: "convertible",
    609: "jeep",
    627: "limousine",
    654: "minibus",
    656: "minivan",
    661: "Model T",
    675: "moving van",
    717: "pickup",
    734: "police van",
    751: "racer",
    757: "recreational vehicle",
    817: "sports car",
    864: "tow truck",
    867: "trailer truck",
    479: "car wheel",
    581: "grille",
}
"""ImageNet-1k class index -> name: the cars, vans and light trucks a listing could show, and two car
parts a close crop of one shows. Chosen by what the classes are, not by any score."""


class CarLikeness(NamedTuple):
    """:func:`car_likeness`' answer, one value per photo."""

    mass: np.ndarray
    """Probability on :data:`CAR_CLASSES` (softmax over the 1,000 classes), float64 [N]."""
    top_is_car: np.ndarray
    """The most likely class is one of them, bool [N]."""


def car_likeness(logits: np.ndarray) -> CarLikeness:
    """Car mass and top-class check from an ImageNet classifier's logits [N, 1000].

    Raises:
        ValueError: ``logits`` is not [N, 1000] or holds a non-finite value.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 1000:
        raise ValueError(f"logits must be [N, 1000], got {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits hold a non-finite value")
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    cars = np.array(sorted(CAR_CLASSES))
    return CarLikeness(p[:, cars].sum(axis=1), np.isin(p.argmax(axis=1), cars))
