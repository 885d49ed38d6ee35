"""Type aliases shared across the package (one definition each)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np


class ModelSetLike(Protocol):
    """What the worker cache needs of :class:`fleetvision.models.resolve.ModelSet` (stand-ins in tests)."""

    @property
    def model_set_id(self) -> str: ...


PredictFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]
"""A loaded model: uint8 ``[N, S, S, 3]`` RGB -> named numpy outputs with N rows (N = 0 allowed)."""

ModelLoader = Callable[[Any], Mapping[str, PredictFn]]
"""``loader(model_set) -> {tasks: predict_fn}``; runs once per Python worker per model set."""
