"""Wav2Vec2 CTC model (feature encoder, transformer encoder, CTC head) in MLX.

Upstream: transformers 5.24.0 `models/wav2vec2/modeling_wav2vec2.py` (`Wav2Vec2ForCTC`,
inference path: eval mode, no attention mask, no SpecAugment, no adapters). Module attribute names
equal the transformers checkpoint keys except in attention (`query/key/value/out`, the shared
`MultiHeadAttention`), so `convert.py` is a short rename table plus transposes.

Deviations from upstream, all numerically neutral in fp32 (measured in tests/test_wav2vec2.py):
- Channels-last throughout: conv activations are (B, T, C) and conv kernels (out, k, in/groups).
- The positional conv's weight norm is folded into a plain kernel at conversion.
- The attention key projection has no bias: upstream's `k_proj.bias` adds q . b_k to every score
  of a query row, a constant that softmax removes, so the converter drops it (exact in real
  arithmetic; only rounding differs).
- Scores are `(q d^-1/4)(k d^-1/4)^T` (the shared attention) instead of `(q k^T) d^-1/2`.
- Only unpadded single utterances: upstream's attention mask for padded batches is not ported.

Taps: pass `taps=Taps()` (mlx_impl/taps.py) to record, in execution order (all (B, T, C)
channels-last):
`feature_extractor.conv_layers.{i}` (after norm and GELU), `feature_projection`,
`encoder.pos_conv_embed` (before it is added), `encoder.layer_norm` (post-LN models: the input of
layer 0; stable-layer-norm models: after the last layer), `encoder.layers.{i}.attention` and
`.feed_forward` (sub-layer outputs before the residual add), `encoder.layers.{i}`, `logits`.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from mlx_impl.layers.activations import gelu
from mlx_impl.layers.attention import MultiHeadAttention
from mlx_impl.layers.conv_positions import ConvPositionalEmbedding
from mlx_impl.layers.group_norm import GroupNorm
from mlx_impl.layers.norm import LayerNorm
from mlx_impl.taps import NO_TAPS, Taps
from mlx_impl.wav2vec2.config import Wav2Vec2Config

CONV_NORM_EPS = 1e-5  # upstream builds the feature-encoder Group/LayerNorms with torch's default


class FeatureConvLayer(nn.Module):
    """Conv1d, then (GroupNorm over time per channel | LayerNorm over channels | nothing), GELU."""

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int, bias: bool, norm: str):
        super().__init__()
        self.conv = nn.Conv1d(n_in, n_out, kernel, stride=stride, bias=bias)
        if norm == "group":  # GroupNorm(n_out groups, n_out channels): each channel over time
            self.layer_norm = GroupNorm(n_out, n_out, eps=CONV_NORM_EPS)
        elif norm == "layer":
            self.layer_norm = LayerNorm(n_out, eps=CONV_NORM_EPS)
        elif norm != "none":
            raise ValueError(f"unknown feature-encoder norm {norm!r}")
        self.norm = norm

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, C_in) -> (B, T', C_out)
        x = self.conv(x)
        if self.norm != "none":
            x = self.layer_norm(x)
        return gelu(x)


class FeatureEncoder(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.conv_layers = []
        for i, (n_out, k, s) in enumerate(zip(cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride)):
            norm = "layer" if cfg.feat_extract_norm == "layer" else ("group" if i == 0 else "none")
            n_in = cfg.conv_dim[i - 1] if i else 1
            self.conv_layers.append(FeatureConvLayer(n_in, n_out, k, s, cfg.conv_bias, norm))

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:  # (B, N) -> (B, T, C)
        x = x[:, :, None]
        for i, layer in enumerate(self.conv_layers):
            x = layer(x)
            x = taps(f"feature_extractor.conv_layers.{i}", x)
        return x


class FeatureProjection(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.layer_norm = LayerNorm(cfg.conv_dim[-1], eps=cfg.layer_norm_eps)
        self.projection = nn.Linear(cfg.conv_dim[-1], cfg.hidden_size)

    def __call__(self, x: mx.array) -> mx.array:
        return self.projection(self.layer_norm(x))


class FeedForward(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.intermediate_dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output_dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def __call__(self, x: mx.array) -> mx.array:
        return self.output_dense(gelu(self.intermediate_dense(x)))


class EncoderLayer(nn.Module):
    """Post-LN (`Wav2Vec2EncoderLayer`) or pre-LN (`...StableLayerNorm`) transformer layer."""

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.stable = cfg.do_stable_layer_norm
        self.attention = MultiHeadAttention(cfg.hidden_size, cfg.num_attention_heads)
        self.layer_norm = LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.feed_forward = FeedForward(cfg)
        self.final_layer_norm = LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS, name: str = "") -> mx.array:
        if self.stable:
            a, _ = self.attention(self.layer_norm(x))
            x = x + a
            f = self.feed_forward(self.final_layer_norm(x))
            x = x + f
        else:
            a, _ = self.attention(x)
            x = self.layer_norm(x + a)
            f = self.feed_forward(x)
            x = self.final_layer_norm(x + f)
        taps(f"{name}.attention", a)
        taps(f"{name}.feed_forward", f)
        x = taps(name, x)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.stable = cfg.do_stable_layer_norm
        self.pos_conv_embed = ConvPositionalEmbedding(
            cfg.hidden_size, cfg.num_conv_pos_embeddings, cfg.num_conv_pos_embedding_groups)
        self.layer_norm = LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.layers = [EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers)]

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        p = self.pos_conv_embed(x)
        p = taps("encoder.pos_conv_embed", p)
        x = x + p
        if not self.stable:
            x = self.layer_norm(x)
            x = taps("encoder.layer_norm", x)
        for i, layer in enumerate(self.layers):
            x = layer(x, taps=taps, name=f"encoder.layers.{i}")
        if self.stable:
            x = self.layer_norm(x)
            x = taps("encoder.layer_norm", x)
        return x


class Wav2Vec2Model(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.feature_extractor = FeatureEncoder(cfg)
        self.feature_projection = FeatureProjection(cfg)
        self.encoder = Encoder(cfg)

    def __call__(self, input_values: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        x = self.feature_extractor(input_values, taps=taps)
        x = self.feature_projection(x)
        x = taps("feature_projection", x)
        return self.encoder(x, taps=taps)


class Wav2Vec2ForCTC(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.config = cfg
        self.dtype = dtype
        self.wav2vec2 = Wav2Vec2Model(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def __call__(self, input_values: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        """Normalised audio (B, N) (see `features.normalize`) -> CTC logits (B, T, vocab) fp32."""
        if input_values.ndim == 1:
            input_values = input_values[None]
        if input_values.ndim != 2:
            raise ValueError(f"expected input values (batch, samples), got shape "
                             f"{tuple(input_values.shape)}")
        n = input_values.shape[1]
        if self.config.num_frames(n) < 1:
            raise ValueError(f"audio of {n} samples is too short for the feature encoder: it "
                             f"needs at least {self.config.min_samples} samples "
                             f"({1000 * self.config.min_samples / 16000:g} ms at 16 kHz)")
        x = self.wav2vec2(input_values.astype(self.dtype), taps=taps)
        logits = self.lm_head(x).astype(mx.float32)
        logits = taps("logits", logits)
        return logits
