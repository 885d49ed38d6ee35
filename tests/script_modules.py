"""Importing the repository's scripts (``benchmarks/``, ``scripts/``) in tests: they are files, not packages."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def script_module(relative: str) -> Iterator[ModuleType]:
    """The script at ``relative`` (to the repository root), imported afresh for the ``with`` block.

    While in use it is registered in ``sys.modules`` (dataclasses look their module up while a class is
    built) and its folder is on ``sys.path`` (a script may import its neighbours, as the benchmarks do).
    """
    path = ROOT / relative
    name = f"fleetvision_script_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
        sys.path.remove(str(path.parent))
