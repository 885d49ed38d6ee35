"""The label-free car-likeness measure (fleetvision.models.imagenet_cars)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fleetvision.models.efficientnet_lite import imagenet_classifier
from fleetvision.models.imagenet_cars import CAR_CLASSES, car_likeness

PICKUP, ESPRESSO = 717, 967


def test_car_mass_is_the_softmax_share_on_the_car_classes() -> None:
    logits = np.zeros((3, 1000))
    logits[1, PICKUP] = 20.0  # sure it is a pickup
    logits[2, ESPRESSO] = 20.0  # sure it is not a car
    mass, top = car_likeness(logits)
    assert mass[0] == pytest.approx(len(CAR_CLASSES) / 1000)
    assert mass[1] > 0.999 and top[1]
    assert mass[2] < 1e-6 and not top[2]
    with pytest.raises(ValueError, match=r"\[N, 1000\]"):
        car_likeness(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="non-finite"):
        car_likeness(np.full((1, 1000), np.nan))


def test_a_real_photo_of_coffee_is_not_a_car() -> None:
    from skimage import data

    model = imagenet_classifier("efficientnet_lite0", 224)
    photo = Image.fromarray(data.coffee()).resize((224, 224), Image.Resampling.BILINEAR)
    mass, top = car_likeness(np.asarray(model(np.asarray(photo, np.float32)[None], training=False)))
    assert mass[0] < 0.05 and not top[0]
