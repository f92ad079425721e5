"""Reference adapter for OuteTTS 1.0: transformers `LlamaForCausalLM` (seeded) + transformers
`DacModel` (the reference DAC of reference/dac.py) with 2 codebooks.

Upstream: transformers 5.24.0, torch 2.13.0, CPU, float32, eager attention. The `outetts`
package (0.4.4) itself is not imported: it pins transformers 4.52 and imports llama.cpp / vLLM
/ exl2 backends, `dac` (descript) and the hub at import time; its prompt, token and sampler code
was read instead (mlx_impl/outetts/tokens.py and generate.py cite the files). Its sampler is
transformers' processors with one patch, the repetition penalty over the last 64 ids
(`models/hf_model.py` `RepetitionPenaltyLogitsProcessorPatch`): here transformers'
`RepetitionPenaltyLogitsProcessor` applied to the last 64 ids of the history, which is the same
operation (each id of the window penalised once, from the unpenalised score).

Weights: no checkpoint is downloaded. `build_model(preset, seed)` writes a model folder `lm/`
(`reference.orpheus.write_lm`: transformers' init under `torch.manual_seed(seed)`, RMSNorm gains
1 + N(0, 0.1^2)) + `dac/` (`reference.dac.build_random`: its documented re-draws), atomically
into a cache folder outside the repository keyed by (config, seed, init, versions).
`mlx_impl.outetts.load.load_tts` reads the same folder.

Tokens: both sides are fed ids (`mlx_impl.outetts.tokens.prompt_ids`, the offline TEST token
layout; OuteTTS's tokenizer comes only from the hub).

Generation: `reference.orpheus.generate_loop` (the manual KV-cached loop with transformers'
processors and injected Gumbel noise) with `CodeGrammar`, the port's documented c1/c2 mask
(mlx_impl/outetts/generate.py): at even steps after the prompt only c1_0..c1_1023 and eos, at
odd steps only c2_0..c2_1023. Stop: eos `<|im_end|>` (kept) or `max_tokens`.

Speaker profiles (`create_speaker`): outetts 0.4.4's own `create_speaker_from_dict` cannot be
imported here (its package imports descript `dac`, `loguru`, `pyloudnorm`, `ftfy`, `uroman`,
`MeCab` and the hub at import time, none installed; `pyloudnorm` and `dac` are not stubbable
without replacing what is being checked). Its algorithm is transcribed here in torch, step by
step as upstream writes it (`version/v3/audio_processor.py` `Features`, `calculate_pitch`,
`extract_single_pitch_value`, `create_speaker_from_dict`; `dac/interface.py` `encode` and
`process_audio_tensor`), driven by the SAME word timings as the port (our Whisper's: upstream
runs openai-whisper "turbo", not installed here) and the same 24 kHz clip (upstream resamples
with torchaudio; the port with audio_io's polyphase filter). Two stand-ins, documented:
- loudness: pyloudnorm's `Meter.integrated_loudness` + `normalize.loudness` / `peak` when
  pyloudnorm is importable, else `pyloudnorm_lufs`, a transcription of that meter (its RBJ
  K-weighting biquads through `scipy.signal.lfilter` as pyloudnorm calls it, the same block
  framing and gates in torch; torchaudio's lfilter took 8 s per 6 s clip here);
- the codec: transformers `DacModel.encode` (the reference DAC of reference/dac.py) in place of
  descript `dac.DAC.encode`, per 5 s window right-padded to a hop multiple, as upstream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from reference.checkpoints import seeded_checkpoint
from reference.dac import build_random as build_dac
from reference.orpheus import LlamaCodesReference, _generate_kwargs, load_lm, write_lm
from reference.orpheus import versions as _versions

INIT = "outetts-init-v1"  # bump when the initialisation changes (part of the cache key)

# the TEST token layout of mlx_impl/outetts/tokens.py (written again: reference/ never imports
# mlx_impl): Llama-3's 128256 ids, 16 specials (im_start, im_end, ...), c1_0.., c2_0..
TEXT_VOCAB = 128256
EOS = TEXT_VOCAB + 1  # <|im_end|>
C1_0 = TEXT_VOCAB + 16
C2_0 = C1_0 + 1025
CODEBOOK_SIZE = 1024


def versions() -> dict:
    v = _versions()
    v.pop("snac", None)
    return v


def build_model(preset: Mapping, seed: int = 0, cache: Path | None = None) -> Path:
    """The model folder (lm/ + dac/) of `preset` ({"lm": LlamaConfig dict, "dac": DacConfig
    dict}) with seeded random weights, built once and reused from the cache."""

    def write(folder: Path) -> None:
        write_lm(folder / "lm", preset["lm"], seed)
        build_dac(preset["dac"], seed).save_pretrained(folder / "dac")

    return seeded_checkpoint("outetts", preset, seed, {"init": INIT, **versions()},
                             ("lm/model.safetensors", "lm/config.json", "dac/model.safetensors",
                              "dac/config.json"), write, cache,
                             prefix=f"{preset['lm']['hidden_size']}h{preset['lm']['num_hidden_layers']}l-")


# -- speaker profiles (module docstring) ---------------------------------------------------------

TPS, EDGE_FRAMES = 75, 20  # upstream's tps and max_extension


def _biquad(kind: str, gain_db: float, q: float, fc: float, sr: int):
    a_ = 10 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * fc / sr
    c, alpha = math.cos(w0), math.sin(w0) / (2.0 * q)
    if kind == "high_shelf":
        r = 2 * math.sqrt(a_) * alpha
        b = [a_ * ((a_ + 1) + (a_ - 1) * c + r), -2 * a_ * ((a_ - 1) + (a_ + 1) * c),
             a_ * ((a_ + 1) + (a_ - 1) * c - r)]
        a = [(a_ + 1) - (a_ - 1) * c + r, 2 * ((a_ - 1) - (a_ + 1) * c), (a_ + 1) - (a_ - 1) * c - r]
    else:
        b = [(1 + c) / 2, -(1 + c), (1 + c) / 2]
        a = [1 + alpha, -2 * c, 1 - alpha]
    return torch.tensor(b, dtype=torch.float64) / a[0], torch.tensor(a, dtype=torch.float64) / a[0]


def pyloudnorm_lufs(x: np.ndarray, sr: int, block: float = 0.4, overlap: float = 0.75) -> float:
    """pyloudnorm 0.1 `Meter(sr).integrated_loudness` of mono audio (float64)."""
    from scipy.signal import lfilter

    y = np.asarray(x, np.float64)
    for kind, g, q, fc in (("high_shelf", 4.0, 1 / math.sqrt(2), 1500.0),
                           ("high_pass", 0.0, 0.5, 38.0)):
        b, a = _biquad(kind, g, q, fc, sr)
        y = lfilter(b.numpy(), a.numpy(), y)
    y = torch.from_numpy(y)
    step = 1.0 - overlap
    n_blocks = int(np.round((y.shape[0] / sr - block) / (block * step))) + 1
    z = torch.stack([torch.sum(y[int(block * (j * step) * sr):int(block * (j * step + 1) * sr)]
                               ** 2) / (block * sr) for j in range(n_blocks)])
    lj = -0.691 + 10.0 * torch.log10(z)
    keep = lj >= -70.0
    gamma_r = -0.691 + 10.0 * torch.log10(z[keep].mean()) - 10.0
    keep = (lj > gamma_r) & (lj > -70.0)
    return float(-0.691 + 10.0 * torch.log10(torch.nan_to_num(z[keep].mean())))


def normalize_loudness(audio: np.ndarray, sr: int = 24000, target: float = -18.0,
                       peak_db: float = -1.0, block: float = 0.4) -> np.ndarray:
    """outetts `process_audio_tensor` on mono audio (N,)."""
    x = np.asarray(audio, np.float64)
    n = x.shape[0]
    padded = np.pad(x, (0, max(0, int(block * sr) - n)))
    try:
        import pyloudnorm as pyln

        out = pyln.normalize.loudness(padded, pyln.Meter(sr, block_size=block)
                                      .integrated_loudness(padded), target)
        if np.max(np.abs(out)) > 10 ** (peak_db / 20):
            out = pyln.normalize.peak(out, peak_db)
    except ImportError:
        out = padded * 10.0 ** ((target - pyloudnorm_lufs(padded, sr, block)) / 20.0)
        peak = np.max(np.abs(out))
        if peak > 10 ** (peak_db / 20):
            out = out * (10.0 ** (peak_db / 20.0) / peak)
    return out[:n]


def _pitch(audio: torch.Tensor, sr: int, min_freq=75.0, max_freq=600.0, frame_length=400,
           hop_length=160, threshold=0.3) -> float:
    """`extract_single_pitch_value` (via `calculate_pitch`), as upstream's torch ops."""
    audio = audio.mean(dim=0) if audio.dim() > 1 else audio
    n = audio.shape[-1]
    audio = torch.nn.functional.pad(audio, (0, (frame_length - n % hop_length) % hop_length))
    frames = audio.unfold(0, frame_length, hop_length)
    window = torch.hann_window(frame_length, dtype=audio.dtype)
    f = torch.fft.rfft(frames * window, n=2 * frame_length, dim=1)
    ac = torch.fft.irfft(f.real.pow(2) + f.imag.pow(2), dim=1)[:, :frame_length]
    lo, hi = max(1, int(sr / max_freq)), min(frame_length, int(sr / min_freq))
    peak_values, peak_indices = torch.max(ac[:, lo:hi], dim=1)
    peak_indices = peak_indices + lo
    idx = torch.clamp(peak_indices, 1, frame_length - 2)
    rows = torch.arange(frames.shape[0])
    alpha, beta, gamma = ac[rows, idx - 1], ac[rows, idx], ac[rows, idx + 1]
    delta = 0.5 * (alpha - gamma) / (alpha - 2 * beta + gamma + 1e-8)
    delta = torch.where((peak_indices > 0) & (peak_indices < frame_length - 1), delta, 0.0)
    period = (peak_indices + delta) / sr
    pitch = torch.where(period > 0, 1.0 / period, 0.0)
    pitch = torch.where(peak_values / (ac[:, 0] + 1e-8) > threshold, pitch, 0.0)
    pitch = torch.clamp(pitch, min_freq, max_freq)
    return torch.clamp((torch.mean(pitch) - min_freq) / (max_freq - min_freq), 0.0, 1.0).item()


