"""S3 speech tokenizer (CosyVoice) v1 and v2 in MLX: 16 kHz speech -> discrete speech tokens.

Upstream: s3tokenizer 0.3.0 (`s3tokenizer/model.py` `S3Tokenizer`, `model_v2.py` `S3TokenizerV2`,
`utils.py` `log_mel_spectrogram`, `make_non_pad_mask`, `mask_to_bias`, `merge_tokenized_segments`).
Module attribute names equal upstream's state-dict keys except `quantizer._codebook.*`, which is
`quantizer.codebook.*` here (MLX keeps `_`-prefixed attributes out of the parameter tree);
`convert.py` renames it.

- Front end: Whisper's 128-bin log-mel (`mlx_impl.layers.audio.log_mel_spectrogram`: the same
  STFT, Slaney filterbank, log10 clamp at max - 8 and (x + 4) / 4 as upstream's copy).
- Encoder: conv1 (k3, stride 1 for v1, 2 for v1_25hz/v2) -> GELU -> conv2 (k3, stride 2) ->
  GELU, then pre-norm blocks. v1 adds Whisper sinusoids (a stored buffer, at most 1500
  positions) and uses plain multi-head attention (`mlx_impl.layers.attention`); v2 has no
  positions: its attention rotates q and k (RoPE, rotate-half layout, 64 channels, base 10000,
  at most 2048 positions; `mlx_impl.layers.rope`) and adds an FSMN memory of the values
  (`mlx_impl.layers.fsmn`) to its output. No final layer norm in either.
- Quantizer: v1 L2-normalises each frame and takes the nearest of 4096 codewords
  (`mlx_impl.layers.quantize.EuclideanCodebook`, upstream's distance expression); v2 is FSQ
  (`mlx_impl.layers.fsq`): 8 projected values rounded to 3 levels, 6561 codes.
- Padding masks as upstream: frames past each length are zeroed before each conv, masked out of
  attention with an additive -1e10, and zeroed around the FSMN. With `lengths=None` (one
  unpadded input) the masks are all ones upstream, and are skipped here (exactly neutral).
- Long audio (> 3000 mel frames = 30 s), as upstream's `_quantize_mixed_batch`: 30 s windows
  every 26 s, each zero-padded to 3000 frames and encoded with its length; tokens of the 4 s
  overlaps are halved (2 s x token rate dropped on each side of each seam).

Deviation: upstream computes `h = x @ W^T + b` in torch; ours in MLX (OpenBLAS on the CPU), so
float32 rounding differs by ulps and a code can differ where a distance or a rounded value is
within that rounding of a tie (see parity/models/s3tokenizer.py for the measured margins).
Taps: pass `taps=Taps()` (mlx_impl/taps.py) to record activations under the names of
parity/models/s3tokenizer.py.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_impl.layers.activations import gelu, sum_last
from mlx_impl.layers.attention import MultiHeadAttention, scaled_dot_product_attention
from mlx_impl.layers.audio import log_mel_spectrogram
from mlx_impl.layers.fsmn import FSMNBlock
from mlx_impl.layers.fsq import FSQCodebook
from mlx_impl.layers.norm import LayerNorm
from mlx_impl.layers.positions import sinusoids
from mlx_impl.layers.quantize import EuclideanCodebook
from mlx_impl.layers.rope import RotaryEmbedding
from mlx_impl.layers.spectral import mel_filters
from mlx_impl.s3tokenizer.config import (FSMN_KERNEL, ROPE_HEAD_DIM, ROPE_MAX_POSITIONS,
                                         S3TokenizerConfig)
from mlx_impl.taps import NO_TAPS, Taps
from weights.whisper_audio import HOP_LENGTH, N_FFT, SAMPLE_RATE


MAX_FRAMES = 3000  # upstream: inputs longer than 30 s of mel frames go through windows
WINDOW_FRAMES, OVERLAP_FRAMES = 3000, 400  # 30 s windows, 4 s overlap (26 s stride)
OVERLAP_SECONDS = 4
MASK_BIAS = -1.0e10  # upstream's mask_to_bias


def conv_length(n, stride: int):
    """Output length of upstream's k3/pad1 convs: (n + 2 - 2 - 1) // stride + 1."""
    return (n - 1) // stride + 1


