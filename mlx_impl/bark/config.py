"""Bark configuration: transformers 5.24.0 `BarkConfig` (config.json of a `BarkModel.
save_pretrained` folder: `semantic_config`, `coarse_acoustics_config`, `fine_acoustics_config`,
`codec_config`) and its `generation_config.json` (`BarkGenerationConfig`'s three sub-configs),
read strictly: field names are upstream's, a missing required key is an error.

Presets: `mlx_impl.bark.presets` (plain data, importable without mlx).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import BOOKKEEPING, StrictConfig
from mlx_impl.encodec.config import EncodecConfig

_SUB_IGNORED = BOOKKEEPING | {"initializer_range", "use_cache", "dropout"}


@dataclass(frozen=True)
class BarkGPTConfig(StrictConfig):
    """`BarkSubModelConfig` (semantic and coarse: causal; fine: see `BarkFineConfig`)."""

    block_size: int  # learned positions
    input_vocab_size: int
    output_vocab_size: int
    num_layers: int
    num_heads: int
    hidden_size: int
    bias: bool  # linear biases (and, in the causal GPTs, the layer-norm biases)

    WHAT: ClassVar[str] = "Bark GPT (BarkSubModelConfig)"
    IGNORED: ClassVar[frozenset[str]] = _SUB_IGNORED

    def validate(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"{self.WHAT}: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_heads {self.num_heads}")


@dataclass(frozen=True, kw_only=True)
class BarkFineConfig(BarkGPTConfig):
    n_codes_total: int  # codebooks embedded (8)
    n_codes_given: int  # codebooks the coarse model writes before the first head (1)
    tie_word_embeddings: bool = True  # lm_heads[i] = input_embeds_layers[i + 1]

    WHAT: ClassVar[str] = "Bark fine GPT (BarkFineConfig)"
    IGNORED: ClassVar[frozenset[str]] = _SUB_IGNORED - {"tie_word_embeddings"}


@dataclass(frozen=True)
class SemanticGeneration(StrictConfig):
    eos_token_id: int  # 10000, also the semantic pad
    text_encoding_offset: int  # 10048: text ids live above the semantic vocabulary
    text_pad_token: int  # 129595
    semantic_infer_token: int  # 129599
    semantic_vocab_size: int  # 10000
    max_input_semantic_length: int  # 256 text (and history) positions
    semantic_rate_hz: float  # 49.9
    max_new_tokens: int = 768
    min_eos_p: float | None = None

    WHAT: ClassVar[str] = "Bark semantic generation config"
    IGNORED: ClassVar[frozenset[str]] = BOOKKEEPING | {
        "renormalize_logits", "output_scores", "return_dict_in_generate", "temperature",
        "do_sample", "semantic_pad_token"}


@dataclass(frozen=True)
class CoarseGeneration(StrictConfig):
    coarse_semantic_pad_token: int  # 12048
    coarse_rate_hz: float  # 75
    n_coarse_codebooks: int  # 2
    coarse_infer_token: int  # 12050
    max_coarse_input_length: int  # 256 semantic positions
    max_coarse_history: int  # 630 coarse tokens
    sliding_window_len: int  # 60 coarse tokens per window

    WHAT: ClassVar[str] = "Bark coarse generation config"
    IGNORED: ClassVar[frozenset[str]] = BOOKKEEPING | {
        "renormalize_logits", "output_scores", "return_dict_in_generate", "temperature",
        "do_sample"}


@dataclass(frozen=True)
class FineGeneration(StrictConfig):
    max_fine_history_length: int  # 512 frames
    max_fine_input_length: int  # 1024 frames
    n_fine_codebooks: int  # 8

    WHAT: ClassVar[str] = "Bark fine generation config"
    IGNORED: ClassVar[frozenset[str]] = BOOKKEEPING | {"temperature"}


@dataclass(frozen=True)
class BarkGeneration(StrictConfig):
    semantic_config: SemanticGeneration
    coarse_acoustics_config: CoarseGeneration
    fine_acoustics_config: FineGeneration
    codebook_size: int  # 1024
    sample_rate: int = 24_000

    WHAT: ClassVar[str] = "Bark generation config (generation_config.json)"

    @classmethod
    def prepare(cls, d: dict) -> dict:
        for key, sub in (("semantic_config", SemanticGeneration),
                         ("coarse_acoustics_config", CoarseGeneration),
                         ("fine_acoustics_config", FineGeneration)):
            if not isinstance(d.get(key), dict):
                raise ValueError(f"{cls.WHAT}: needs a {key} block (BarkGenerationConfig)")
            d[key] = sub.from_dict(d[key])
        return d

    @property
    def semantic_to_coarse_ratio(self) -> float:
        """Coarse tokens per semantic token (upstream's float, 75 / 49.9 x 2)."""
        c = self.coarse_acoustics_config
        return c.coarse_rate_hz / self.semantic_config.semantic_rate_hz * c.n_coarse_codebooks

    def to_dict(self) -> dict:
        return {"semantic_config": self.semantic_config.to_dict(),
                "coarse_acoustics_config": self.coarse_acoustics_config.to_dict(),
                "fine_acoustics_config": self.fine_acoustics_config.to_dict(),
                "codebook_size": self.codebook_size, "sample_rate": self.sample_rate}


@dataclass(frozen=True)
class BarkConfig(StrictConfig):
    semantic_config: BarkGPTConfig
    coarse_acoustics_config: BarkGPTConfig
    fine_acoustics_config: BarkFineConfig
    codec_config: EncodecConfig
    generation: BarkGeneration  # from generation_config.json (the loader puts it here)

    WHAT: ClassVar[str] = "Bark (BarkConfig)"
    IGNORED: ClassVar[frozenset[str]] = BOOKKEEPING | {"initializer_range"}

    @classmethod
    def prepare(cls, d: dict) -> dict:
        if d.get("model_type", "bark") != "bark":
            raise ValueError(f"{cls.WHAT}: config.json has model_type {d.get('model_type')!r}, "
                             "expected 'bark'")
        for key, sub in (("semantic_config", BarkGPTConfig),
                         ("coarse_acoustics_config", BarkGPTConfig),
                         ("fine_acoustics_config", BarkFineConfig),
                         ("codec_config", EncodecConfig)):
            if not isinstance(d.get(key), dict):
                raise ValueError(f"{cls.WHAT}: config.json needs a {key} block")
            d[key] = sub.from_dict(d[key])
        if not isinstance(d.get("generation"), dict):
            raise ValueError(f"{cls.WHAT}: no generation config; the folder needs the "
                             "generation_config.json that BarkModel.save_pretrained writes")
        d["generation"] = BarkGeneration.from_dict(d["generation"])
        return d

    def validate(self) -> None:
        g, fine = self.generation, self.fine_acoustics_config
        if fine.n_codes_total != g.fine_acoustics_config.n_fine_codebooks:
            raise ValueError(f"{self.WHAT}: the fine model embeds {fine.n_codes_total} codebooks,"
                             f" generation asks for {g.fine_acoustics_config.n_fine_codebooks}")
        if self.codec_config.codebook_size != g.codebook_size:
            raise ValueError(f"{self.WHAT}: codec codebooks of {self.codec_config.codebook_size}"
                             f" != generation codebook_size {g.codebook_size}")

    def to_dict(self) -> dict:
        return {"semantic_config": self.semantic_config.to_dict(),
                "coarse_acoustics_config": self.coarse_acoustics_config.to_dict(),
                "fine_acoustics_config": self.fine_acoustics_config.to_dict(),
                "codec_config": self.codec_config.to_dict(),
                "generation": self.generation.to_dict()}


from mlx_impl.bark.presets import PRESETS  # noqa: E402,F401  (re-exported)