def features(audio: torch.Tensor, sr: int = 24000) -> dict:
    """`Features.extract_audio_features` of a (1, n) segment."""
    if audio.numel() == 0 or torch.isnan(audio).any() or torch.isinf(audio).any():
        return {"energy": 0, "spectral_centroid": 0, "pitch": 0}
    out = {"energy": float(torch.sqrt(torch.mean(audio ** 2)))}
    spec = torch.abs(torch.fft.rfft(audio))
    freqs = torch.linspace(0, sr / 2, spec.shape[-1], dtype=audio.dtype)
    out["spectral_centroid"] = float(torch.sum(freqs * spec.squeeze()) / (torch.sum(spec) + 1e-10)
                                     / (sr / 2))
    out["pitch"] = _pitch(audio, sr)
    return {k: round(v * 100) for k, v in out.items()}


@torch.no_grad()
def dac_codes(dac, audio: np.ndarray, sr: int = 24000, window_s: float = 5.0) -> np.ndarray:
    """`DacInterface.encode`: loudness-normalised, 5 s windows padded to a hop multiple ->
    (2, T) int64 codes, by a transformers `DacModel`."""
    hop = int(np.prod(dac.config.downsampling_ratios))
    x = torch.from_numpy(normalize_loudness(audio, sr).astype(np.float32))[None, None]
    n = int(math.ceil(int(window_s * sr) / hop) * hop)
    codes = []
    for i in range(0, x.shape[-1], n):
        chunk = x[..., i:i + n]
        chunk = torch.nn.functional.pad(chunk, (0, -chunk.shape[-1] % hop))
        codes.append(dac.encode(chunk).audio_codes)
    return torch.cat(codes, dim=-1)[0].numpy().astype(np.int64)