class FSMNMultiHeadAttention(MultiHeadAttention):
    """v2 attention: RoPE on q and k, plus the FSMN memory of v added to the output."""

    def __init__(self, n_state: int, n_head: int, rope: RotaryEmbedding):
        super().__init__(n_state, n_head)
        self.fsmn_block = FSMNBlock(n_state, FSMN_KERNEL)
        self.rope = rope  # shared table, not a parameter

    def __call__(self, x: mx.array, mask: mx.array | None = None,
                 mask_pad: mx.array | None = None) -> mx.array:
        """x (B, T, C); mask additive (B, 1, 1, T) or None; mask_pad (B, T, 1) or None."""
        v = self.value(x)
        q = self.rope(self.split_heads(self.query(x)))  # (B, H, T, D)
        k = self.rope(self.split_heads(self.key(x)))
        memory = self.fsmn_block(v, mask_pad)
        b, h, t, d = q.shape
        scale = d ** -0.25
        # (q d**-0.25) @ (k d**-0.25)^T as upstream: k pre-scaled, q scaled in the shared core
        out = scaled_dot_product_attention(q, k * scale, self.split_heads(v), scale, mask)
        out = out.transpose(0, 2, 1, 3).reshape(b, t, h * d)
        return self.out(out) + memory


class ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int, rope: RotaryEmbedding | None):
        super().__init__()
        self.attn = (MultiHeadAttention(n_state, n_head) if rope is None
                     else FSMNMultiHeadAttention(n_state, n_head, rope))
        self.attn_ln = LayerNorm(n_state)
        # a list so the keys are upstream's `mlp.0` / `mlp.2`; index 1 is its parameter-free GELU
        self.mlp = [nn.Linear(n_state, 4 * n_state), nn.Identity(), nn.Linear(4 * n_state, n_state)]
        self.mlp_ln = LayerNorm(n_state)

    def __call__(self, x, mask=None, mask_pad=None, taps: Taps = NO_TAPS, name: str = ""):
        if isinstance(self.attn, FSMNMultiHeadAttention):
            a = self.attn(self.attn_ln(x), mask=mask, mask_pad=mask_pad)
        else:
            a, _ = self.attn(self.attn_ln(x), mask=mask)
        x = x + a
        m = self.mlp[2](gelu(self.mlp[0](self.mlp_ln(x))))
        x = x + m
        taps(f"{name}.attn", a)
        taps(f"{name}.mlp", m)
        x = taps(name, x)
        return x


def _valid(lengths: mx.array, n: int) -> mx.array:  # (B,) -> (B, n, 1) float32, 1 = valid frame
    return (mx.arange(n)[None, :] < lengths[:, None]).astype(mx.float32)[..., None]


