"""Read ``torch.save`` zip checkpoints into numpy, without importing torch (safetensors files:
``weights.hf_safetensors.read_safetensors``).

A torch zip checkpoint (torch >= 1.6) is a zip archive ``<prefix>/data.pkl`` (the pickled object)
plus one file ``<prefix>/data/<key>`` per storage, and ``<prefix>/byteorder``. Tensors are pickled
as calls to ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` whose storage is
a persistent id ``('storage', torch.FloatStorage, key, location, numel)``. The unpickler here
allows only those globals (and ``collections.OrderedDict``); anything else is refused by name, so
a checkpoint cannot run code. Tensors come back as numpy arrays in their stored dtype; bfloat16,
which numpy lacks, is widened to float32 exactly.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


class CheckpointError(ValueError):
    """The checkpoint cannot be read safely or is malformed."""


class _StorageType:
    def __init__(self, name: str, dtype: str):
        self.name = name
        self.dtype = np.dtype(dtype)

    def __repr__(self) -> str:
        return f"torch.{self.name}"


_STORAGE_TYPES = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "BFloat16Storage": "u2",  # raw bits, widened to float32 in _rebuild_tensor_v2
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    array, is_bf16 = storage
    size, stride = tuple(size), tuple(stride)
    if any(n == 0 for n in size):
        out = np.zeros(size, dtype=array.dtype)
    else:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if storage_offset < 0 or any(s < 0 for s in stride) or last >= array.size:
            raise CheckpointError(
                f"tensor of size {size} stride {stride} offset {storage_offset} runs past its "
                f"storage of {array.size} elements: corrupt checkpoint"
            )
        contiguous = tuple(int(np.prod(size[i + 1:], dtype=np.int64)) for i in range(len(size)))
        if all(s == c for n, s, c in zip(size, stride, contiguous) if n > 1):
            out = array[storage_offset:storage_offset + int(np.prod(size, dtype=np.int64))]
            out = out.reshape(size)
        else:
            itemsize = array.dtype.itemsize
            view = np.lib.stride_tricks.as_strided(
                array[storage_offset:], shape=size,
                strides=tuple(s * itemsize for s in stride), writeable=False,
            )
            out = np.ascontiguousarray(view)  # copy: a strided view would alias other tensors
    if is_bf16:
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(name, dt) for name, dt in _STORAGE_TYPES.items()},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, byteorder: str, path: Path):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._byteorder = "<" if byteorder == "little" else ">"
        self._path = path
        self._storages: dict[str, tuple[np.ndarray, bool]] = {}

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"{self._path} needs the global {module}.{name}, which this torch-free reader does "
                "not allow (only tensors, parameters and plain containers are); re-save the "
                "checkpoint as a plain state dict or as safetensors"
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self._path}: unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"{self._path}: storage {key} has unknown type {storage_type!r}")
        if key not in self._storages:
            member = f"{self._prefix}/data/{key}"
            try:
                raw = bytearray(self._archive.read(member))
            except KeyError:
                raise CheckpointError(f"{self._path} lacks {member}: truncated checkpoint") from None
            dtype = storage_type.dtype.newbyteorder(self._byteorder)
            if len(raw) != numel * dtype.itemsize:
                raise CheckpointError(
                    f"{self._path}: {member} has {len(raw)} bytes, expected {numel} x "
                    f"{dtype.itemsize}: corrupt checkpoint"
                )
            array = np.frombuffer(raw, dtype=dtype)
            if not dtype.isnative:
                array = array.astype(dtype.newbyteorder("="))
            self._storages[key] = (array, storage_type.name == "BFloat16Storage")
        return self._storages[key]


def read_torch_zip(path: Path | str) -> Any:
    """Unpickle a torch zip checkpoint; tensors become numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a zip archive: legacy (pre-1.6) torch.save format or not a torch "
            "checkpoint; re-save it with torch >= 1.6 or convert it to safetensors"
        )
    with zipfile.ZipFile(path) as archive:
        pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise CheckpointError(f"{path}: expected one <prefix>/data.pkl, found {pkls}")
        prefix = pkls[0].split("/")[0]
        try:
            byteorder = archive.read(f"{prefix}/byteorder").decode().strip()
        except KeyError:
            byteorder = "little"  # torch writes no byteorder record before 1.12: little endian
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"{path}: unknown byteorder {byteorder!r}")
        with archive.open(pkls[0]) as f:
            return _Unpickler(f, archive, prefix, byteorder, path).load()