def create_speaker(dac, audio: np.ndarray, text: str, words: list[dict],
                   sr: int = 24000) -> dict:
    """outetts `create_speaker_from_dict` on a 24 kHz clip (N,) with word timings (dicts with
    word, start, end in seconds) and its transcript (already normalised by the caller, as
    upstream's `text_normalizations` output)."""
    c1, c2 = dac_codes(dac, audio, sr).tolist()
    wav = torch.from_numpy(np.asarray(audio, np.float32))[None]  # (1, N), upstream's layout
    out, start = [], None
    for idx, w in enumerate(words):
        if start is None:
            start = max(0, int(w["start"] * TPS) - EDGE_FRAMES)
        if idx == len(words) - 1:
            end = min(len(c1), int(w["end"] * TPS) + EDGE_FRAMES)
        else:
            end = int(w["end"] * TPS)
        out.append({"word": w["word"].strip(), "duration": round(len(c1[start:end]) / TPS, 2),
                    "c1": c1[start:end], "c2": c2[start:end],
                    "features": features(wav[:, int(w["start"] * sr):int(w["end"] * sr)], sr)})
        start = end
    return {"text": text, "words": out, "global_features": features(wav, sr)}


class CodeGrammar:
    """transformers-style logits processor: the port's c1/c2 mask (module docstring)."""

    def __init__(self, n_prompt: int, vocab: int):
        self.n_prompt = n_prompt
        self.allowed = torch.zeros(2, vocab, dtype=torch.bool)
        self.allowed[0, C1_0:C1_0 + CODEBOOK_SIZE] = True
        self.allowed[0, EOS] = True
        self.allowed[1, C2_0:C2_0 + CODEBOOK_SIZE] = True

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        p = (input_ids.shape[1] - self.n_prompt) % 2
        return scores.masked_fill(~self.allowed[p], -float("inf"))


