"""Reader for the CTranslate2 ``model.bin`` format, in plain numpy (no ctranslate2 import).

Layout (little endian), as written by ``ctranslate2.specs.model_spec.ModelSpec._serialize``
(ctranslate2 4.x, ``CURRENT_BINARY_VERSION = 6``)::

    uint32 binary_version
    string spec_name                       # uint16 length incl. NUL, bytes, NUL
    uint32 spec_revision
    uint32 n_variables
    n_variables x {
        string name
        uint8  rank
        uint32 dims[rank]
        uint8  dtype_id                    # 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16
        uint32 n_bytes
        bytes  data[n_bytes]
    }
    uint32 n_aliases
    n_aliases x { string alias; string target }

Scalars (``num_heads``, flags) are rank-0 variables; strings are stored as int8 arrays
(``CT2Model.string`` decodes them). bfloat16 has no numpy dtype, so it is widened to float32
exactly (a 16-bit shift); every other dtype is kept as stored. A model split into parts
(``model.bin.part1``, ``model.bin.part2``...) is read by streaming the parts in order.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SUPPORTED_BINARY_VERSIONS = (6,)

# Order of the DataType enum in ctranslate2 include/ctranslate2/types.h.
_DTYPES: dict[int, tuple[str, np.dtype]] = {
    0: ("float32", np.dtype("<f4")),
    1: ("int8", np.dtype("i1")),
    2: ("int16", np.dtype("<i2")),
    3: ("int32", np.dtype("<i4")),
    4: ("float16", np.dtype("<f2")),
    5: ("bfloat16", np.dtype("<u2")),  # raw bits; widened to float32 after reading
}

_MAX_NAME_BYTES = 4096  # longest plausible variable name; a larger length means a corrupt file


class CT2FormatError(ValueError):
    """The file is not a readable CTranslate2 model.bin (truncated, corrupt, unsupported)."""


@dataclass
class CT2Model:
    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, np.ndarray]  # aliases resolved: an alias maps to its target's array
    aliases: dict[str, str] = field(default_factory=dict)  # alias name -> target name

    def scalar(self, name: str) -> int | float:
        """A rank-0 attribute such as ``encoder/num_heads``."""
        value = self._get(name)
        if value.ndim != 0:
            raise CT2FormatError(f"{name} is not a scalar: shape {value.shape}")
        return value.item()

    def string(self, name: str) -> str:
        """A string attribute (stored by ctranslate2 as an int8 array of UTF-8 bytes)."""
        value = self._get(name)
        if value.dtype != np.int8 or value.ndim != 1:
            raise CT2FormatError(f"{name} is not a string: {value.dtype} {value.shape}")
        return value.tobytes().decode("utf-8")

    def _get(self, name: str) -> np.ndarray:
        if name not in self.variables:
            raise KeyError(f"{self.spec_name} has no variable {name!r}")
        return self.variables[name]


class _ChainedReader:
    """Reads a sequence of part files as one byte stream, tracking the global offset."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)
        self.offset = 0
        self.total = sum(p.stat().st_size for p in self.paths)
        self._index = 0
        self._file = open(self.paths[0], "rb")  # noqa: SIM115 (closed by close())

    def close(self) -> None:
        self._file.close()

    def readinto(self, buf: memoryview) -> int:
        """Fill as much of buf as the stream allows; returns the number of bytes read."""
        filled = 0
        while filled < len(buf):
            n = self._file.readinto(buf[filled:])
            if n:
                filled += n
                continue
            if self._index + 1 >= len(self.paths):
                break
            self._file.close()
            self._index += 1
            self._file = open(self.paths[self._index], "rb")  # noqa: SIM115
        self.offset += filled
        return filled

    def read_exact(self, n: int, what: str) -> bytes:
        buf = bytearray(n)
        got = self.readinto(memoryview(buf))
        if got != n:
            raise self.truncated(what, n - got)
        return bytes(buf)

    def truncated(self, what: str, missing: int) -> CT2FormatError:
        names = " + ".join(p.name for p in self.paths)
        return CT2FormatError(
            f"{names} ends at byte {self.offset} while {what} needs {missing} more bytes: "
            "file truncated or a part missing"
        )


