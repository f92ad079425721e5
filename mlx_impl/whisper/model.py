"""Whisper encoder-decoder in MLX.

Upstream: openai-whisper 20250625, `whisper/model.py`. Module attribute names equal the
openai-whisper checkpoint keys, so `convert.py` only transposes conv kernels.

Deviations from upstream, all numerically neutral in fp32:
- MLX convolutions are channels-last: the encoder takes mel as (B, n_frames, n_mels) and conv
  kernels are stored (out, k, in) instead of torch's (out, in, k).
- The encoder's sinusoidal positions are a persistent buffer upstream, so checkpoints carry them
  (CTranslate2 ones in float16, up to 3.3e-4 away from the float32 sinusoids). They are a loaded
  parameter here too: recomputing them instead moves tiny.en's `encoder.ln_post` by 0.25.
- Self-attention keys/values live in a preallocated `KVCache`; cross-attention keys/values are
  computed once per audio window (`DecoderCache.cross`), instead of upstream's forward hooks.
- Layer norm runs in float32 and casts back, as upstream's `LayerNorm` does for fp16 models.
- Quantized (mlx_impl.whisper.checkpoint, mlx_impl.quantization): the Linear layers may be MLX
  `QuantizedLinear`s and the token embedding (also the vocabulary head) a `QuantizedEmbedding`,
  as in MLX community checkpoints.

Taps: pass `taps={}` to `encoder`/`decoder` to record the intermediate activations named in
docs/ARCHITECTURE.md; nothing is recorded when `taps` is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn

from mlx_impl.layers.activations import gelu
from mlx_impl.layers.attention import KVCache, MultiHeadAttention, causal_mask
from mlx_impl.layers.linear import Linear, linear
from mlx_impl.layers.norm import LayerNorm
from mlx_impl.layers.positions import sinusoids
from mlx_impl.whisper.config import WhisperConfig

Taps = dict[str, mx.array] | None


class ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int, cross_attention: bool = False):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = LayerNorm(n_state)
        if cross_attention:
            self.cross_attn = MultiHeadAttention(n_state, n_head)
            self.cross_attn_ln = LayerNorm(n_state)
        # a list so the keys are upstream's `mlp.0` / `mlp.2`; index 1 is its parameter-free GELU
        self.mlp = [Linear(n_state, 4 * n_state), nn.Identity(), Linear(4 * n_state, n_state)]
        self.mlp_ln = LayerNorm(n_state)

    def __call__(
        self,
        x: mx.array,  # (B, T, C)
        cross_kv: tuple[mx.array, mx.array] | None = None,
        mask: mx.array | None = None,
        cache: KVCache | None = None,
        taps: Taps = None,
        name: str = "",
        cross_qk: list | None = None,
    ) -> mx.array:
        a, _ = self.attn(self.attn_ln(x), mask=mask, cache=cache)
        x = x + a
        if taps is not None:
            taps[f"{name}.attn"] = a
        if cross_kv is not None:
            c, qk = self.cross_attn(self.cross_attn_ln(x), kv=cross_kv,
                                    return_qk=cross_qk is not None)
            x = x + c
            if taps is not None:
                taps[f"{name}.cross_attn"] = c
            if cross_qk is not None:
                cross_qk.append(qk)
        m = self.mlp[2](gelu(self.mlp[0](self.mlp_ln(x))))
        x = x + m
        if taps is not None:
            taps[f"{name}.mlp"] = m
            taps[name] = x
        return x


class AudioEncoder(nn.Module):
    def __init__(self, cfg: WhisperConfig):
        super().__init__()
        self.n_mels, self.n_frames = cfg.n_mels, cfg.n_frames
        # channels-last: input (B, T, n_mels); kernels (out, k, in)
        self.conv1 = nn.Conv1d(cfg.n_mels, cfg.n_audio_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(cfg.n_audio_state, cfg.n_audio_state, kernel_size=3, stride=2,
                               padding=1)
        self.positional_embedding = mx.array(sinusoids(cfg.n_audio_ctx, cfg.n_audio_state))
        self.blocks = [ResidualAttentionBlock(cfg.n_audio_state, cfg.n_audio_head)
                       for _ in range(cfg.n_audio_layer)]
        self.ln_post = LayerNorm(cfg.n_audio_state)

    def __call__(self, mel: mx.array, taps: Taps = None) -> mx.array:
        """mel (B, n_frames, n_mels) -> audio features (B, n_audio_ctx, n_audio_state)."""
        if mel.ndim == 2:
            mel = mel[None]
        if mel.ndim != 3 or mel.shape[1:] != (self.n_frames, self.n_mels):
            raise ValueError(
                f"expected a log-mel of shape (batch, {self.n_frames}, {self.n_mels}) "
                f"(channels-last, {self.n_mels} mel bins, 30 s padded), got {tuple(mel.shape)}; "
                "compute it with log_mel_spectrogram(audio, n_mels=model.dims.n_mels) and "
                "pad or trim to 30 s")
        dtype = self.conv1.weight.dtype
        x = self.conv1(mel.astype(dtype))
        if taps is not None:
            taps["encoder.conv1"] = x
        x = self.conv2(gelu(x))
        if taps is not None:
            taps["encoder.conv2"] = x
        x = gelu(x) + self.positional_embedding
        if taps is not None:
            taps["encoder.embed"] = x
        # On the CPU the graph is evaluated block by block: MLX allocates the output of every op
        # it has queued, and the stream runs behind, so one graph for the whole encoder held 93 MB
        # of activations at its peak (whisper-base, fp32), against 65 MB this way, at no
        # measurable cost in time. On a GPU the syncs would cost more than the memory saves.
        eval_each_block = mx.default_device() == mx.cpu
        for i, block in enumerate(self.blocks):
            x = block(x, taps=taps, name=f"encoder.blocks.{i}")
            if eval_each_block:
                mx.eval(x)
        x = self.ln_post(x)
        if taps is not None:
            taps["encoder.ln_post"] = x
        return x


@dataclass
class DecoderCache:
    """Per-window decoder state: cross-attention K/V (fixed) and self-attention caches."""

    cross: list[tuple[mx.array, mx.array]]
    self_attn: list[KVCache] = field(default_factory=list)

    @property
    def offset(self) -> int:
        return self.self_attn[0].offset if self.self_attn else 0

    def reorder(self, index: mx.array) -> None:
        """Keep batch rows `index` (beam search); cross K/V follow when batched per beam."""
        for c in self.self_attn:
            c.reorder(index)
        self.cross = [(k[index], v[index]) for k, v in self.cross]


class TextDecoder(nn.Module):
    def __init__(self, cfg: WhisperConfig):
        super().__init__()
        self.n_ctx = cfg.n_text_ctx
        self.token_embedding = nn.Embedding(cfg.n_vocab, cfg.n_text_state)
        self.positional_embedding = mx.zeros((cfg.n_text_ctx, cfg.n_text_state))
        self.blocks = [ResidualAttentionBlock(cfg.n_text_state, cfg.n_text_head,
                                              cross_attention=True)
                       for _ in range(cfg.n_text_layer)]
        self.ln = LayerNorm(cfg.n_text_state)

    def new_cache(self, xa: mx.array) -> DecoderCache:
        """Cross-attention keys/values of the audio features xa (B, S, C), computed once."""
        return DecoderCache(cross=[b.cross_attn.project_kv(xa) for b in self.blocks],
                            self_attn=[KVCache() for _ in self.blocks])

    def __call__(
        self,
        tokens: mx.array,  # (B, T) int32
        xa: mx.array | None,  # (B, S, C) audio features; may be None when cache is given
        cache: DecoderCache | None = None,
        taps: Taps = None,
        cross_qk: list | None = None,  # receives each block's cross-attention scores (B,H,T,S)
    ) -> tuple[mx.array, DecoderCache]:
        if cache is None:
            if xa is None:
                raise ValueError("decoder needs audio features xa or a cache built from them")
            cache = self.new_cache(xa)
        offset = cache.offset
        t = tokens.shape[-1]
        if offset + t > self.n_ctx:
            raise ValueError(f"decoder context is {self.n_ctx} tokens; asked for {offset + t}")
        # the positions' dtype: a quantized token embedding's `weight` is packed uint32
        dtype = self.positional_embedding.dtype
        x = self.token_embedding(tokens) + self.positional_embedding[offset:offset + t]
        x = x.astype(dtype)
        if taps is not None:
            taps["decoder.embed"] = x
        mask = causal_mask(t, offset, dtype) if t > 1 else None
        for i, block in enumerate(self.blocks):
            x = block(x, cross_kv=cache.cross[i], mask=mask, cache=cache.self_attn[i],
                      taps=taps, name=f"decoder.blocks.{i}", cross_qk=cross_qk)
        x = self.ln(x)
        if taps is not None:
            taps["decoder.ln"] = x
        if isinstance(self.token_embedding, nn.QuantizedEmbedding):  # an MLX q4/q8 checkpoint
            logits = self.token_embedding.as_linear(x).astype(mx.float32)
        else:
            logits = linear(x, self.token_embedding.weight).astype(mx.float32)
        if taps is not None:
            taps["logits"] = logits
        return logits, cache


class Whisper(nn.Module):
    def __init__(self, cfg: WhisperConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.dims = cfg
        self.dtype = dtype
        self.encoder = AudioEncoder(cfg)
        self.decoder = TextDecoder(cfg)
        # (layer, head) pairs whose cross-attention aligns with time (word timestamps);
        # None when the weights did not ship them.
        self._alignment_heads: mx.array | None = None

    @property
    def alignment_heads(self) -> mx.array | None:
        return self._alignment_heads

    def set_alignment_heads(self, heads) -> None:
        heads = mx.array(heads, dtype=mx.int32).reshape(-1, 2)
        bad = [(layer, head) for layer, head in heads.tolist()
               if not (0 <= layer < self.dims.n_text_layer and 0 <= head < self.dims.n_text_head)]
        if bad:
            raise ValueError(f"alignment heads {bad} are outside {self.dims.n_text_layer} layers "
                             f"x {self.dims.n_text_head} heads")
        self._alignment_heads = heads

    def embed_audio(self, mel: mx.array) -> mx.array:
        return self.encoder(mel)

    def logits(self, tokens: mx.array, audio_features: mx.array) -> mx.array:
        return self.decoder(tokens, audio_features)[0]

    def __call__(self, mel: mx.array, tokens: mx.array) -> mx.array:
        return self.logits(tokens, self.encoder(mel))
