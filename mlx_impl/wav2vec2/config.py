"""Wav2Vec2 CTC configuration, with the field names of transformers' `Wav2Vec2Config`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import StrictConfig

SUPPORTED_ACTIVATIONS = ("gelu",)  # exact (erf) GELU, transformers' ACT2FN["gelu"]


@dataclass(frozen=True)
class Wav2Vec2Config(StrictConfig):
    vocab_size: int  # CTC output classes, blank included (32 for the English character models)
    hidden_size: int  # transformer width (768 base, 1024 large)
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int  # feed-forward width
    hidden_act: str  # transformer feed-forward activation
    layer_norm_eps: float  # transformer and feature-projection layer norms
    feat_extract_norm: str  # "group": GroupNorm on conv 0 only; "layer": LayerNorm on every conv
    feat_extract_activation: str
    conv_dim: tuple[int, ...]  # channels of each feature-encoder conv
    conv_stride: tuple[int, ...]
    conv_kernel: tuple[int, ...]
    conv_bias: bool  # feature-encoder convs have a bias
    num_conv_pos_embeddings: int  # kernel width of the positional convolution
    num_conv_pos_embedding_groups: int
    do_stable_layer_norm: bool  # True: pre-LN layers and a final layer norm ("large-lv60" style)
    pad_token_id: int  # the CTC blank

    WHAT: ClassVar[str] = "Wav2Vec2"

    @classmethod
    def prepare(cls, d: dict) -> dict:
        """A transformers config.json carries many training-only keys: they are dropped (a
        missing field is still an error); an adapter, which this port lacks, is refused."""
        if d.get("add_adapter") or d.get("adapter_attn_dim") is not None:
            raise ValueError("Wav2Vec2 adapters (add_adapter / adapter_attn_dim) are not "
                             "implemented in this port; use a checkpoint without adapters")
        names = {f.name for f in dataclasses.fields(cls)}
        return {k: v for k, v in d.items() if k in names}

    def validate(self) -> None:
        for name in ("hidden_act", "feat_extract_activation"):
            if getattr(self, name) not in SUPPORTED_ACTIVATIONS:
                raise ValueError(f"{name}={getattr(self, name)!r} is not supported; this port "
                                 f"implements {SUPPORTED_ACTIVATIONS}")
        if self.feat_extract_norm not in ("group", "layer"):
            raise ValueError(f"feat_extract_norm must be 'group' or 'layer', got "
                             f"{self.feat_extract_norm!r}")
        if not len(self.conv_dim) == len(self.conv_stride) == len(self.conv_kernel):
            raise ValueError(f"conv_dim, conv_stride and conv_kernel must have equal lengths, got "
                             f"{len(self.conv_dim)}, {len(self.conv_stride)}, "
                             f"{len(self.conv_kernel)}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")

    @property
    def samples_per_frame(self) -> int:
        """Input samples per output frame (transformers' `inputs_to_logits_ratio`): 320."""
        return math.prod(self.conv_stride)

    def num_frames(self, num_samples: int) -> int:
        """Output frames for `num_samples` input samples (0 when the input is too short)."""
        n = num_samples
        for k, s in zip(self.conv_kernel, self.conv_stride):
            n = (n - k) // s + 1
            if n <= 0:
                return 0
        return n

    @property
    def min_samples(self) -> int:
        """The fewest input samples that give one output frame (400 for the base model)."""
        n = 1
        for k, s in reversed(list(zip(self.conv_kernel, self.conv_stride))):
            n = (n - 1) * s + k
        return n


# transformers Wav2Vec2Config() defaults, which are facebook/wav2vec2-base-960h's architecture
# (its config.json adds vocab_size 32 and the same conv/transformer sizes).
BASE_960H = Wav2Vec2Config(
    vocab_size=32, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
    intermediate_size=3072, hidden_act="gelu", layer_norm_eps=1e-5, feat_extract_norm="group",
    feat_extract_activation="gelu", conv_dim=(512,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_bias=False, num_conv_pos_embeddings=128,
    num_conv_pos_embedding_groups=16, do_stable_layer_norm=False, pad_token_id=0)
