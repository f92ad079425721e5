"""CSM configuration: transformers 5.24 `CsmConfig` (config.json of a
`CsmForConditionalGeneration.save_pretrained` folder), read strictly, with its nested
`depth_decoder_config` (`CsmDepthDecoderConfig`) and `codec_config` (`MimiConfig`, read by
`mlx_impl.mimi.config`).

A missing required key is an error; options this port does not implement are refused by name:
another activation, a rope type other than default/llama3, untied codebook embeddings
(`tie_codebooks_embeddings=False`: upstream would give the depth decoder its own copy; every
published checkpoint ties them). Presets: `mlx_impl.csm.presets` (plain data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import BOOKKEEPING, StrictConfig
from mlx_impl.layers.llm import LMArgs
from mlx_impl.layers.rope import scaling_from_config

# keys that do not change the forward pass of an inference port
_IGNORED = frozenset({
    "initializer_range", "use_cache", "pad_token_id", "eos_token_id", "attention_dropout",
    "output_attentions", "codebook_pad_token_id"})


def _llama_checks(what: str, c) -> None:
    if c.hidden_act != "silu":
        raise ValueError(f"{what}: hidden_act={c.hidden_act!r} is not implemented; CSM uses "
                         "'silu'")
    if "rope_theta" not in c.rope_parameters:
        raise ValueError(f"{what}: rope_parameters has no rope_theta")
    scaling_from_config(c.rope_parameters)  # refuses unsupported rope types by name
    if c.num_attention_heads % c.num_key_value_heads:
        raise ValueError(f"{what}: num_attention_heads {c.num_attention_heads} is not a "
                         f"multiple of num_key_value_heads {c.num_key_value_heads}")


def _lm_args(c, vocab: int) -> LMArgs:
    return LMArgs(
        vocab_size=vocab, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads, head_dim=c.head_dim,
        rms_norm_eps=float(c.rms_norm_eps), rope_theta=float(c.rope_parameters["rope_theta"]),
        attention_bias=c.attention_bias, mlp_bias=c.mlp_bias,
        rope_scaling=scaling_from_config(c.rope_parameters))


def _head_dim(d: dict) -> dict:
    if d.get("head_dim") is None and "hidden_size" in d and "num_attention_heads" in d:
        d["head_dim"] = d["hidden_size"] // d["num_attention_heads"]
    return d


@dataclass(frozen=True)
class DepthDecoderConfig(StrictConfig):
    num_codebooks: int
    backbone_hidden_size: int  # width of the (shared) codebook embeddings and of its input
    vocab_size: int  # ids per codebook (2051: 2048 Mimi codes + 3 specials)
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int  # num_codebooks + 1 (the backbone state, then K - 1 codes)
    rms_norm_eps: float
    rope_parameters: dict
    hidden_act: str = "silu"
    attention_bias: bool = False
    mlp_bias: bool = False

    WHAT: ClassVar[str] = "CSM depth decoder (CsmDepthDecoderConfig)"
    IGNORED: ClassVar[frozenset[str]] = BOOKKEEPING | _IGNORED | {"bos_token_id"}

    @classmethod
    def prepare(cls, d: dict) -> dict:
        return _head_dim(d)

    def validate(self) -> None:
        _llama_checks(self.WHAT, self)

    @property
    def lm_args(self) -> LMArgs:
        return _lm_args(self, self.num_codebooks * self.vocab_size)


@dataclass(frozen=True)
class CsmConfig(StrictConfig):
    num_codebooks: int
    vocab_size: int  # ids per codebook
    text_vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int  # prompt + generated frames must fit
    rms_norm_eps: float
    rope_parameters: dict
    bos_token_id: int  # the text tokenizer's begin-of-text id (tokens.py)
    audio_token_id: int  # prompt placeholder of one audio frame
    audio_eos_token_id: int  # prompt placeholder of the end-of-audio frame (all codes 0)
    codebook_eos_token_id: int  # the code of an end-of-audio frame (0)
    depth_decoder_config: DepthDecoderConfig
    codec_config: dict  # MimiConfig dict (mlx_impl.mimi.config.MimiConfig.from_dict)
    hidden_act: str = "silu"
    attention_bias: bool = False
    mlp_bias: bool = False
    tie_codebooks_embeddings: bool = True

    WHAT: ClassVar[str] = "CSM (CsmConfig)"
    IGNORED: ClassVar[frozenset[str]] = BOOKKEEPING | _IGNORED

    @classmethod
    def prepare(cls, d: dict) -> dict:
        if d.get("model_type", "csm") != "csm":
            raise ValueError(f"{cls.WHAT}: config.json has model_type {d.get('model_type')!r}, "
                             "expected 'csm' (a CsmForConditionalGeneration folder)")
        d = _head_dim(d)
        if "depth_decoder_config" in d and not isinstance(d["depth_decoder_config"],
                                                          DepthDecoderConfig):
            d["depth_decoder_config"] = DepthDecoderConfig.from_dict(d["depth_decoder_config"])
        return d

    def validate(self) -> None:
        _llama_checks(self.WHAT, self)
        if not self.tie_codebooks_embeddings:
            raise ValueError("tie_codebooks_embeddings=False is not implemented (the depth "
                             "decoder would own a second copy of the codebook embeddings); "
                             "published CSM/Marvis checkpoints tie them")
        dd = self.depth_decoder_config
        if (dd.num_codebooks, dd.vocab_size, dd.backbone_hidden_size) != (
                self.num_codebooks, self.vocab_size, self.hidden_size):
            raise ValueError(f"depth decoder (codebooks {dd.num_codebooks}, vocab "
                             f"{dd.vocab_size}, backbone width {dd.backbone_hidden_size}) does "
                             f"not match the backbone ({self.num_codebooks}, {self.vocab_size}, "
                             f"{self.hidden_size})")
        codec = self.codec_config
        if codec.get("num_quantizers") != self.num_codebooks:
            raise ValueError(f"the codec has {codec.get('num_quantizers')} codebooks, CSM "
                             f"{self.num_codebooks}; they must be equal")
        if codec.get("codebook_size", 0) > self.vocab_size:
            raise ValueError(f"codec codebook_size {codec.get('codebook_size')} exceeds the "
                             f"CSM vocabulary {self.vocab_size}")

    @property
    def codebook_size(self) -> int:
        """Codes the codec decodes (ids above are specials a codec cannot decode)."""
        return int(self.codec_config["codebook_size"])

    @property
    def lm_args(self) -> LMArgs:
        return _lm_args(self, self.num_codebooks * self.vocab_size)
