"""Kokoro-82M in MLX: phoneme ids + a voice style vector -> 24 kHz audio.

Upstream: the `kokoro` package 0.9.4 (hexgrad; StyleTTS 2 + iSTFTNet): `KModel.
forward_with_tokens` (model.py), `CustomAlbert` / `TextEncoder` / `ProsodyPredictor` /
`DurationEncoder` / `AdaLayerNorm` (modules.py), `Decoder` / `Generator` / `AdainResBlk1d` /
`AdaINResBlock1` / `AdaIN1d` / `SourceModuleHnNSF` / `SineGen` / `TorchSTFT` (istftnet.py); the
ALBERT is transformers' `AlbertModel` (5.24.0: embeddings, one shared layer group, gelu_new).
Module attribute names are upstream's state-dict keys, so `convert.py` is a rename-free table of
transposes. Channels-last throughout: every (B, C, T) upstream tensor is (B, T, C) here.

Deviations, all deliberate:
- batch of one sequence without padding (upstream's `KModel.forward` runs one too; its masks
  and `pack_padded_sequence` are then no-ops, so they are not reproduced);
- randomness is passed in: `phases` (B, 9), the harmonics' initial phases (upstream's
  `torch.rand`, the fundamental's zeroed inside), and `noise(shape)`, a function returning the
  additive source noise (B, N, 9) once N is known (upstream's `torch.randn_like`); the unused
  noise branch of `SourceModuleHnNSF` is not computed;
- the harmonic source's STFT phase (upstream: `torch.angle`) is made well defined where it is
  rounding noise: 0 at bins whose magnitude is <= 1e-4 of the frame's largest (upstream: the
  sign of a ~1e-6 real part decides 0 or pi, e.g. at the Nyquist bin), +pi at bins within
  1e-4 rad of the negative real axis (upstream: the sign of the imaginary rounding residue
  decides +pi or -pi; with centre reflect padding the first frame is symmetric, its spectrum
  real, and torch's CPU FFT lands on each sign about half the time, measured over 600 random
  frames, n_fft 8/16/20, while MLX's FFT gives exactly 0). The phase feeds `noise_convs`
  unweighted by the magnitude, so each flip is a 2 pi (or pi) jump in a conv input, which the
  instance norms after it spread over every frame (measured before this rule: rel-rms error 2.2
  at noise_convs.0, 0.6 in the audio). The reference adapter applies the same rule through a
  scoped patch of `TorchSTFT.transform` (reference/kokoro.py);
- durations are rounded in numpy (`np.round`: half to even, as `torch.round`) and the
  alignment matmul is a gather of the same rows (a one-hot matmul adds exact zeros).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import mlx.core as mx
import numpy as np
from mlx import nn

from mlx_impl.kokoro.config import SAMPLE_RATE, KokoroConfig
from mlx_impl.layers import interpolate
from mlx_impl.layers.activations import exp, softmax
from mlx_impl.layers.conv import pad1d
from mlx_impl.layers.lstm import BiLSTM
from mlx_impl.layers.norm import LayerNorm, instance_norm, layer_norm
from mlx_impl.layers.snake import snake
from mlx_impl.layers.spectral import hann_window, istft, stft
from mlx_impl.layers.torch_conv import Conv1d, ConvTranspose1d, DepthwiseConvTranspose1d
from mlx_impl.taps import NO_TAPS, Taps

RSQRT2 = float(np.float32(0.70710677))  # torch.rsqrt(torch.tensor(2)) in float32
HARMONICS = 8  # upstream's Generator: SourceModuleHnNSF(harmonic_num=8)
SINE_AMP, NOISE_STD, VOICED_THRESHOLD = 0.1, 0.003, 10.0  # SineGen's settings in the Generator

Noise = Callable[[tuple], np.ndarray]
TINY_BIN = 1e-4  # |X| <= TINY_BIN * max |X| of the frame: no defined phase (taken as 0)
REAL_BIN = 1e-4  # |imag| <= REAL_BIN * |X| with real < 0: within 1e-4 rad of pi (taken as +pi)


def stft_phase(spec: mx.array) -> mx.array:
    """atan2(imag, real) made continuous where it is rounding noise (module docstring): 0 at
    bins of rounding-level magnitude, +pi at real negative bins."""
    re, im = spec.real, spec.imag
    mag = mx.abs(spec)
    tiny = mag <= TINY_BIN * mx.max(mag, axis=-1, keepdims=True)
    real_neg = (mx.abs(im) <= REAL_BIN * mag) & (re < 0)
    return mx.where(tiny, 0.0, mx.where(real_neg, math.pi, mx.arctan2(im, re)))


def leaky_relu(x: mx.array, slope: float) -> mx.array:
    return mx.where(x >= 0, x, x * slope)


def gelu_new(x: mx.array) -> mx.array:
    """transformers' NewGELUActivation (ALBERT's hidden_act "gelu_new")."""
    return 0.5 * x * (1.0 + mx.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * mx.power(x, 3.0))))


# ---- ALBERT (transformers AlbertModel) -------------------------------------------------------

class AlbertEmbeddings(nn.Module):
    def __init__(self, n_token: int, e: int, n_pos: int, eps: float):
        super().__init__()
        self.word_embeddings = nn.Embedding(n_token, e)
        self.position_embeddings = nn.Embedding(n_pos, e)
        self.token_type_embeddings = nn.Embedding(2, e)
        self.LayerNorm = LayerNorm(e, eps=eps)

    def __call__(self, ids: mx.array) -> mx.array:  # (B, T) -> (B, T, E)
        x = self.word_embeddings(ids) + self.token_type_embeddings.weight[0]
        x = x + self.position_embeddings.weight[: ids.shape[1]]
        return self.LayerNorm(x)


class AlbertAttention(nn.Module):
    def __init__(self, d: int, n_head: int, eps: float):
        super().__init__()
        self.n_head = n_head
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.dense = nn.Linear(d, d)
        self.LayerNorm = LayerNorm(d, eps=eps)

    def __call__(self, x: mx.array) -> mx.array:  # (B, T, D)
        B, T, D = x.shape
        h = self.n_head

        def heads(y):
            return y.reshape(B, T, h, D // h).transpose(0, 2, 1, 3)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        w = softmax((q @ k.transpose(0, 1, 3, 2)) * (D // h) ** -0.5, axis=-1)
        a = (w @ v).transpose(0, 2, 1, 3).reshape(B, T, D)
        return self.LayerNorm(x + self.dense(a))


class AlbertLayer(nn.Module):
    def __init__(self, d: int, n_head: int, d_ff: int, eps: float):
        super().__init__()
        self.attention = AlbertAttention(d, n_head, eps)
        self.ffn = nn.Linear(d, d_ff)
        self.ffn_output = nn.Linear(d_ff, d)
        self.full_layer_layer_norm = LayerNorm(d, eps=eps)

    def __call__(self, x: mx.array) -> mx.array:
        a = self.attention(x)
        return self.full_layer_layer_norm(self.ffn_output(gelu_new(self.ffn(a))) + a)


class AlbertLayerGroup(nn.Module):
    def __init__(self, *args):
        super().__init__()
        self.albert_layers = [AlbertLayer(*args)]


class AlbertEncoder(nn.Module):
    def __init__(self, e: int, d: int, n_head: int, d_ff: int, n_layers: int, eps: float):
        super().__init__()
        self.n_layers = n_layers
        self.embedding_hidden_mapping_in = nn.Linear(e, d)
        self.albert_layer_groups = [AlbertLayerGroup(d, n_head, d_ff, eps)]

    def __call__(self, x: mx.array) -> mx.array:
        x = self.embedding_hidden_mapping_in(x)
        layer = self.albert_layer_groups[0].albert_layers[0]  # shared by every layer
        for _ in range(self.n_layers):
            x = layer(x)
        return x


class Albert(nn.Module):
    def __init__(self, cfg: KokoroConfig):
        super().__init__()
        p = cfg.plbert
        self.embeddings = AlbertEmbeddings(cfg.n_token, p.embedding_size,
                                           p.max_position_embeddings, p.layer_norm_eps)
        self.encoder = AlbertEncoder(p.embedding_size, p.hidden_size, p.num_attention_heads,
                                     p.intermediate_size, p.num_hidden_layers, p.layer_norm_eps)

    def __call__(self, ids: mx.array) -> mx.array:  # (B, T) -> (B, T, hidden)
        return self.encoder(self.embeddings(ids))


# ---- style-conditioned norms and blocks -------------------------------------------------------

class InstanceNorm1d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.weight, self.bias = mx.ones((channels,)), mx.zeros((channels,))

    def __call__(self, x: mx.array) -> mx.array:
        return instance_norm(x) * self.weight + self.bias


class AdaIN1d(nn.Module):
    def __init__(self, style_dim: int, channels: int):
        super().__init__()
        self.norm = InstanceNorm1d(channels)
        self.fc = nn.Linear(style_dim, 2 * channels)

    def __call__(self, x: mx.array, s: mx.array) -> mx.array:  # x (B, T, C), s (B, S)
        gamma, beta = mx.split(self.fc(s)[:, None], 2, axis=-1)
        return (1 + gamma) * self.norm(x) + beta


class AdaLayerNorm(nn.Module):
    def __init__(self, style_dim: int, channels: int):
        super().__init__()
        self.fc = nn.Linear(style_dim, 2 * channels)

    def __call__(self, x: mx.array, s: mx.array) -> mx.array:
        gamma, beta = mx.split(self.fc(s)[:, None], 2, axis=-1)
        return (1 + gamma) * layer_norm(x, None, None, 1e-5) + beta


class AdainResBlk1d(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.conv1 = Conv1d(dim_in, dim_out, 3, padding=1)
        self.conv2 = Conv1d(dim_out, dim_out, 3, padding=1)
        self.norm1, self.norm2 = AdaIN1d(style_dim, dim_in), AdaIN1d(style_dim, dim_out)
        if dim_in != dim_out:
            self.conv1x1 = Conv1d(dim_in, dim_out, 1, bias=False)
        if upsample:
            self.pool = DepthwiseConvTranspose1d(dim_in, 3, stride=2, padding=1, output_padding=1)

    def __call__(self, x: mx.array, s: mx.array) -> mx.array:
        r = leaky_relu(self.norm1(x, s), 0.2)
        if self.upsample:
            r = self.pool(r)
        r = self.conv2(leaky_relu(self.norm2(self.conv1(r), s), 0.2))
        sc = interpolate.nearest(x, 2) if self.upsample else x
        if "conv1x1" in self:
            sc = self.conv1x1(sc)
        return (r + sc) * RSQRT2


class AdaINResBlock1(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: tuple[int, ...], style_dim: int):
        super().__init__()
        k = kernel_size
        self.convs1 = [Conv1d(channels, channels, k, padding=(k * d - d) // 2, dilation=d)
                       for d in dilation]
        self.convs2 = [Conv1d(channels, channels, k, padding=(k - 1) // 2) for _ in dilation]
        self.adain1 = [AdaIN1d(style_dim, channels) for _ in dilation]
        self.adain2 = [AdaIN1d(style_dim, channels) for _ in dilation]
        self.alpha1 = [mx.ones((channels,)) for _ in dilation]
        self.alpha2 = [mx.ones((channels,)) for _ in dilation]

    def __call__(self, x: mx.array, s: mx.array) -> mx.array:
        for c1, c2, n1, n2, a1, a2 in zip(self.convs1, self.convs2, self.adain1, self.adain2,
                                          self.alpha1, self.alpha2):
            # upstream's Snake is x + 1/a sin^2(a x); `snake` adds 1e-9 to a, below fp32 ulp at a ~ 1
            xt = c1(snake(n1(x, s), a1))
            x = c2(snake(n2(xt, s), a2)) + x
        return x


# ---- text side -------------------------------------------------------------------------------

class ChannelLayerNorm(nn.Module):
    """kokoro's `LayerNorm` (gamma, beta) over channels, eps 1e-5."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma, self.beta = mx.ones((channels,)), mx.zeros((channels,))

    def __call__(self, x: mx.array) -> mx.array:
        return layer_norm(x, self.gamma, self.beta, 1e-5)


