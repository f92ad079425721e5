"""OuteTTS 1.0 speaker profiles from a reference clip (outetts `create_speaker`, interface v3).

Upstream (outetts 0.4.4, read, not copied): `version/v3/audio_processor.py`
`AudioProcessor.create_speaker_from_whisper` / `create_speaker_from_dict`, `Features`,
`calculate_pitch`; `dac/interface.py` `DacInterface.encode` and `process_audio_tensor`;
`utils/preprocessing.py` `text_normalizations`. A profile is

    {"text": transcript, "words": [{"word", "duration", "c1", "c2", "features"}, ...],
     "global_features": {"energy", "spectral_centroid", "pitch"}}

built from the clip at 24 kHz and its word timings:
1. codes: the whole clip loudness-normalised (ITU-R BS.1770-4 integrated loudness as pyloudnorm
   0.1 `Meter.integrated_loudness` measures it, K-weighting filters from the RBJ cookbook, 400 ms
   blocks with 75 % overlap, gates at -70 LUFS and -10 LU; gain to -18 LUFS, then a peak limit
   at -1 dBFS), cut into 5 s windows, each right-padded to a hop multiple and DAC-encoded; the
   windows' codes concatenated -> c1 = codebook 0, c2 = codebook 1, 75 frames per second;
2. words: word i spans code frames [start, end): the first word starts 20 frames before its
   Whisper start (not before 0), each next word where the previous ended, a word ends at
   int(end * 75) and the last word 20 frames after its end (not past the codes);
   duration = round(frames / 75, 2); its features come from the clip (not normalised) between
   its Whisper start and end times;
3. features (0..100 integers, `round(value * 100)`): energy = RMS; spectral centroid = the
   magnitude-weighted mean frequency of the whole segment's rfft / (sr / 2); pitch = the mean
   over 400-sample frames (hop 160, Hann window) of an autocorrelation pitch (peak between 75
   and 600 Hz, parabolic interpolation, voicing threshold 0.3, clamped to 75..600 Hz), scaled
   (pitch - 75) / 525 and clamped to 0..1. An empty segment has features 0.

Word timings come from our Whisper (`mlx_impl.tts.reference_audio.load_reference(...,
word_timestamps=True)`; upstream runs openai-whisper "turbo" with word_timestamps=True; the
transcript is Whisper's, or the given text aligned to the clip). The text is normalised as
upstream's `text_normalizations` (whitespace, ellipsis, curly quotes, dashes, control chars).

Deviations: numpy float64 for loudness and features (upstream: float32 tensors and pyloudnorm
on float32 arrays); a clip too quiet to measure (every block below -70 LUFS) is an error
(upstream divides by zero and encodes NaN audio); a word segment shorter than one pitch frame
gets pitch 0 (upstream's `unfold` raises); clip length limits (> 20 s refused, as upstream) are
checked by `load_reference(max_seconds=MAX_SECONDS)`.
"""

from __future__ import annotations

import math
import re

import mlx.core as mx
import numpy as np
from scipy.signal import lfilter

SAMPLE_RATE = 24000  # the DAC's rate; the clip must be at this rate
FRAMES_PER_SECOND = 75  # DAC frames (hop 320 at 24 kHz); upstream's `tps`
MAX_SECONDS = 20.0  # upstream refuses longer clips (and warns above 15 s)
MIN_SECONDS = 1.0
EDGE_FRAMES = 20  # upstream's max_extension: frames added before the first / after the last word
WINDOW_SECONDS = 5.0  # DacInterface.encode's win_duration
TARGET_LUFS, PEAK_DB, BLOCK_SECONDS = -18.0, -1.0, 0.4  # process_audio_tensor's defaults


# -- loudness (BS.1770-4, pyloudnorm's measurement) --------------------------------------------

