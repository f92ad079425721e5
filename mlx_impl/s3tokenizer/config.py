"""S3 tokenizer configuration: the fields of s3tokenizer 0.3.0's `ModelConfig` plus the model name.

Upstream derives the architecture from the checkpoint *name* (`S3Tokenizer(name, config)`):
`speech_tokenizer_v1` (50 tokens/s: conv1 stride 1, Whisper encoder with sinusoidal positions,
4096-entry Euclidean VQ on L2-normalised features), `speech_tokenizer_v1_25hz` (the same with
conv1 stride 2) and `speech_tokenizer_v2_25hz` (25 tokens/s: FSMN attention + RoPE, no positions,
FSQ with 3**8 = 6561 codes). `from_dict` needs every field; `use_sdpa` (an upstream speed switch
with the same math) is accepted and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import StrictConfig

NAMES = ("speech_tokenizer_v1", "speech_tokenizer_v1_25hz", "speech_tokenizer_v2_25hz")
ROPE_HEAD_DIM = 64  # upstream: precompute_freqs_cis(64, 1024 * 2), whatever the head size
ROPE_MAX_POSITIONS = 2048
FSMN_KERNEL = 31  # upstream's FSMNMultiHeadAttention default, used by every v2 block


@dataclass(frozen=True)
class S3TokenizerConfig(StrictConfig):
    name: str  # upstream checkpoint name; selects the architecture (see module docstring)
    n_mels: int  # log-mel bins of the front end (128)
    n_audio_ctx: int  # positions of v1's sinusoid table (1500 = 30 s at 50 tokens/s)
    n_audio_state: int  # encoder width
    n_audio_head: int
    n_audio_layer: int
    n_codebook_size: int  # 4096 (v1 VQ) or 3**8 = 6561 (v2 FSQ)

    WHAT: ClassVar[str] = "S3 tokenizer"
    IGNORED: ClassVar[frozenset[str]] = frozenset({"use_sdpa"})  # a speed switch, same math

    def validate(self) -> None:
        if self.name not in NAMES:
            raise ValueError(f"unknown S3 tokenizer {self.name!r}; expected one of {NAMES}")
        if self.n_audio_state % self.n_audio_head:
            raise ValueError(f"n_audio_state={self.n_audio_state} is not divisible by "
                             f"n_audio_head={self.n_audio_head}")
        if self.version == 2:
            if self.n_codebook_size != 3 ** 8:
                raise ValueError(f"v2 uses FSQ with 3**8 = 6561 codes, got {self.n_codebook_size}")
            if self.head_dim != ROPE_HEAD_DIM:
                raise ValueError(f"v2's rotary table is fixed at 64 channels per head; "
                                 f"n_audio_state / n_audio_head = {self.head_dim}")

    @property
    def version(self) -> int:
        return 2 if "v2" in self.name else 1

    @property
    def head_dim(self) -> int:
        return self.n_audio_state // self.n_audio_head

    @property
    def conv1_stride(self) -> int:
        return 1 if self.name == "speech_tokenizer_v1" else 2

    @property
    def token_rate(self) -> int:
        """Tokens per second: 100 mel frames/s over conv1 stride x conv2 stride 2."""
        return 100 // (2 * self.conv1_stride)


# The published configurations: s3tokenizer 0.3.0 ModelConfig defaults (model.py / model_v2.py)
PRESETS: dict[str, S3TokenizerConfig] = {
    "s3tokenizer-v1": S3TokenizerConfig("speech_tokenizer_v1", 128, 1500, 1280, 20, 6, 4096),
    "s3tokenizer-v2": S3TokenizerConfig("speech_tokenizer_v2_25hz", 128, 1500, 1280, 20, 6, 3 ** 8),
}
