"""Whisper model dimensions, with the field names of openai-whisper's `ModelDimensions`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import StrictConfig


@dataclass(frozen=True)
class WhisperConfig(StrictConfig):
    n_mels: int  # mel bins of the front end (80, or 128 for large-v3)
    n_audio_ctx: int  # encoder positions: mel frames / 2 (1500 for 30 s)
    n_audio_state: int  # encoder width
    n_audio_head: int  # encoder attention heads
    n_audio_layer: int  # encoder blocks
    n_vocab: int  # 51864 for .en models, 51865+ for multilingual ones
    n_text_ctx: int  # decoder positions (448)
    n_text_state: int  # decoder width
    n_text_head: int  # decoder attention heads
    n_text_layer: int  # decoder blocks

    WHAT: ClassVar[str] = "Whisper dims"
    IGNORED: ClassVar[frozenset[str]] = frozenset()  # ModelDimensions has no bookkeeping

    @classmethod
    def prepare(cls, d: dict) -> dict:
        return {k: int(v) if k in cls.__dataclass_fields__ else v for k, v in d.items()}

    @property
    def n_frames(self) -> int:
        """Mel frames the encoder expects (conv2 halves the time axis)."""
        return 2 * self.n_audio_ctx

    @property
    def is_multilingual(self) -> bool:
        return self.n_vocab >= 51865

    @property
    def num_languages(self) -> int:
        return self.n_vocab - 51765 - int(self.is_multilingual)


# Published dimensions of the openai-whisper checkpoints (whisper/__init__.py _MODELS).
_SHARED = dict(n_mels=80, n_audio_ctx=1500, n_text_ctx=448)
PRESETS: dict[str, WhisperConfig] = {
    "tiny.en": WhisperConfig(**_SHARED, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
                             n_vocab=51864, n_text_state=384, n_text_head=6, n_text_layer=4),
    "tiny": WhisperConfig(**_SHARED, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
                          n_vocab=51865, n_text_state=384, n_text_head=6, n_text_layer=4),
    "base": WhisperConfig(**_SHARED, n_audio_state=512, n_audio_head=8, n_audio_layer=6,
                          n_vocab=51865, n_text_state=512, n_text_head=8, n_text_layer=6),
    "small": WhisperConfig(**_SHARED, n_audio_state=768, n_audio_head=12, n_audio_layer=12,
                           n_vocab=51865, n_text_state=768, n_text_head=12, n_text_layer=12),
}