class AudioEncoder(nn.Module):
    def __init__(self, cfg: S3TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.n_audio_state
        # channels-last: input (B, T, n_mels); kernels (out, k, in)
        self.conv1 = nn.Conv1d(cfg.n_mels, c, kernel_size=3, stride=cfg.conv1_stride, padding=1)
        self.conv2 = nn.Conv1d(c, c, kernel_size=3, stride=2, padding=1)
        rope = None
        if cfg.version == 1:
            self.positional_embedding = mx.array(sinusoids(cfg.n_audio_ctx, c))
        else:
            rope = RotaryEmbedding(ROPE_HEAD_DIM, 10000.0)
        self.blocks = [ResidualAttentionBlock(c, cfg.n_audio_head, rope)
                       for _ in range(cfg.n_audio_layer)]

    @property
    def max_tokens(self) -> int:
        return self.cfg.n_audio_ctx if self.cfg.version == 1 else ROPE_MAX_POSITIONS

    def __call__(self, mel: mx.array, lengths: mx.array | None = None,
                 taps: Taps = NO_TAPS) -> tuple[mx.array, mx.array]:
        """mel (B, T, n_mels), lengths (B,) valid frames or None (all T) ->
        (hidden (B, T', C), token lengths (B,) int32)."""
        b, t, n_mels = mel.shape
        if n_mels != self.cfg.n_mels:
            raise ValueError(f"expected a log-mel with {self.cfg.n_mels} bins (B, frames, "
                             f"{self.cfg.n_mels}), got {tuple(mel.shape)}")
        t_out = conv_length(conv_length(t, self.cfg.conv1_stride), 2)
        if t_out > self.max_tokens:
            raise ValueError(f"{t} mel frames give {t_out} encoder frames, more than the "
                             f"{self.max_tokens} positions of this model; use S3Tokenizer.quantize,"
                             f" which splits inputs over {MAX_FRAMES} frames into windows")
        dtype = self.conv1.weight.dtype
        x = mel.astype(dtype)
        if lengths is None:
            lengths = mx.full((b,), t, dtype=mx.int32)
            masked = False
        else:
            lengths = lengths.astype(mx.int32)
            masked = True
        if masked:
            x = x * _valid(lengths, t).astype(dtype)
        x = self.conv1(x)
        x = taps("encoder.conv1", x)
        x = gelu(x)
        lengths = conv_length(lengths, self.cfg.conv1_stride)
        if masked:
            x = x * _valid(lengths, x.shape[1]).astype(dtype)
        x = self.conv2(x)
        x = taps("encoder.conv2", x)
        x = gelu(x)
        lengths = conv_length(lengths, 2)
        if self.cfg.version == 1:
            x = x + self.positional_embedding[: x.shape[1]].astype(dtype)
        x = taps("encoder.embed", x)
        mask = mask_pad = None
        if masked:
            mask_pad = _valid(lengths, x.shape[1]).astype(dtype)  # (B, T', 1)
            mask = ((1.0 - mask_pad) * MASK_BIAS).transpose(0, 2, 1)[:, None]  # (B, 1, 1, T')
        for i, block in enumerate(self.blocks):
            x = block(x, mask, mask_pad, taps=taps, name=f"encoder.blocks.{i}")
        return x, lengths


class VQQuantizer(nn.Module):
    """v1: nearest codeword of the L2-normalised frame (F.normalize, eps 1e-12)."""

    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        self.codebook = EuclideanCodebook(codebook_size, dim)

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:  # (B, T, C) -> (B, T) int32
        x = x.astype(mx.float32)
        x = x / mx.maximum(mx.sqrt(sum_last(x * x)), 1e-12)
        x = taps("quantizer.normalized", x)
        return self.codebook.encode(x)


class FSQQuantizer(nn.Module):
    """v2: finite scalar quantization of 8 projected values (3**8 codes)."""

    def __init__(self, dim: int):
        super().__init__()
        self.codebook = FSQCodebook(dim, n_dims=8, level=3)

    def __call__(self, x: mx.array, taps: Taps = NO_TAPS) -> mx.array:  # (B, T, C) -> (B, T) int32
        # lazy: with NO_TAPS the projection is built but never evaluated
        taps("quantizer.project_down", self.codebook.project_down(x).astype(mx.float32))
        return self.codebook.encode(x)


def check_audio(audio, sample_rate: int) -> mx.array:
    """16 kHz mono float audio (n_samples,) as an fp32 mx.array, or a clear error."""
    audio = mx.array(audio) if isinstance(audio, np.ndarray) else audio
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"expected {SAMPLE_RATE} Hz audio, got {sample_rate} Hz; resample to "
                         f"16 kHz first (the S3 tokenizer's log-mel is defined at 16 kHz)")
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n_samples,), got shape "
                         f"{tuple(audio.shape)}; average or pick a channel first")
    if not mx.issubdtype(audio.dtype, mx.floating):
        raise ValueError(f"expected float audio in [-1, 1], got {audio.dtype}; convert "
                         f"integer PCM with audio / 32768")
    if audio.shape[0] <= N_FFT // 2:
        raise ValueError(f"audio has {audio.shape[0]} samples; the S3 tokenizer needs more "
                         f"than {N_FFT // 2} (its STFT reflect-pads {N_FFT // 2} samples), i.e. "
                         f"at least one {HOP_LENGTH}-sample frame of 16 kHz audio"
                         if audio.shape[0] else
                         "audio has no samples; pass at least 201 samples of 16 kHz speech")
    return audio.astype(mx.float32)


