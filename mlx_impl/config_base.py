"""`StrictConfig`: the one `from_dict` / `to_dict` every model config inherits.

A model config is a frozen dataclass whose field names are the upstream config's. `from_dict`
reads an upstream config dict strictly:

- a missing field without a default is an error naming it (never a silent default);
- a key that is neither a field nor in the class's `IGNORED` set (bookkeeping such as
  `model_type`, `transformers_version`) is an error naming the fields;
- list values of `tuple[...]` fields become tuples (nested lists too);
- `prepare(d)` (a classmethod hook) may rename or derive keys first, e.g. a nested
  `rope_parameters` block; `validate()` checks the built config.

`to_dict()` gives a JSON-able dict (tuples as lists) that `from_dict` reads back.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

# keys transformers writes into every config.json that describe no architecture
BOOKKEEPING = frozenset({
    "architectures", "model_type", "transformers_version", "dtype", "torch_dtype", "return_dict",
    "output_hidden_states", "output_attentions", "id2label", "label2id", "problem_type",
    "chunk_size_feed_forward", "is_encoder_decoder", "tie_word_embeddings", "_name_or_path",
    "_attn_implementation_autoset"})


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v


def _lists(v: Any) -> Any:
    return [_lists(x) for x in v] if isinstance(v, (list, tuple)) else v


class StrictConfig:
    """Base of the frozen config dataclasses (see the module docstring)."""

    WHAT: ClassVar[str] = ""  # the model's name in error messages ("DAC")
    IGNORED: ClassVar[frozenset[str]] = BOOKKEEPING  # keys read and dropped

    @classmethod
    def prepare(cls, d: dict) -> dict:
        """Rename or derive upstream keys before the strict check (default: none)."""
        return d

    @classmethod
    def from_dict(cls, d: dict):
        what = cls.WHAT or cls.__name__
        fields = dataclasses.fields(cls)
        names = [f.name for f in fields]
        d = cls.prepare(dict(d))
        required = [f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [n for n in required if n not in d]
        if missing:
            raise ValueError(f"{what} config is missing {missing}; pass the full upstream config "
                             f"(config.json), got keys {sorted(d)}")
        unknown = sorted(set(d) - set(names) - cls.IGNORED)
        if unknown:
            raise ValueError(f"{what} config has unknown keys {unknown}; expected {names}")
        values = {}
        for f in fields:
            if f.name in d:
                v = d[f.name]
                values[f.name] = _tuples(v) if str(f.type).startswith("tuple") else v
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ValueError on an unsupported or inconsistent configuration (default: none)."""

    def to_dict(self) -> dict:
        return {k: _lists(v) for k, v in dataclasses.asdict(self).items()}