def extract_codes(tokens) -> np.ndarray:
    """outetts `extract_audio_from_tokens`: c1 ids and c2 ids in order, cut to the shorter ->
    (2, T) int64 DAC codes."""
    ids = np.asarray(tokens, np.int64).reshape(-1)
    c1 = ids[(ids >= C1_0) & (ids < C1_0 + 1025)] - C1_0
    c2 = ids[(ids >= C2_0) & (ids < C2_0 + 1025)] - C2_0
    t = min(c1.size, c2.size)
    return np.stack([c1[:t], c2[:t]])


class OuteTTSReference(LlamaCodesReference):
    grammar, stop = CodeGrammar, EOS

    def __init__(self, folder: Path):
        from transformers import DacModel

        self.folder = Path(folder)
        self.model = load_lm(self.folder / "lm")
        self.dac = DacModel.from_pretrained(str(self.folder / "dac")).float().eval()
        self.config = self.model.config.to_dict()
        self.versions = versions()

    @torch.no_grad()
    def decode(self, codes: np.ndarray) -> np.ndarray:
        """DAC codes (2, T) -> (T * hop,) float32."""
        c = torch.from_numpy(np.ascontiguousarray(np.asarray(codes, np.int64)))[None]
        if c.shape[-1] == 0:
            return np.zeros(0, np.float32)
        return self.dac.decode(audio_codes=c).audio_values[0].numpy().copy()

    def speak(self, prompt, options: Mapping, seed: int = 0) -> tuple:
        """Prompt ids -> (generated ids, (N,) float32 audio, sample rate): `generate` with the
        sampling `options` (the port's `SamplingOptions` fields as a dict) and seed, then the
        c1/c2 codes (`extract_codes`) through the DAC (`benchmarks.tts`'s torch engine)."""
        tokens = self.generate(prompt, **_generate_kwargs(options), seed=seed)
        return tokens, self.decode(extract_codes(tokens)), int(self.dac.config.sampling_rate)


TTS_REFERENCE = OuteTTSReference  # what benchmarks.tts times as the torch engine (`speak`)
