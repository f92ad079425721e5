"""Spark-TTS's language model in MLX: Qwen2.5-0.5B (`layers.llm.DecoderLM` with q/k/v biases,
tied embeddings, RoPE theta 1e6) over Qwen's vocabulary extended with Spark's tokens.

Upstream: transformers 5.24.0 `Qwen2ForCausalLM` (SparkAudio/Spark-TTS-0.5B `LLM/`), eager
attention, no sliding window (Qwen2.5-0.5B's `use_sliding_window` is false; a config that turns
it on is refused). The forward pass is the Orpheus port's (`mlx_impl.orpheus.model.OrpheusLM`:
embeddings, decoder layers, final norm, tied head; the same taps), with Qwen2's `qkv_bias`; the
config is read strictly as Orpheus's, with Qwen2's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.layers.llm import LMArgs
from mlx_impl.loading import make_loader
from mlx_impl.orpheus.config import OrpheusConfig
from mlx_impl.orpheus.convert import convert
from mlx_impl.orpheus.model import OrpheusLM
from weights.hf_safetensors import read_pretrained

_QWEN2_IGNORED = frozenset({"max_window_layers", "layer_types", "sliding_window",
                            "use_sliding_window"})


@dataclass(frozen=True)
class SparkLMConfig(OrpheusConfig):
    WHAT: ClassVar[str] = "Spark-TTS LM (Qwen2Config)"
    IGNORED: ClassVar[frozenset[str]] = OrpheusConfig.IGNORED | _QWEN2_IGNORED

    @classmethod
    def prepare(cls, d: dict) -> dict:
        if d.get("model_type", "qwen2") != "qwen2":
            raise ValueError(f"{cls.WHAT}: config.json has model_type {d.get('model_type')!r}, "
                             "expected 'qwen2'")
        if d.get("use_sliding_window"):
            raise ValueError("use_sliding_window=true is not implemented (Qwen2.5-0.5B has it "
                             "off); pass the released config")
        return super().prepare({**d, "model_type": "llama"})

    def check_vocab(self) -> None:
        from mlx_impl.spark.tokens import VOCAB

        if self.vocab_size < VOCAB:
            raise ValueError(f"vocab_size {self.vocab_size} cannot hold the Spark token layout "
                             f"({VOCAB} ids)")

    @property
    def lm_args(self) -> LMArgs:
        a = super().lm_args
        return LMArgs(**{**a.__dict__, "qkv_bias": True})


class SparkLM(OrpheusLM):
    """`OrpheusLM`'s forward pass (and taps) built from a `SparkLMConfig`."""


def _read(path):
    class _Read:
        def __init__(self, config: dict, state: dict):
            self.config, self.state = config, state
    return _Read(*read_pretrained(path, "Qwen2ForCausalLM", "qwen2", ValueError))


load_lm = make_loader(
    "Spark-TTS LM", "transformers `Qwen2ForCausalLM.save_pretrained` (config.json + "
    "model.safetensors)", _read, SparkLMConfig.from_dict, SparkLM, convert,
    convert_takes_config=True)