def _resolve_paths(paths: Path | str | Sequence[Path | str]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    resolved = [Path(p) for p in paths]
    if not resolved:
        raise ValueError("read_model_bin needs at least one path")
    for i, p in enumerate(resolved):
        if not p.is_file():
            part = f"part {i + 1} of {len(resolved)} " if len(resolved) > 1 else ""
            raise FileNotFoundError(f"CTranslate2 model {part}not found: {p}")
    return resolved


def read_model_bin(paths: Path | str | Sequence[Path | str]) -> CT2Model:
    """Parse a CTranslate2 model.bin (or its parts, concatenated in the given order)."""
    reader = _ChainedReader(_resolve_paths(paths))
    try:
        return _parse(reader)
    finally:
        reader.close()


def _parse(r: _ChainedReader) -> CT2Model:
    def u8(what: str) -> int:
        return r.read_exact(1, what)[0]

    def u16(what: str) -> int:
        return struct.unpack("<H", r.read_exact(2, what))[0]

    def u32(what: str) -> int:
        return struct.unpack("<I", r.read_exact(4, what))[0]

    def string(what: str) -> str:
        n = u16(f"the length of {what}")
        if n == 0 or n > _MAX_NAME_BYTES:
            raise CT2FormatError(f"{what} at byte {r.offset - 2} has length {n}: corrupt file")
        raw = r.read_exact(n, what)
        if raw[-1] != 0:
            raise CT2FormatError(f"{what} at byte {r.offset - n} is not NUL-terminated: corrupt file")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as e:
            raise CT2FormatError(f"{what} at byte {r.offset - n} is not UTF-8: corrupt file") from e

    version = u32("the binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise CT2FormatError(
            f"{r.paths[0]}: binary version {version} is not supported (supported: "
            f"{', '.join(map(str, SUPPORTED_BINARY_VERSIONS))}); this is either not a CTranslate2 "
            "model.bin or an old one: re-convert it with ctranslate2 >= 3"
        )
    spec_name = string("the spec name")
    spec_revision = u32("the spec revision")
    n_vars = u32("the variable count")

    variables: dict[str, np.ndarray] = {}
    for i in range(n_vars):
        name = string(f"the name of variable {i}")
        rank = u8(f"the rank of variable {name}")
        shape = tuple(u32(f"the shape of variable {name}") for _ in range(rank))
        dtype_id = u8(f"the dtype of variable {name}")
        if dtype_id not in _DTYPES:
            raise CT2FormatError(
                f"variable {name} has unknown dtype id {dtype_id} (known: "
                + ", ".join(f"{k}={v[0]}" for k, v in _DTYPES.items())
                + "): corrupt file or a newer ctranslate2 format"
            )
        dtype_name, dtype = _DTYPES[dtype_id]
        n_bytes = u32(f"the byte count of variable {name}")
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if n_bytes != expected:
            raise CT2FormatError(
                f"variable {name} declares {n_bytes} bytes but shape {shape} {dtype_name} "
                f"needs {expected}: corrupt file"
            )
        if name in variables:
            raise CT2FormatError(f"variable {name} appears twice: corrupt file")
        array = np.empty(shape, dtype=dtype)
        got = r.readinto(memoryview(array.reshape(-1).view(np.uint8)))
        if got != n_bytes:
            raise r.truncated(f"variable {name}", n_bytes - got)
        if dtype_name == "bfloat16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = array

    n_aliases = u32("the alias count")
    aliases: dict[str, str] = {}
    for i in range(n_aliases):
        alias = string(f"the name of alias {i}")
        target = string(f"the target of alias {alias}")
        aliases[alias] = target

    trailing = r.total - r.offset
    if trailing:
        raise CT2FormatError(
            f"{trailing} unexpected bytes after the last alias at byte {r.offset}: "
            "trailing garbage, parts in the wrong order, or a part given twice"
        )

    for alias, target in aliases.items():
        if target not in variables:
            raise CT2FormatError(f"alias {alias} points to {target}, which is not a variable")
        if alias in variables:
            raise CT2FormatError(f"alias {alias} is also stored as a variable: corrupt file")
        variables[alias] = variables[target]

    return CT2Model(version, spec_name, spec_revision, variables, aliases)
