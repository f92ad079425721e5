"""BiCodec (Spark-TTS's audio tokenizer) in MLX: audio -> (global, semantic) tokens -> audio.

Upstream: spark-tts-lib 0.2.1 (`models/bicodec.py` `BiCodec.tokenize` / `detokenize`,
`models/audio_tokenizer.py` `BiCodecTokenizer`, `modules/encoder_decoder/*`,
`modules/blocks/{vocos,samper,layers}.py`, `modules/vq/factorized_vector_quantize.py`,
`modules/speaker/*`, `modules/fsq/*`), with transformers 5.24.0 `Wav2Vec2Model` for the features.
Module attribute names equal the checkpoint keys (convert.py: transposes, folded weight norms,
a few renames), so the pieces read as upstream's:

- features: wav2vec2 (XLSR-53) hidden states 11, 14 and 16 averaged, `(h11 + h14 + h16) / 3`
  (transformers' `hidden_states[k]`: the input of layer k, i.e. the output of layer k - 1; with a
  stable-layer-norm model the last entry is after the final norm). Layers past the deepest one
  used are not run (upstream runs all 24; their outputs are unused);
- `encoder`: a Vocos backbone (ConvNeXt, `layers.convnext`), per sample ratio a `SamplingBlock`
  and a 2-layer backbone, a Linear projection. With ratio 1 (the released config; others are
  refused in config.py) upstream's SamplingBlock returns `x + x + x`, kept as such;
- `quantizer`: factorised VQ (`layers.vq_factorized`: 1x1 in-projection to 8 dims, cosine
  nearest code over L2-normalised codebook rows, Descript's distance expression), 8192 codes;
- speaker: the reference clip's mel (torchaudio `MelSpectrogram`, power 1, Slaney scale and
  norm, win_length-long Hann window centred in n_fft, the checkpoint's stored filterbank),
  ECAPA-TDNN frame latents (`layers.ecapa_tdnn`), a Perceiver resampler to 32 latents
  (`layers.perceiver`), the residual FSQ (1 quantizer, levels 4^6: Linear 128 -> 6,
  `layers.fsq.LevelFSQ`, Linear 6 -> 128) -> 32 global tokens; detokenize: FSQ codes ->
  project_out -> flattened CHANNEL-major (upstream's `(B, 128, 32).reshape(B, -1)`) -> `project`
  -> the d-vector;
- `prenet`: Linear, sampling blocks, a Vocos backbone whose norms are adaptive layer norms of the
  d-vector (`layers.convnext.CondAdaLayerNorm`), Linear; then `+ d_vector` over time;
- `decoder`: the wave generator (DAC's decoder with given kernel sizes): weight-normed conv,
  [Snake, transposed conv (kernel k, stride r, padding (k - r) // 2), residual units at
  dilations 1, 3, 9] per rate, Snake, conv to 1 channel, tanh.
`postnet` (training-only: it predicts the features back) is not ported; the converter drops
its keys by name.

Layout: channels-last; audio (B, N) at 16 kHz; features (B, T, C); tokens: semantic (B, T),
global (B, 1, 32) (upstream's shapes). Taps (`taps=Taps()`): the reference adapter's list
(reference/spark.py), same names.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from mlx import nn

from mlx_impl.dac.model import ResidualUnit
from mlx_impl.layers.convnext import CondAdaLayerNorm, CondConvNeXtBlock, ConvNeXtBlock
from mlx_impl.layers.ecapa_tdnn import EcapaTdnn
from mlx_impl.layers.fsq import LevelFSQ
from mlx_impl.layers.norm import LayerNorm
from mlx_impl.layers.perceiver import PerceiverResampler
from mlx_impl.layers.snake import Snake
from mlx_impl.layers.spectral import hann_window, stft
from mlx_impl.layers.torch_conv import Conv1d, ConvTranspose1d
from mlx_impl.layers.vq_factorized import FactorizedVQ, nearest_code
from mlx_impl.spark.config import BiCodecConfig, VocosArgs
from mlx_impl.taps import NO_TAPS, Taps

HIDDEN_LAYERS = (11, 14, 16)  # BiCodecTokenizer.extract_wav2vec2_features


class VocosBackbone(nn.Module):
    def __init__(self, n_in: int, dim: int, inter: int, n_layers: int,
                 condition_dim: int | None = None):
        super().__init__()
        self.embed = nn.Conv1d(n_in, dim, kernel_size=7, padding=3)
        self.adanorm = condition_dim is not None
        ls = 1 / n_layers  # upstream's default; the checkpoint's gammas replace it
        if self.adanorm:
            self.norm = CondAdaLayerNorm(condition_dim, dim)
            self.convnext = [CondConvNeXtBlock(dim, inter, ls, condition_dim)
                             for _ in range(n_layers)]
        else:
            self.norm = LayerNorm(dim, eps=1e-6)
            self.convnext = [ConvNeXtBlock(dim, inter, ls) for _ in range(n_layers)]
        self.final_layer_norm = LayerNorm(dim, eps=1e-6)

    def __call__(self, x: mx.array, cond: mx.array | None = None) -> mx.array:  # (B, T, C)
        x = self.embed(x)
        x = self.norm(x, cond) if self.adanorm else self.norm(x)
        for block in self.convnext:
            x = block(x, cond)
        return self.final_layer_norm(x)


class SamplingBlock(nn.Module):
    """Ratio 1 only (config.py): conv_res + skip1 + skip2 with all three the input."""

    def __call__(self, x: mx.array) -> mx.array:
        return x + x + x


def _stages(a: VocosArgs) -> list:
    return [[SamplingBlock(), VocosBackbone(a.vocos_dim, a.vocos_dim, a.vocos_intermediate_dim, 2)]
            for _ in a.sample_ratios]


class Encoder(nn.Module):
    def __init__(self, a: VocosArgs):
        super().__init__()
        self.encoder = VocosBackbone(a.input_channels, a.vocos_dim, a.vocos_intermediate_dim,
                                     a.vocos_num_layers)
        self.downsample = _stages(a)
        self.project = nn.Linear(a.vocos_dim, a.out_channels)

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        x = taps("encoder.encoder", self.encoder(x))
        for sampling, backbone in self.downsample:
            x = backbone(sampling(x))
        return taps("encoder", self.project(x))


class Prenet(nn.Module):
    """spark-tts-lib's `Decoder` (the feature decoder conditioned on the d-vector)."""

    def __init__(self, a: VocosArgs):
        super().__init__()
        self.linear_pre = nn.Linear(a.input_channels, a.vocos_dim)
        self.downsample = _stages(a)
        self.vocos_backbone = VocosBackbone(a.vocos_dim, a.vocos_dim, a.vocos_intermediate_dim,
                                            a.vocos_num_layers, a.condition_dim)
        self.linear = nn.Linear(a.vocos_dim, a.out_channels)
        self.use_tanh = a.use_tanh_at_final

    def __call__(self, x: mx.array, cond: mx.array, taps: Taps = NO_TAPS) -> mx.array:
        x = self.linear_pre(x)
        for sampling, backbone in self.downsample:
            x = backbone(sampling(x))
        x = taps("prenet.vocos_backbone", self.vocos_backbone(x, cond))
        x = self.linear(x)
        return taps("prenet", mx.tanh(x) if self.use_tanh else x)


class DecoderBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int):
        super().__init__()
        self.snake1 = Snake(n_in)
        self.conv_t1 = ConvTranspose1d(n_in, n_out, kernel, stride=stride,
                                       padding=(kernel - stride) // 2)
        self.res_units = [ResidualUnit(n_out, d) for d in (1, 3, 9)]

    def __call__(self, x: mx.array) -> mx.array:
        x = self.conv_t1(self.snake1(x))
        for unit in self.res_units:
            x = unit(x)
        return x


class WaveGenerator(nn.Module):
    """`model.0` conv, `model.1..n` decoder blocks, `model.n+1` Snake, `model.n+2` conv, tanh."""

    def __init__(self, cfg: BiCodecConfig):
        super().__init__()
        c = cfg.decoder_channels
        layers: list = [Conv1d(cfg.decoder_input, c, 7, padding=3)]
        for i, (k, r) in enumerate(zip(cfg.decoder_kernels, cfg.decoder_rates)):
            layers.append(DecoderBlock(c // 2 ** i, c // 2 ** (i + 1), k, r))
        out = c // 2 ** len(cfg.decoder_rates)
        layers += [Snake(out), Conv1d(out, 1, 7, padding=3)]
        self.model = layers

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:  # (B, T, C) -> (B, N)
        for i, layer in enumerate(self.model):
            x = taps(f"decoder.model.{i}", layer(x))
        return taps(f"decoder.model.{len(self.model)}", mx.tanh(x))[..., 0]


class ResidualFSQ(nn.Module):
    def __init__(self, dim: int, levels: tuple[int, ...]):
        super().__init__()
        self.project_in = nn.Linear(dim, len(levels))
        self.project_out = nn.Linear(len(levels), dim)
        self.fsq = LevelFSQ(levels)

    def encode(self, x: mx.array) -> mx.array:  # (B, N, dim) -> (B, N) int32
        # one quantizer: its scale is (L - 1) ** 0 = 1, so residual / scale is the input itself
        return self.fsq.encode(self.project_in(x))[1]

    def decode(self, indices: mx.array) -> mx.array:  # (B, N) -> (B, N, dim)
        return self.project_out(self.fsq.indices_to_codes(indices))


class SpeakerEncoder(nn.Module):
    def __init__(self, cfg: BiCodecConfig):
        super().__init__()
        self.speaker_encoder = EcapaTdnn(cfg.speaker_input_dim, cfg.speaker_out_dim)
        self.perceiver_sampler = PerceiverResampler(cfg.speaker_latent_dim, dim_context=512 * 3,
                                                    num_latents=cfg.token_num)
        self.quantizer = ResidualFSQ(cfg.speaker_latent_dim, cfg.fsq_levels)
        self.project = nn.Linear(cfg.speaker_latent_dim * cfg.token_num, cfg.speaker_out_dim)

    def tokenize(self, mel: mx.array, taps: Taps = NO_TAPS) -> mx.array:  # (B, T, n_mels)
        latent = self.speaker_encoder.frames(mel, taps, "speaker.ecapa")
        x = taps("speaker.perceiver", self.perceiver_sampler(latent))
        return self.quantizer.encode(x)[:, None]  # (B, 1, token_num)

    def x_vector(self, mel: mx.array) -> mx.array:
        """ECAPA's utterance embedding (upstream computes it in `tokenize` and drops it)."""
        return self.speaker_encoder(mel)[0]

    def detokenize(self, global_tokens: mx.array) -> mx.array:  # (B, 1, N) -> (B, out_dim)
        zq = self.quantizer.decode(global_tokens[:, 0])  # (B, N, latent)
        return self.project(zq.transpose(0, 2, 1).reshape(zq.shape[0], -1))


class BiCodec(nn.Module):
    def __init__(self, cfg: BiCodecConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.encoder)
        self.quantizer = FactorizedVQ(cfg.latent_dim, cfg.codebook_size, cfg.codebook_dim)
        self.speaker_encoder = SpeakerEncoder(cfg)
        self.prenet = Prenet(cfg.prenet)
        self.decoder = WaveGenerator(cfg)
        m = cfg.mel
        self.mel_fb = mx.zeros((m["n_fft"] // 2 + 1, m["num_mels"]))  # the checkpoint's
        self._window = mx.array(hann_window(m["win_length"]))

    def mel(self, ref_wav: mx.array) -> mx.array:  # (B, N) -> (B, frames, n_mels)
        m = self.cfg.mel
        if ref_wav.shape[-1] <= m["n_fft"] // 2:
            raise ValueError(f"reference clip of {ref_wav.shape[-1]} samples is too short for "
                             f"the mel's reflect padding; pass at least {m['n_fft'] // 2 + 1}")
        spec = stft(ref_wav.astype(mx.float32), m["n_fft"], m["hop_length"], m["win_length"],
                    self._window)
        return mx.abs(spec) @ self.mel_fb

    def tokenize(self, feat: mx.array, ref_wav: mx.array, taps: Taps = NO_TAPS):
        """features (B, T, C), reference clip (B, N) -> (semantic (B, T), global (B, 1, 32))."""
        z = self.encoder(feat, taps)
        z_e = taps("quantizer.in_project", self.quantizer.in_proj(z))
        semantic = taps("semantic_tokens", nearest_code(z_e, self.quantizer.codebook.weight,
                                                        "descript"))
        mel = taps("mel", self.mel(ref_wav))
        glob = taps("global_tokens", self.speaker_encoder.tokenize(mel, taps))
        return semantic, glob

    def check_tokens(self, semantic: mx.array, global_tokens: mx.array) -> None:
        n = self.cfg.token_num
        if global_tokens.ndim != 3 or global_tokens.shape[1:] != (1, n):
            raise ValueError(f"global tokens must be (batch, 1, {n}), got {global_tokens.shape}")
        if semantic.ndim != 2 or semantic.shape[1] == 0:
            raise ValueError(f"semantic tokens must be (batch, frames >= 1), got {semantic.shape}")
        lo, hi = mx.min(semantic).item(), mx.max(semantic).item()
        if lo < 0 or hi >= self.cfg.codebook_size:
            raise ValueError(f"semantic tokens span [{lo}, {hi}]; valid 0..{self.cfg.codebook_size - 1}")

    def detokenize(self, semantic: mx.array, global_tokens: mx.array,
                   taps: Taps = NO_TAPS) -> mx.array:
        """semantic (B, T), global (B, 1, 32) -> audio (B, T * hop)."""
        self.check_tokens(semantic, global_tokens)
        z_q = taps("quantizer.detokenize", self.quantizer.decode(semantic))
        d = taps("speaker.d_vector", self.speaker_encoder.detokenize(global_tokens))
        x = self.prenet(z_q, d, taps)
        return taps("audio", self.decoder(x + d[:, None], taps))


def wav2vec2_features(w2v, input_values: mx.array, layers: tuple[int, ...] = HIDDEN_LAYERS,
                      taps: Taps = NO_TAPS) -> mx.array:
    """The mean of transformers' `hidden_states[k]` for k in `layers` (module docstring) of an
    MLX `wav2vec2.model.Wav2Vec2Model`; normalised audio (B, N) -> (B, T, hidden)."""
    enc = w2v.encoder
    n = len(enc.layers)
    if max(layers) > n:
        raise ValueError(f"hidden state {max(layers)} requested from a {n}-layer wav2vec2")
    x = w2v.feature_projection(w2v.feature_extractor(input_values))
    x = x + enc.pos_conv_embed(x)
    if not enc.stable:
        x = enc.layer_norm(x)
    states = {0: x}
    for i, layer in enumerate(enc.layers[: max(layers)]):
        x = layer(x)
        states[i + 1] = x
    if enc.stable and max(layers) == n:
        states[n] = enc.layer_norm(x)
    total = states[layers[0]]
    for k in layers[1:]:
        total = total + states[k]
    return taps("wav2vec2.features", total / len(layers))


def volume_normalize(audio: np.ndarray, coeff: float = 0.2) -> np.ndarray:
    """spark-tts-lib `utils.audio.audio_volume_normalize` (numpy, float64 as upstream's
    soundfile-loaded audio): raise quiet audio to a 0.1 peak, then scale by coeff / the mean of
    the 90th-99th percentile magnitudes above 0.01 (clipped to [0.1, 10]), peak <= 1."""
    audio = np.asarray(audio, np.float64)
    temp = np.sort(np.abs(audio))
    if temp[-1] < 0.1:
        audio = audio / max(temp[-1], 1e-3) * 0.1
    temp = temp[temp > 0.01]
    n = temp.shape[0]
    if n <= 10:
        return audio
    volume = np.mean(temp[int(0.9 * n): int(0.99 * n)])
    audio = audio * np.clip(coeff / volume, 0.1, 10)
    peak = np.max(np.abs(audio))
    return audio / peak if peak > 1 else audio


def ref_clip(wav: np.ndarray, sample_rate: int, seconds: float, hop: int) -> np.ndarray:
    """`BiCodecTokenizer.get_ref_clip`: the leading `seconds` (a whole number of hops), the
    clip tiled first when shorter."""
    n = int(sample_rate * seconds) // hop * hop
    if n > len(wav):
        wav = np.tile(wav, n // len(wav) + 1)
    return wav[:n]