def _rbj(kind: str, gain_db: float, q: float, fc: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of an RBJ-cookbook biquad, normalised by a0."""
    a_ = 10 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * fc / sr
    cos, alpha = np.cos(w0), np.sin(w0) / (2.0 * q)
    if kind == "high_shelf":
        s = 2 * np.sqrt(a_) * alpha
        b = [a_ * ((a_ + 1) + (a_ - 1) * cos + s), -2 * a_ * ((a_ - 1) + (a_ + 1) * cos),
             a_ * ((a_ + 1) + (a_ - 1) * cos - s)]
        a = [(a_ + 1) - (a_ - 1) * cos + s, 2 * ((a_ - 1) - (a_ + 1) * cos),
             (a_ + 1) - (a_ - 1) * cos - s]
    else:  # high_pass
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    return np.array(b) / a[0], np.array(a) / a[0]


def k_weighting(sr: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two K-weighting stages: a +4 dB high shelf at 1500 Hz, a high pass at 38 Hz."""
    return [_rbj("high_shelf", 4.0, 1 / np.sqrt(2), 1500.0, sr),
            _rbj("high_pass", 0.0, 0.5, 38.0, sr)]


def integrated_loudness(x: np.ndarray, sr: int, block: float = BLOCK_SECONDS,
                        overlap: float = 0.75) -> float:
    """Gated integrated loudness (LUFS) of mono audio of at least one block."""
    y = np.asarray(x, np.float64)
    if y.shape[0] < block * sr:
        raise ValueError(f"loudness needs at least {block} s of audio, got {y.shape[0] / sr} s")
    for b, a in k_weighting(sr):
        y = lfilter(b, a, y)
    step = 1.0 - overlap
    n_blocks = int(np.round((y.shape[0] / sr - block) / (block * step))) + 1
    z = np.array([np.sum(np.square(y[int(block * (j * step) * sr):
                                       int(block * (j * step + 1) * sr)])) / (block * sr)
                  for j in range(n_blocks)])  # mean square per block (the last may be short)
    with np.errstate(divide="ignore"):
        blocks = -0.691 + 10.0 * np.log10(z)
    gated = blocks >= -70.0
    if not gated.any():
        return -math.inf
    relative = -0.691 + 10.0 * np.log10(z[gated].mean()) - 10.0
    gated = (blocks > relative) & (blocks > -70.0)
    mean = z[gated].mean() if gated.any() else 0.0
    with np.errstate(divide="ignore"):
        return float(-0.691 + 10.0 * np.log10(mean))


def normalize_loudness(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """`process_audio_tensor`: gain to -18 LUFS, then a peak limit at -1 dBFS (mono, float64);
    a clip shorter than one block is measured zero-padded to it."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    padded = np.pad(x, (0, max(0, int(BLOCK_SECONDS * sr) - n)))
    lufs = integrated_loudness(padded, sr)
    if not np.isfinite(lufs):
        raise ValueError("the reference clip is too quiet to measure its loudness (every 400 ms "
                         "block below -70 LUFS); pass a louder recording of the voice")
    out = padded * 10.0 ** ((TARGET_LUFS - lufs) / 20.0)
    peak, limit = np.max(np.abs(out)), 10.0 ** (PEAK_DB / 20.0)
    if peak > limit:
        out = out * (limit / peak)
    return out[:n]


# -- features ------------------------------------------------------------------------------------

def _pitch(x: np.ndarray, sr: int, fmin: float = 75.0, fmax: float = 600.0, frame: int = 400,
           hop: int = 160, threshold: float = 0.3) -> float:
    """Mean autocorrelation pitch, scaled to 0..1 (module docstring, step 3)."""
    x = np.pad(x, (0, (frame - x.shape[0] % hop) % hop))
    if x.shape[0] < frame:
        return 0.0  # DEVIATION: upstream's unfold raises on a segment shorter than one frame
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]  # (F, frame)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame)  # periodic Hann
    spec = np.fft.rfft(frames * window, n=2 * frame, axis=1)
    ac = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, axis=1)[:, :frame]
    lo, hi = max(1, int(sr / fmax)), min(frame, int(sr / fmin))
    peak_idx = np.argmax(ac[:, lo:hi], axis=1) + lo
    rows = np.arange(frames.shape[0])
    peak_val = ac[rows, peak_idx]
    idx = np.clip(peak_idx, 1, frame - 2)
    a, b, g = ac[rows, idx - 1], ac[rows, idx], ac[rows, idx + 1]
    delta = 0.5 * (a - g) / (a - 2 * b + g + 1e-8)
    delta = np.where((peak_idx > 0) & (peak_idx < frame - 1), delta, 0.0)
    period = (peak_idx + delta) / sr
    with np.errstate(divide="ignore"):
        pitch = np.where(period > 0, 1.0 / np.where(period > 0, period, 1.0), 0.0)
    pitch = np.where(peak_val / (ac[:, 0] + 1e-8) > threshold, pitch, 0.0)
    pitch = np.clip(pitch, fmin, fmax)
    return float(np.clip((pitch.mean() - fmin) / (fmax - fmin), 0.0, 1.0))


def features(x: np.ndarray, sr: int = SAMPLE_RATE) -> dict:
    """{"energy", "spectral_centroid", "pitch"} of a mono segment, each 0..100."""
    x = np.asarray(x, np.float64)
    if x.size == 0 or not np.isfinite(x).all():
        return {"energy": 0, "spectral_centroid": 0, "pitch": 0}
    spec = np.abs(np.fft.rfft(x))
    freqs = np.linspace(0, sr / 2, spec.shape[0])
    centroid = np.sum(freqs * spec) / (np.sum(spec) + 1e-10)
    values = {"energy": float(np.sqrt(np.mean(x ** 2))),
              "spectral_centroid": float(centroid / (sr / 2)), "pitch": _pitch(x, sr)}
    return {k: round(v * 100) for k, v in values.items()}


# -- codes, text, profile ----------------------------------------------------------------------

def encode_codes(dac, audio: np.ndarray) -> np.ndarray:
    """`DacInterface.encode`: loudness-normalised clip, 5 s windows, each right-padded to a hop
    multiple -> DAC codes (2, T) int64."""
    if dac.sample_rate != SAMPLE_RATE:
        raise ValueError(f"OuteTTS's DAC runs at {SAMPLE_RATE} Hz, this one at {dac.sample_rate}")
    x = normalize_loudness(audio).astype(np.float32)
    hop = dac.cfg.hop_length
    window = int(math.ceil(int(WINDOW_SECONDS * SAMPLE_RATE) / hop) * hop)
    out = []
    for i in range(0, x.shape[0], window):
        chunk = x[i:i + window]
        chunk = np.pad(chunk, (0, -chunk.shape[0] % hop))
        out.append(np.array(dac.encode(mx.array(chunk[None]), SAMPLE_RATE).codes[0]))
    return np.concatenate(out, axis=-1).astype(np.int64)


def normalize_text(text: str) -> str:
    """outetts `utils/preprocessing.text_normalizations` (module docstring)."""
    text = re.sub(r"\s+", " ", text).replace("…", "...").strip()
    for pattern, to in ((r"[“”]", '"'), (r"[‘’]", "'"), (r"[–—]", "-"),
                        (r"[\x00-\x1F\x7F-\x9F]", "")):
        text = re.sub(pattern, to, text)
    return text


def profile_from_codes(audio: np.ndarray, codes: np.ndarray, text: str, words) -> dict:
    """The profile of a 24 kHz clip (N,), its DAC codes (2, T) and word timings (objects or
    dicts with word/start/end in seconds): steps 2-3 of the module docstring."""
    if not words:
        raise ValueError("the reference clip has no word timings; transcribe it with word "
                         "timestamps (load_reference(..., word_timestamps=True))")
    audio = np.asarray(audio, np.float64)
    c1, c2 = codes[0].tolist(), codes[1].tolist()
    sr, tps = SAMPLE_RATE, FRAMES_PER_SECOND
    out, start = [], None
    for i, w in enumerate(words):
        word, w0, w1 = (w["word"], w["start"], w["end"]) if isinstance(w, dict) \
            else (w.word, w.start, w.end)
        w0, w1 = float(w0), float(w1)
        if start is None:
            start = max(0, int(w0 * tps) - EDGE_FRAMES)
        end = min(len(c1), int(w1 * tps) + EDGE_FRAMES) if i == len(words) - 1 else int(w1 * tps)
        span = c1[start:end]
        out.append({"word": word.strip(), "duration": round(len(span) / tps, 2), "c1": span,
                    "c2": c2[start:end], "features": features(audio[int(w0 * sr):int(w1 * sr)])})
        start = end
    return {"text": normalize_text(text), "words": out, "global_features": features(audio)}


def create_speaker(dac, clip) -> dict:
    """The speaker profile of a `mlx_impl.tts.reference_audio.ReferenceClip` at 24 kHz with
    word timings (module docstring)."""
    if clip.sample_rate != SAMPLE_RATE:
        raise ValueError(f"the reference clip is at {clip.sample_rate} Hz; load it with "
                         f"load_reference(..., target_rate={SAMPLE_RATE})")
    return profile_from_codes(clip.audio, encode_codes(dac, clip.audio), clip.text, clip.words)
