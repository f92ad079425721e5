"""Orpheus configuration: the language model's transformers `LlamaConfig` dict (config.json of a
`LlamaForCausalLM.save_pretrained` folder), read strictly, and the presets of the two model ids.

Field names are transformers 5.24.0 `LlamaConfig`'s. A missing required key is an error; options
this port does not implement (another activation, a rope type other than default/llama3) are
refused by name. The legacy `rope_theta` + `rope_scaling` keys are read as `rope_parameters`.

Presets: `mlx_impl.orpheus.presets` (plain data, importable without mlx).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import BOOKKEEPING, StrictConfig
from mlx_impl.layers.llm import LMArgs
from mlx_impl.layers.rope import scaling_from_config

# LlamaConfig keys that do not change the forward pass of an inference port
_LLAMA_IGNORED = frozenset({
    "initializer_range", "use_cache", "pad_token_id", "bos_token_id", "eos_token_id",
    "pretraining_tp", "attention_dropout", "output_attentions"})


@dataclass(frozen=True)
class OrpheusConfig(StrictConfig):
    vocab_size: int  # 156940 for Orpheus (text + special + 7 x 4096 audio + padding)
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    max_position_embeddings: int  # prompt + generated tokens must fit
    rope_parameters: dict  # {"rope_type": "default" | "llama3", "rope_theta": ..., ...}
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    hidden_act: str = "silu"

    WHAT: ClassVar[str] = "Orpheus (LlamaConfig)"
    IGNORED: ClassVar[frozenset[str]] = (BOOKKEEPING - {"tie_word_embeddings"}) | _LLAMA_IGNORED

    @classmethod
    def prepare(cls, d: dict) -> dict:
        if d.get("model_type", "llama") != "llama":
            raise ValueError(f"{cls.WHAT}'s language model is a Llama; config.json has model_type "
                             f"{d.get('model_type')!r}")
        if "rope_parameters" not in d:
            rope = dict(d.pop("rope_scaling", None) or {})
            if "rope_theta" in d:
                rope["rope_theta"] = d.pop("rope_theta")
            d["rope_parameters"] = rope
        if "head_dim" not in d or d["head_dim"] is None:
            if "hidden_size" in d and "num_attention_heads" in d:
                d["head_dim"] = d["hidden_size"] // d["num_attention_heads"]
        return d

    def validate(self) -> None:
        if self.hidden_act != "silu":
            raise ValueError(f"hidden_act={self.hidden_act!r} is not implemented; Llama uses "
                             "'silu'")
        if "rope_theta" not in self.rope_parameters:
            raise ValueError("rope_parameters has no rope_theta")
        scaling_from_config(self.rope_parameters)  # refuses unsupported rope types by name
        self.check_vocab()

    def check_vocab(self) -> None:
        from mlx_impl.orpheus.tokens import AUDIO_OFFSET, N_AUDIO_TOKENS

        if self.vocab_size < AUDIO_OFFSET + N_AUDIO_TOKENS:
            raise ValueError(f"vocab_size {self.vocab_size} cannot hold Orpheus's audio tokens "
                             f"(ids up to {AUDIO_OFFSET + N_AUDIO_TOKENS - 1})")

    @property
    def lm_args(self) -> LMArgs:
        return LMArgs(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size, num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads, head_dim=self.head_dim,
            rms_norm_eps=float(self.rms_norm_eps),
            rope_theta=float(self.rope_parameters["rope_theta"]),
            attention_bias=self.attention_bias, mlp_bias=self.mlp_bias,
            tie_word_embeddings=self.tie_word_embeddings,
            rope_scaling=scaling_from_config(self.rope_parameters))


from mlx_impl.orpheus.presets import PRESETS  # noqa: E402,F401  (re-exported)
