"""OuteTTS configuration: the language model's transformers `LlamaConfig` dict, read strictly as
Orpheus's (`mlx_impl.orpheus.config.OrpheusConfig`: the same Llama fields, rope types and
refusals); only the vocabulary check differs (OuteTTS's token layout, `tokens.py`).
Presets: `mlx_impl.outetts.presets` (plain data, importable without mlx).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.orpheus.config import OrpheusConfig


@dataclass(frozen=True)
class OuteTTSConfig(OrpheusConfig):
    WHAT: ClassVar[str] = "OuteTTS (LlamaConfig)"

    def check_vocab(self) -> None:
        from mlx_impl.outetts.tokens import VOCAB_SIZE

        if self.vocab_size < VOCAB_SIZE:
            raise ValueError(f"vocab_size {self.vocab_size} cannot hold OuteTTS's tokens (ids up "
                             f"to {VOCAB_SIZE - 1})")


from mlx_impl.outetts.presets import PRESETS  # noqa: E402,F401  (re-exported)