def merge_tokenized_segments(segments: list[list[int]], overlap: int, token_rate: int) -> list[int]:
    """Upstream's merge: drop (overlap // 2) * token_rate tokens at each inner seam side."""
    cut = (overlap // 2) * token_rate
    out: list[int] = []
    for i, tokens in enumerate(segments):
        left = 0 if i == 0 else cut
        right = -cut if i != len(segments) - 1 else len(tokens)
        out.extend(tokens[left:right])
    return out


class S3Tokenizer(nn.Module):
    def __init__(self, cfg: S3TokenizerConfig, dtype=mx.float32):
        super().__init__()
        self.cfg = cfg
        self.encoder = AudioEncoder(cfg)
        self.quantizer = (VQQuantizer(cfg.n_audio_state, cfg.n_codebook_size) if cfg.version == 1
                          else FSQQuantizer(cfg.n_audio_state))
        self._filters = mx.array(mel_filters(SAMPLE_RATE, N_FFT, cfg.n_mels))
        if dtype != mx.float32:
            self.set_dtype(dtype)

    def log_mel(self, audio, sample_rate: int = SAMPLE_RATE) -> mx.array:
        """(n_samples,) 16 kHz -> (n_samples // 160, n_mels), upstream's log_mel_spectrogram."""
        return log_mel_spectrogram(check_audio(audio, sample_rate), self.cfg.n_mels,
                                   filters=self._filters)

    def encode(self, mel: mx.array, lengths: mx.array | None = None,
               taps: Taps = NO_TAPS) -> tuple[mx.array, mx.array]:
        """One pass (<= the model's positions): mel (B, T, n_mels) -> codes (B, T') int32 and
        their valid lengths (B,)."""
        hidden, n = self.encoder(mel, lengths, taps=taps)
        codes = self.quantizer(hidden, taps=taps)
        codes = taps("quantizer.codes", codes)
        return codes, n

    def quantize(self, mel: mx.array, lengths: list[int] | None = None,
                 taps: Taps = NO_TAPS) -> list[mx.array]:
        """mel (B, T, n_mels) with valid lengths (all T when None) -> one (n_tokens,) int32
        array of codes per item. Inputs up to 3000 frames go in one pass; longer ones through
        upstream's 30 s windows (taps are then not recorded)."""
        b, t, _ = mel.shape
        lengths = [t] * b if lengths is None else [int(n) for n in lengths]
        if len(lengths) != b or min(lengths) < 1 or max(lengths) > t:
            raise ValueError(f"lengths {lengths} do not fit a mel batch of shape {tuple(mel.shape)}")
        if max(lengths) <= MAX_FRAMES:
            full = all(n == t for n in lengths)
            codes, n = self.encode(mel, None if full else mx.array(lengths), taps=taps)
            return [codes[i, : int(n[i])] for i in range(b)]
        # upstream: every item becomes one or more 3000-frame windows, all encoded as one batch
        segments, owner = [], []
        for i, n in enumerate(lengths):
            starts = [0] if n <= MAX_FRAMES else range(0, n, WINDOW_FRAMES - OVERLAP_FRAMES)
            for s in starts:
                segments.append((i, s, min(s + WINDOW_FRAMES, n)))
            owner.append(n > MAX_FRAMES)
        per_item: dict[int, list[list[int]]] = {i: [] for i in range(b)}
        for k in range(0, len(segments), 8):  # bounded memory: 8 windows per pass
            chunk = segments[k:k + 8]
            batch = mx.stack([mx.pad(mel[i, s:e], [(0, WINDOW_FRAMES - (e - s)), (0, 0)])
                              for i, s, e in chunk])
            codes, n = self.encode(batch, mx.array([e - s for _, s, e in chunk]))
            codes, n = np.array(codes), np.array(n)
            for j, (i, _, _) in enumerate(chunk):
                per_item[i].append(codes[j, : n[j]].tolist())
        out = []
        for i in range(b):
            segs = per_item[i]
            tokens = (merge_tokenized_segments(segs, OVERLAP_SECONDS, self.cfg.token_rate)
                      if owner[i] else segs[0])
            out.append(mx.array(np.asarray(tokens, dtype=np.int32)))
        return out

    def tokenize(self, audio, sample_rate: int = SAMPLE_RATE, taps: Taps = NO_TAPS) -> mx.array:
        """16 kHz mono speech (n_samples,) -> speech tokens (n_tokens,) int32."""
        mel = self.log_mel(audio, sample_rate)
        mel = taps("mel", mel)
        return self.quantize(mel[None], taps=taps)[0]
