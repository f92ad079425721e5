"""Parakeet in MLX: the FastConformer encoder with a CTC head, or with an RNN-T / TDT transducer
(LSTM prediction network + joint network).

Upstream: transformers 5.24.0 `models/parakeet/modeling_parakeet.py` (`ParakeetEncoder`,
`ParakeetEncoderSubsamplingConv2D`, `ParakeetForCTC`, `ParakeetRNNTDecoder`,
`ParakeetRNNTJointNetwork`, `ParakeetTDTJointNetwork`, `ParakeetForRNNT`, `ParakeetForTDT`).
Attribute names equal the checkpoint keys; `convert.py` only transposes conv kernels to
channels-last and squeezes kernel-1 convs into linears.

Deviations: none known in the numerics. Padding frames are masked exactly as upstream (after each
front-end conv, in attention, before the depthwise conv). The prediction network runs one step
at a time with an explicit (h, c) state (`PredictionNetwork.step`, through the shared LSTM's
`run`) instead of upstream's cache object.

Taps (`taps=Taps()`; dotted names, execution order; the list: parity/models/parakeet.py):
    encoder.subsampling            (B, T', C)  front-end output (before the input scale)
    encoder.layers.{i}.feed_forward1 / .self_attn / .conv / .feed_forward2   (B, T', C)
                                   sub-layer outputs before their residual add
    encoder.layers.{i}             (B, T', C)  block output
    ctc: logits                    (B, T', V)
    transducers: encoder_projector (B, T', D)  the joint's encoder input
"""

from __future__ import annotations

import math

import mlx.core as mx
from mlx import nn

from mlx_impl.layers.conformer import ConformerBlock, relative_positions
from mlx_impl.layers.lstm import LSTM
from mlx_impl.parakeet.config import EncoderConfig, ParakeetConfig
from mlx_impl.taps import NO_TAPS, Taps

