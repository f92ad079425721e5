"""Mimi configuration, with the field names of transformers' `MimiConfig` (5.24.0).

`from_dict` reads a transformers `config.json` (bookkeeping keys ignored); a missing
architecture key is an error. Upstream's own derived values: `frame_size` (samples per code
frame: the SEANet hop times the downsampling stride 2), `frame_rate`, `encodec_frame_rate`
(the transformers' rate), `latent_stride`. `PRESETS["mimi"]` is the kyutai/mimi configuration
(equal to `MimiConfig()`'s defaults in transformers 5.24.0, checked in tests/test_mimi.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import BOOKKEEPING, StrictConfig


@dataclass(frozen=True)
class MimiConfig(StrictConfig):
    sampling_rate: int  # Hz of the audio in and out
    audio_channels: int
    hidden_size: int  # latent width (SEANet output, transformers, quantizer input)
    num_filters: int  # width of the first SEANet conv; doubled at every downsampling
    num_residual_layers: int
    upsampling_ratios: tuple[int, ...]  # decoder strides; the encoder uses them reversed
    kernel_size: int
    last_kernel_size: int
    residual_kernel_size: int
    dilation_growth_rate: int
    use_causal_conv: bool
    pad_mode: str
    compress: int
    trim_right_ratio: float
    codebook_size: int
    codebook_dim: int
    num_quantizers: int  # semantic + acoustic stages
    use_conv_shortcut: bool
    vector_quantization_hidden_dimension: int  # RVQ width (input_proj / output_proj)
    num_semantic_quantizers: int
    upsample_groups: int  # groups of the decoder's upsampling transposed conv
    num_hidden_layers: int  # per transformer (encoder and decoder each)
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    hidden_act: str
    norm_eps: float
    rope_theta: float
    sliding_window: int  # keys a query sees, itself included
    layer_scale_initial_scale: float | None  # None: no layer scale
    attention_bias: bool

    WHAT: ClassVar[str] = "Mimi"
    # derived rates and training/runtime switches that change no inference numerics
    IGNORED: ClassVar[frozenset[str]] = BOOKKEEPING | {
        "_frame_rate", "frame_rate", "initializer_range", "attention_dropout", "use_cache",
        "use_streaming", "max_position_embeddings"}

    @classmethod
    def prepare(cls, d: dict) -> dict:
        """`rope_parameters` -> `rope_theta` (default RoPE only); upstream's None defaults of
        `head_dim` and `codebook_dim`."""
        rope = d.pop("rope_parameters", None) or {}
        if "rope_theta" not in d and "rope_theta" in rope:
            if rope.get("rope_type", "default") != "default":
                raise ValueError(f"rope_type {rope.get('rope_type')!r} is not supported "
                                 "(only 'default')")
            d["rope_theta"] = rope["rope_theta"]
        if d.get("head_dim") is None and "hidden_size" in d and "num_attention_heads" in d:
            d["head_dim"] = d["hidden_size"] // d["num_attention_heads"]
        if d.get("codebook_dim") is None and "hidden_size" in d:
            d["codebook_dim"] = d["hidden_size"]
        return d

    def validate(self) -> None:
        if self.num_semantic_quantizers >= self.num_quantizers:
            raise ValueError(f"num_semantic_quantizers ({self.num_semantic_quantizers}) must be "
                             f"below num_quantizers ({self.num_quantizers})")
        if self.hidden_act != "gelu":
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported (only 'gelu')")
        if not self.use_causal_conv:
            raise ValueError("only causal Mimi (use_causal_conv=True) is supported")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")

    @property
    def hop_length(self) -> int:  # samples per transformer step (SEANet hop)
        return math.prod(self.upsampling_ratios)

    @property
    def encodec_frame_rate(self) -> int:
        return math.ceil(self.sampling_rate / self.hop_length)

    @property
    def frame_size(self) -> int:  # samples per code frame
        return self.hop_length * 2

    @property
    def frame_rate(self) -> float:
        return self.sampling_rate / self.frame_size

    @property
    def latent_stride(self) -> int:
        return int(self.encodec_frame_rate / self.frame_rate)


PRESETS: dict[str, MimiConfig] = {
    "mimi": MimiConfig(
        sampling_rate=24000, audio_channels=1, hidden_size=512, num_filters=64,
        num_residual_layers=1, upsampling_ratios=(8, 6, 5, 4), kernel_size=7, last_kernel_size=3,
        residual_kernel_size=3, dilation_growth_rate=2, use_causal_conv=True, pad_mode="constant",
        compress=2, trim_right_ratio=1.0, codebook_size=2048, codebook_dim=256, num_quantizers=32,
        use_conv_shortcut=False, vector_quantization_hidden_dimension=256,
        num_semantic_quantizers=1, upsample_groups=512, num_hidden_layers=8,
        intermediate_size=2048, num_attention_heads=8, num_key_value_heads=8, head_dim=64,
        hidden_act="gelu", norm_eps=1e-5, rope_theta=10000.0, sliding_window=250,
        layer_scale_initial_scale=0.01, attention_bias=False),
}
