"""Voxtral's front end: Whisper's 128-bin log-mel of the audio zero-padded to whole chunks.

Upstream: transformers 5.24.0 `VoxtralProcessor._retrieve_input_features` with its default
audio kwargs: `WhisperFeatureExtractor(feature_size=128)` on the clip padded to a multiple of
480000 samples (30 s; `pad_to_multiple_of`, no truncation), so the log-mel's floor (global max
- 8) is taken over the whole padded clip, then split into chunks of 3000 frames stacked along the
batch axis. Here the chunk is `2 * max_source_positions` frames (3000 for the real model; tiny
test configs use shorter chunks), and the log-mel is `mlx_impl.layers.audio.log_mel_spectrogram`
(the constants are Whisper's, `weights.whisper_audio`).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlx_impl.layers.audio import log_mel_spectrogram
from mlx_impl.voxtral.config import AudioConfig
from weights.whisper_audio import HOP_LENGTH, SAMPLE_RATE


def chunk_samples(audio_cfg: AudioConfig) -> int:
    return audio_cfg.n_frames * HOP_LENGTH


def log_mel_chunks(audio: np.ndarray, audio_cfg: AudioConfig) -> mx.array:
    """16 kHz mono float32 (N,) -> (n_chunks, n_frames, n_mels), channels-last."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"expected 16 kHz mono audio of shape (n_samples,), got {audio.shape}")
    if audio.shape[0] == 0:
        raise ValueError("audio contains no samples; pass audio with content")
    if not np.isfinite(audio).all():
        raise ValueError(f"audio has {int((~np.isfinite(audio)).sum())} NaN/inf samples; clean "
                         "or re-export it")
    size = chunk_samples(audio_cfg)
    n_chunks = -(-audio.shape[0] // size)
    padded = np.zeros(n_chunks * size, np.float32)
    padded[:audio.shape[0]] = audio
    mel = log_mel_spectrogram(mx.array(padded), n_mels=audio_cfg.num_mel_bins)
    return mel.reshape(n_chunks, audio_cfg.n_frames, audio_cfg.num_mel_bins)


__all__ = ["SAMPLE_RATE", "chunk_samples", "log_mel_chunks"]  # SAMPLE_RATE: Whisper's, 16 kHz