def encoder_length(n_frames, cfg: EncoderConfig):
    """Encoder frames for `n_frames` feature frames (int or int array; upstream
    `_get_subsampling_output_length`)."""
    k, s = cfg.subsampling_conv_kernel_size, cfg.subsampling_conv_stride
    for _ in range(cfg.n_subsampling_convs):
        n_frames = (n_frames + 2 * ((k - 1) // 2) - k) // s + 1
    return n_frames


class ConvSubsampling(nn.Module):
    """Conv2d(1 -> C, stride 2) + ReLU, then (depthwise Conv2d stride 2, pointwise Conv2d, ReLU)
    x (log2 factor - 1), flatten (channels, freq) and project. Convs are NHWC here: (B, T, F, C)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        k, s = cfg.subsampling_conv_kernel_size, cfg.subsampling_conv_stride
        ch = cfg.subsampling_conv_channels
        self.kernel, self.stride, self.padding = k, s, (k - 1) // 2
        # ReLUs kept as list entries so the conv indices equal upstream's keys (layers.0, .2, .3..)
        layers: list[nn.Module] = [nn.Conv2d(1, ch, k, stride=s, padding=self.padding), nn.ReLU()]
        for _ in range(cfg.n_subsampling_convs - 1):
            layers += [nn.Conv2d(ch, ch, k, stride=s, padding=self.padding, groups=ch),
                       nn.Conv2d(ch, ch, 1), nn.ReLU()]
        self.layers = layers
        f_out = cfg.num_mel_bins // s ** cfg.n_subsampling_convs
        self.linear = nn.Linear(ch * f_out, cfg.hidden_size)

    def __call__(self, x: mx.array, lengths: mx.array | None) -> mx.array:
        """x (B, T, F) features; lengths (B,) valid frames or None -> (B, T', hidden)."""
        x = x[..., None]  # (B, T, F, 1)
        for layer in self.layers:
            x = layer(x)
            if isinstance(layer, nn.Conv2d) and lengths is not None:
                if layer.stride != (1, 1):  # the pointwise conv keeps the length
                    lengths = (lengths + 2 * self.padding - self.kernel) // self.stride + 1
                valid = mx.arange(x.shape[1])[None, :] < lengths[:, None]
                x = x * valid[:, :, None, None].astype(x.dtype)
        b, t, f, c = x.shape
        x = x.transpose(0, 1, 3, 2).reshape(b, t, c * f)  # upstream flattens (channels, freq)
        return self.linear(x)


class ParakeetEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.subsampling = ConvSubsampling(cfg)
        self.layers = [ConformerBlock(cfg.hidden_size, cfg.num_attention_heads,
                                      cfg.intermediate_size, cfg.conv_kernel_size,
                                      cfg.attention_bias, cfg.convolution_bias)
                       for _ in range(cfg.num_hidden_layers)]

    def __call__(self, features: mx.array, lengths: mx.array | None = None,
                 taps: Taps = NO_TAPS) -> tuple[mx.array, mx.array]:
        """features (B, T, n_mels); lengths (B,) int valid feature frames (None: all valid)
        -> (hidden (B, T', C), valid (B, T') bool)."""
        b, t, _ = features.shape
        x = self.subsampling(features, lengths)
        x = taps("encoder.subsampling", x)
        if self.cfg.scale_input:
            x = x * math.sqrt(self.cfg.hidden_size)
        t_out = x.shape[1]
        if lengths is None:
            lengths = mx.full((b,), t, dtype=mx.int32)
        valid = mx.arange(t_out)[None, :] < encoder_length(lengths, self.cfg)[:, None]  # (B, T')
        full = bool(mx.all(valid).item())
        mask = None if full else (valid[:, None, :, None] & valid[:, None, None, :])
        pos = mx.array(relative_positions(t_out, self.cfg.hidden_size)).astype(x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, pos, mask, None if full else valid, taps, f"encoder.layers.{i}")
        return x, valid


class ParakeetForCTC(nn.Module):
    def __init__(self, cfg: ParakeetConfig):
        super().__init__()
        self.config = cfg
        self.encoder = ParakeetEncoder(cfg.encoder_config)
        self.ctc_head = nn.Linear(cfg.encoder_config.hidden_size, cfg.vocab_size)  # kernel-1 conv

    def __call__(self, features: mx.array, lengths: mx.array | None = None,
                 taps: Taps = NO_TAPS) -> tuple[mx.array, mx.array]:
        """-> (logits (B, T', V), valid (B, T') bool)."""
        x, valid = self.encoder(features, lengths, taps)
        logits = self.ctc_head(x)
        logits = taps("logits", logits)
        return logits, valid


class PredictionNetwork(nn.Module):
    """Embedding -> LSTM (the shared `mlx_impl.layers.lstm.LSTM`, torch layout) -> linear.
    `step` advances one token from an explicit (h, c) state, as greedy decoding needs."""

    def __init__(self, vocab_size: int, n_hidden: int, n_layers: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, n_hidden)
        self.lstm = LSTM(n_hidden, n_hidden, n_layers)
        self.decoder_projector = nn.Linear(n_hidden, n_hidden)

    def initial_state(self, batch: int, dtype=mx.float32) -> tuple[mx.array, mx.array]:
        shape = (self.lstm.num_layers, batch, self.lstm.hidden_size)
        return mx.zeros(shape, dtype=dtype), mx.zeros(shape, dtype=dtype)

    def step(self, tokens: mx.array, state: tuple[mx.array, mx.array]
             ) -> tuple[mx.array, tuple[mx.array, mx.array]]:
        """tokens (B,) int; state (h, c) each (layers, B, H) -> (output (B, H), new state)."""
        out, state = self.lstm.run(self.embedding(tokens)[:, None, :], state)  # (B, 1, H)
        return self.decoder_projector(out[:, 0]), state


class JointNetwork(nn.Module):
    def __init__(self, n_hidden: int, n_out: int):
        super().__init__()
        self.head = nn.Linear(n_hidden, n_out)

    def __call__(self, enc: mx.array, dec: mx.array) -> mx.array:
        """enc (..., D) projected encoder frame(s), dec (..., D) -> (..., n_out)."""
        return self.head(nn.relu(enc + dec))


class ParakeetForTransducer(nn.Module):
    """`ParakeetForRNNT` (joint outputs vocab_size) or `ParakeetForTDT` (vocab_size + durations)."""

    def __init__(self, cfg: ParakeetConfig):
        super().__init__()
        if cfg.model_type not in ("parakeet_rnnt", "parakeet_tdt"):
            raise ValueError(f"ParakeetForTransducer needs an RNN-T or TDT config, got "
                             f"{cfg.model_type!r}")
        self.config = cfg
        d = cfg.decoder_hidden_size
        self.encoder = ParakeetEncoder(cfg.encoder_config)
        self.encoder_projector = nn.Linear(cfg.encoder_config.hidden_size, d)
        self.decoder = PredictionNetwork(cfg.vocab_size, d, cfg.num_decoder_layers)
        n_out = cfg.vocab_size + (len(cfg.durations) if cfg.durations is not None else 0)
        self.joint = JointNetwork(d, n_out)

    def encode(self, features: mx.array, lengths: mx.array | None = None,
               taps: Taps = NO_TAPS) -> tuple[mx.array, mx.array]:
        """-> (projected encoder output (B, T', D), valid (B, T') bool)."""
        x, valid = self.encoder(features, lengths, taps)
        enc = self.encoder_projector(x)
        enc = taps("encoder_projector", enc)
        return enc, valid


def build_model(cfg: ParakeetConfig) -> ParakeetForCTC | ParakeetForTransducer:
    return ParakeetForCTC(cfg) if cfg.model_type == "parakeet_ctc" else ParakeetForTransducer(cfg)
