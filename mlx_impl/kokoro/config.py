"""Kokoro configuration, with the field names of kokoro's config.json (kokoro 0.9.4 `KModel`;
the same file ships in the kokoro-onnx 0.6.1 wheel). A missing key is an error.

Fixed by upstream's code, whatever the config says: the decoder's 1024-wide AdaIN blocks, its
64-channel ASR residual, the harmonic source (24 kHz, 8 harmonics, voiced above 10 Hz), so
`hidden_dim` must be 512 and `istftnet.upsample_initial_channel` 512 (`validate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlx_impl.config_base import StrictConfig

SAMPLE_RATE = 24000  # upstream's Generator hard-codes its SineGen rate


@dataclass(frozen=True)
class PlbertConfig(StrictConfig):
    hidden_size: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    num_hidden_layers: int
    dropout: float  # unused at inference
    embedding_size: int = 128  # transformers AlbertConfig default (kokoro does not set it)
    layer_norm_eps: float = 1e-12  # AlbertConfig default

    WHAT: ClassVar[str] = "Kokoro plbert (ALBERT)"
    IGNORED: ClassVar[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class IstftnetConfig(StrictConfig):
    upsample_kernel_sizes: tuple[int, ...]
    upsample_rates: tuple[int, ...]
    gen_istft_hop_size: int
    gen_istft_n_fft: int
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    resblock_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int

    WHAT: ClassVar[str] = "Kokoro istftnet"
    IGNORED: ClassVar[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class KokoroConfig(StrictConfig):
    istftnet: IstftnetConfig
    dim_in: int  # unused by KModel (StyleTTS 2 training field)
    dropout: float  # unused at inference
    hidden_dim: int  # text encoder / prosody width
    max_conv_dim: int  # unused by KModel
    max_dur: int  # duration bins: the predicted duration is the sum of max_dur sigmoids
    multispeaker: bool  # unused by KModel
    n_layer: int  # text encoder CNN depth and duration encoder LSTM count
    n_mels: int  # unused by the iSTFTNet decoder
    n_token: int  # vocabulary size (ALBERT and text encoder embeddings)
    style_dim: int  # each half of the 2 * style_dim voice vector
    text_encoder_kernel_size: int
    plbert: PlbertConfig
    vocab: dict  # phoneme character -> token id

    WHAT: ClassVar[str] = "Kokoro"
    IGNORED: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def prepare(cls, d: dict) -> dict:
        for key, sub in (("istftnet", IstftnetConfig), ("plbert", PlbertConfig)):
            if isinstance(d.get(key), dict):
                d[key] = sub.from_dict(d[key])
        return d

    def validate(self) -> None:
        if self.hidden_dim != 512 or self.istftnet.upsample_initial_channel != 512:
            raise ValueError(f"Kokoro's decoder hard-codes 512 channels: hidden_dim and "
                             f"istftnet.upsample_initial_channel must be 512, got "
                             f"{self.hidden_dim} and {self.istftnet.upsample_initial_channel}")
        if len(self.istftnet.upsample_rates) != len(self.istftnet.upsample_kernel_sizes):
            raise ValueError("istftnet.upsample_rates and upsample_kernel_sizes differ in length")
        bad = {k: v for k, v in self.vocab.items() if not 0 < v < self.n_token}
        if bad:
            raise ValueError(f"vocab ids must lie in 1..n_token-1 ({self.n_token - 1}); got {bad}")

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["vocab"] = dict(self.vocab)
        return d
