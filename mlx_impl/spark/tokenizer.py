"""BiCodec's tokenizer API in MLX (spark-tts-lib 0.2.1 `BiCodecTokenizer`, from raw audio, no
file): `tokenize(wav)` -> (global (1, 1, 32), semantic (1, T)); `detokenize(global, semantic)`
-> audio. Input checks name the problem and the fix."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlx_impl.spark.bicodec import ref_clip, volume_normalize, wav2vec2_features
from mlx_impl.taps import NO_TAPS, Taps
from mlx_impl.wav2vec2.features import normalize

MIN_SECONDS = 0.1  # wav2vec2 needs 400 samples for one frame; below 0.1 s nothing useful remains


class SparkCodec:
    def __init__(self, config: dict, w2v, bicodec, dtype: mx.Dtype = mx.float32):
        for k in ("sample_rate", "ref_segment_duration", "latent_hop_length", "volume_normalize"):
            if k not in config:
                raise ValueError(f"the model folder's config.yaml lacks {k!r}")
        self.config, self.w2v, self.bicodec, self.dtype = config, w2v, bicodec, dtype
        self.sample_rate = int(config["sample_rate"])

    def prepare(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw mono audio at the model rate -> (volume-normalised audio, reference clip)."""
        wav = np.asarray(wav)
        if wav.ndim != 1:
            raise ValueError(f"expected mono audio (samples,), got shape {wav.shape}; mix down "
                             "first")
        if wav.size < MIN_SECONDS * self.sample_rate:
            raise ValueError(f"reference clip of {wav.size} samples "
                             f"({wav.size / self.sample_rate:.3f} s) is too short; pass at least "
                             f"{MIN_SECONDS} s at {self.sample_rate} Hz")
        if not np.all(np.isfinite(wav)):
            raise ValueError("reference clip has NaN/inf samples; clean or re-export it")
        if np.max(np.abs(wav)) == 0:
            raise ValueError("reference clip is silent (all zeros); pass speech")
        if self.config["volume_normalize"]:
            wav = volume_normalize(wav)
        c = self.config
        return wav, ref_clip(wav, self.sample_rate, c["ref_segment_duration"],
                             c["latent_hop_length"])

    def tokenize(self, wav: np.ndarray, taps: Taps = NO_TAPS) -> tuple[mx.array, mx.array]:
        wav, ref = self.prepare(wav)
        x = mx.array(normalize(wav.astype(np.float32))[None]).astype(self.dtype)
        feat = wav2vec2_features(self.w2v, x, taps=taps)
        semantic, glob = self.bicodec.tokenize(feat, mx.array(ref.astype(np.float32)[None]), taps)
        return glob, semantic

    def detokenize(self, global_tokens, semantic_tokens, taps: Taps = NO_TAPS) -> mx.array:
        g = mx.array(np.asarray(global_tokens, np.int32).reshape(1, 1, -1))
        s = mx.array(np.asarray(semantic_tokens, np.int32).reshape(1, -1))
        return self.bicodec.detokenize(s, g, taps)[0]