class TextEncoder(nn.Module):
    def __init__(self, channels: int, kernel_size: int, depth: int, n_symbols: int):
        super().__init__()
        self.embedding = nn.Embedding(n_symbols, channels)
        self.cnn = [[Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2),
                     ChannelLayerNorm(channels)] for _ in range(depth)]
        self.lstm = BiLSTM(channels, channels // 2)

    def __call__(self, ids: mx.array, taps: Taps = NO_TAPS) -> mx.array:  # -> (B, T, C)
        x = self.embedding(ids)
        for i, (conv, norm) in enumerate(self.cnn):
            x = taps(f"text_encoder.cnn.{i}", leaky_relu(norm(conv(x)), 0.2))
        return taps("text_encoder", self.lstm(x))


class DurationEncoder(nn.Module):
    def __init__(self, style_dim: int, d_model: int, n_layers: int):
        super().__init__()
        self.lstms = []
        for _ in range(n_layers):
            self.lstms += [BiLSTM(d_model + style_dim, d_model // 2),
                           AdaLayerNorm(style_dim, d_model)]

    def __call__(self, x: mx.array, s: mx.array) -> mx.array:  # (B, T, d) -> (B, T, d + S)
        sb = mx.broadcast_to(s[:, None], (x.shape[0], x.shape[1], s.shape[-1]))
        x = mx.concatenate([x, sb], axis=-1)
        for block in self.lstms:
            if isinstance(block, AdaLayerNorm):
                x = mx.concatenate([block(x, s), sb], axis=-1)
            else:
                x = block(x)
        return x


class LinearNorm(nn.Module):
    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear_layer = nn.Linear(n_in, n_out)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear_layer(x)


class ProsodyPredictor(nn.Module):
    def __init__(self, style_dim: int, d_hid: int, n_layers: int, max_dur: int):
        super().__init__()
        self.text_encoder = DurationEncoder(style_dim, d_hid, n_layers)
        self.lstm = BiLSTM(d_hid + style_dim, d_hid // 2)
        self.duration_proj = LinearNorm(d_hid, max_dur)
        self.shared = BiLSTM(d_hid + style_dim, d_hid // 2)
        h = d_hid // 2
        for name in ("F0", "N"):
            setattr(self, name, [AdainResBlk1d(d_hid, d_hid, style_dim),
                                 AdainResBlk1d(d_hid, h, style_dim, upsample=True),
                                 AdainResBlk1d(h, h, style_dim)])
            setattr(self, f"{name}_proj", Conv1d(h, 1, 1))

    def F0Ntrain(self, en: mx.array, s: mx.array, taps: Taps = NO_TAPS):
        """en (B, F, d + S) -> F0 and N curves, each (B, 2F)."""
        x = taps("predictor.shared", self.shared(en))
        out = []
        for name in ("F0", "N"):
            y = x
            for i, block in enumerate(getattr(self, name)):
                y = taps(f"predictor.{name}.{i}", block(y, s))
            y = taps(f"predictor.{name}_proj", getattr(self, f"{name}_proj")(y))
            out.append(y[..., 0])
        return taps("F0_pred", out[0]), taps("N_pred", out[1])


# ---- iSTFTNet decoder ------------------------------------------------------------------------

class SourceModule(nn.Module):
    """`SourceModuleHnNSF`: the harmonic source; only `l_linear` has weights."""

    def __init__(self, upsample_scale: int):
        super().__init__()
        self.upsample_scale = upsample_scale
        self.l_linear = nn.Linear(HARMONICS + 1, 1)

    def sine(self, f0: mx.array, phases: mx.array, noise: Noise) -> mx.array:
        """`SineGen`: f0 (B, N, 1) Hz -> sine waves (B, N, 9) with noise."""
        fn = f0 * mx.arange(1, HARMONICS + 2, dtype=f0.dtype)
        rad = mx.remainder(fn / SAMPLE_RATE, 1.0)
        ini = mx.concatenate([mx.zeros_like(phases[:, :1]), phases[:, 1:]], axis=-1)
        rad = mx.concatenate([rad[:, :1] + ini[:, None], rad[:, 1:]], axis=1)
        # the phase is integrated at the frame rate and interpolated back (upstream's order)
        rad = interpolate.linear(rad, 1 / self.upsample_scale)
        # torch's CPU cumsum accumulates float32 in double (acc_type) and rounds each output;
        # an fp32 running sum drifts from it by ~1e-7 x the phase, which reaches 1e-4 in the
        # sines after a few thousand frames: summed in float64 here as torch does
        acc = np.cumsum(np.asarray(rad.astype(mx.float32), dtype=np.float64), axis=1)
        phase = mx.array(acc.astype(np.float32)).astype(rad.dtype) * 2 * math.pi
        phase = interpolate.linear(phase * self.upsample_scale, self.upsample_scale)
        sines = mx.sin(phase) * SINE_AMP
        uv = (f0 > VOICED_THRESHOLD).astype(f0.dtype)
        amp = uv * NOISE_STD + (1 - uv) * SINE_AMP / 3
        z = mx.array(np.asarray(noise(tuple(sines.shape)), np.float32)).astype(f0.dtype)
        return sines * uv + amp * z

    def __call__(self, f0: mx.array, phases: mx.array, noise: Noise) -> mx.array:
        w, b = self.l_linear.weight.astype(mx.float32), self.l_linear.bias.astype(mx.float32)
        return mx.tanh(mx.addmm(b, self.sine(f0, phases, noise), w.T))  # (B, N, 1), float32


class Generator(nn.Module):
    def __init__(self, style_dim: int, cfg):
        super().__init__()
        rates, kernels = cfg.upsample_rates, cfg.upsample_kernel_sizes
        self.num_kernels, self.n_fft, self.hop = (len(cfg.resblock_kernel_sizes),
                                                  cfg.gen_istft_n_fft, cfg.gen_istft_hop_size)
        self.upsample_scale = math.prod(rates) * self.hop
        self.m_source = SourceModule(self.upsample_scale)
        c0 = cfg.upsample_initial_channel
        self.ups, self.resblocks, self.noise_convs, self.noise_res = [], [], [], []
        for i, (u, k) in enumerate(zip(rates, kernels)):
            c = c0 // 2 ** (i + 1)
            self.ups.append(ConvTranspose1d(c0 // 2 ** i, c, k, u, padding=(k - u) // 2))
            self.resblocks += [AdaINResBlock1(c, rk, d, style_dim) for rk, d in
                               zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)]
            if i + 1 < len(rates):
                sf = math.prod(rates[i + 1:])
                self.noise_convs.append(Conv1d(self.n_fft + 2, c, 2 * sf, sf, (sf + 1) // 2))
                self.noise_res.append(AdaINResBlock1(c, 7, (1, 3, 5), style_dim))
            else:
                self.noise_convs.append(Conv1d(self.n_fft + 2, c, 1))
                self.noise_res.append(AdaINResBlock1(c, 11, (1, 3, 5), style_dim))
        self.conv_post = Conv1d(c, self.n_fft + 2, 7, padding=3)
        self._window = mx.array(hann_window(self.n_fft))  # buffer, not a parameter

    def __call__(self, x: mx.array, s: mx.array, f0: mx.array, phases: mx.array, noise: Noise,
                 taps: Taps = NO_TAPS) -> mx.array:
        g = "decoder.generator"
        f0 = interpolate.nearest(f0[..., None], self.upsample_scale)  # (B, N, 1)
        # the source runs in float32 whatever the model's dtype: it integrates F0 into phases of
        # up to ~3e4 rad, which float16 cannot hold (measured: m_source 34 dB, audio 2 dB SNR
        # with the source in float16 on kokoro-test-tiny)
        f0, phases = f0.astype(mx.float32), phases.astype(mx.float32)
        har = taps(f"{g}.m_source", self.m_source(f0, phases, noise))[..., 0]
        spec = stft(har, self.n_fft, self.hop, window=self._window)  # (B, frames, n_fft/2 + 1)
        har = mx.concatenate([mx.abs(spec), stft_phase(spec)], axis=-1).astype(x.dtype)
        for i, up in enumerate(self.ups):
            x = leaky_relu(x, 0.1)
            xs = taps(f"{g}.noise_convs.{i}", self.noise_convs[i](har))
            xs = taps(f"{g}.noise_res.{i}", self.noise_res[i](xs, s))
            x = taps(f"{g}.ups.{i}", up(x))
            if i == len(self.ups) - 1:
                x = pad1d(x, 1, 0, "reflect")  # upstream's ReflectionPad1d((1, 0))
            x = x + xs
            acc = None
            for j in range(self.num_kernels):
                k = i * self.num_kernels + j
                y = taps(f"{g}.resblocks.{k}", self.resblocks[k](x, s))
                acc = y if acc is None else acc + y
            x = acc / self.num_kernels
        x = taps(f"{g}.conv_post", self.conv_post(leaky_relu(x, 0.01)))
        n = self.n_fft // 2 + 1
        x = x.astype(mx.float32)  # the iSTFT in float32, as the source
        mag, p = exp(x[..., :n]), mx.sin(x[..., n:])
        return istft(mag * mx.cos(p) + 1j * (mag * mx.sin(p)), self.n_fft, self.hop,
                     window=self._window)  # (B, samples)


class Decoder(nn.Module):
    def __init__(self, cfg: KokoroConfig):
        super().__init__()
        d, s = cfg.hidden_dim, cfg.style_dim
        self.encode = AdainResBlk1d(d + 2, 1024, s)
        self.decode = [AdainResBlk1d(1024 + 2 + 64, 1024, s) for _ in range(3)]
        self.decode.append(AdainResBlk1d(1024 + 2 + 64, 512, s, upsample=True))
        self.F0_conv = Conv1d(1, 1, 3, stride=2, padding=1)
        self.N_conv = Conv1d(1, 1, 3, stride=2, padding=1)
        self.asr_res = [Conv1d(512, 64, 1)]
        self.generator = Generator(s, cfg.istftnet)

    def __call__(self, asr, f0_curve, n_curve, s, phases, noise, taps: Taps = NO_TAPS,
                 source_f0=None):
        """asr (B, F, d), f0_curve and n_curve (B, 2F), s (B, S) -> audio (B, samples);
        `source_f0` (B, 2F): the harmonic source's F0 (default f0_curve, as upstream)."""
        f0 = taps("decoder.F0_conv", self.F0_conv(f0_curve[..., None]))
        n = taps("decoder.N_conv", self.N_conv(n_curve[..., None]))
        x = taps("decoder.encode", self.encode(mx.concatenate([asr, f0, n], axis=-1), s))
        res = taps("decoder.asr_res", self.asr_res[0](asr))
        concat = True  # upstream's `res`: the residual inputs join until an upsampling block
        for i, block in enumerate(self.decode):
            if concat:
                x = mx.concatenate([x, res, f0, n], axis=-1)
            x = taps(f"decoder.decode.{i}", block(x, s))
            concat = concat and not block.upsample
        return self.generator(x, s, f0_curve if source_f0 is None else source_f0, phases, noise,
                              taps)


# ---- the whole model ---------------------------------------------------------------------------

class KokoroModel(nn.Module):
    def __init__(self, cfg: KokoroConfig, dtype: mx.Dtype = mx.float32):
        super().__init__()
        self.config, self.dtype = cfg, dtype
        self.bert = Albert(cfg)
        self.bert_encoder = nn.Linear(cfg.plbert.hidden_size, cfg.hidden_dim)
        self.predictor = ProsodyPredictor(cfg.style_dim, cfg.hidden_dim, cfg.n_layer, cfg.max_dur)
        self.text_encoder = TextEncoder(cfg.hidden_dim, cfg.text_encoder_kernel_size,
                                        cfg.n_layer, cfg.n_token)
        self.decoder = Decoder(cfg)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def check_inputs(self, input_ids: mx.array, ref_s: mx.array) -> None:
        cfg = self.config
        if input_ids.ndim != 2 or input_ids.shape[0] != 1:
            raise ValueError(f"input_ids must be (1, T), got {tuple(input_ids.shape)}")
        if input_ids.shape[1] > cfg.plbert.max_position_embeddings:
            raise ValueError(f"{input_ids.shape[1]} tokens exceed the context of "
                             f"{cfg.plbert.max_position_embeddings}; split the text")
        if tuple(ref_s.shape) != (1, 2 * cfg.style_dim):
            raise ValueError(f"ref_s must be (1, {2 * cfg.style_dim}), got {tuple(ref_s.shape)}")

    def predict(self, input_ids: mx.array, ref_s: mx.array, speed: float = 1.0,
                taps: Taps = NO_TAPS) -> tuple[mx.array, np.ndarray]:
        """-> (d (B, T, d + S), duration before rounding (B, T) as numpy float32)."""
        s = ref_s[:, self.config.style_dim:]
        bert = taps("bert", self.bert(input_ids))
        d_en = taps("bert_encoder", self.bert_encoder(bert))
        d = taps("predictor.text_encoder", self.predictor.text_encoder(d_en, s))
        x = taps("predictor.lstm", self.predictor.lstm(d))
        logits = taps("predictor.duration_proj", self.predictor.duration_proj(x))
        duration = taps("duration", mx.sigmoid(logits).sum(axis=-1) / speed)
        return d, np.asarray(duration.astype(mx.float32))

    def __call__(self, input_ids: mx.array, ref_s: mx.array, phases: mx.array, noise: Noise,
                 speed: float = 1.0, taps: Taps = NO_TAPS, source_f0: mx.array | None = None
                 ) -> tuple[mx.array, np.ndarray]:
        """input_ids (1, T) int, ref_s (1, 2 S) voice style, phases (1, 9) in [0, 1), noise(shape)
        -> (audio (1, samples), frames per token (T,) int64). `source_f0` (1, 2F): the F0 curve
        the harmonic source integrates, default the predicted one (parity passes the
        reference's: the source turns F0 into phases of up to ~3e4 rad, so a 1e-6 relative F0
        difference is a 1e-4 rad phase difference, which the STFT phase, discontinuous, can
        turn into a jump)."""
        self.check_inputs(input_ids, ref_s)
        ref_s = ref_s.astype(self.dtype)
        d, duration = self.predict(input_ids, ref_s, speed, taps)
        pred_dur = np.maximum(np.round(duration[0]), 1).astype(np.int64)
        taps("pred_dur", mx.array(pred_dur[None]))
        idx = mx.array(np.repeat(np.arange(len(pred_dur)), pred_dur).astype(np.int32))
        en = taps("en", d[:, idx])
        s_pros, s_dec = ref_s[:, self.config.style_dim:], ref_s[:, : self.config.style_dim]
        f0, n = self.predictor.F0Ntrain(en, s_pros, taps)
        t_en = self.text_encoder(input_ids, taps)
        if source_f0 is not None and tuple(source_f0.shape) != tuple(f0.shape):
            raise ValueError(f"source_f0 must be {tuple(f0.shape)} (the predicted F0's shape), "
                             f"got {tuple(source_f0.shape)}")
        audio = self.decoder(t_en[:, idx], f0, n, s_dec, phases.astype(self.dtype), noise, taps,
                             f0 if source_f0 is None else source_f0.astype(self.dtype))
        return taps("audio", audio), pred_dur
