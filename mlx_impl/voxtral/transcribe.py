"""Speech to text with Voxtral: greedy decoding of a transcription request, behind the common
`mlx_impl.stt.SpeechToText` interface.

Upstream counterpart: transformers 5.24.0 `VoxtralProcessor.apply_transcription_request` (prompt
and front end) + `VoxtralForConditionalGeneration.generate(do_sample=False)`. The prompt carries
no language (`tokenizer.transcription_prompt`), as a request with `language=None`; the tokens
are decoded by `tokenizer.TekkenDecoder` (see there: without a tekken.json only byte tokens read
as text).

The result is the `Transcription` shared with Whisper. One segment spans the whole clip:
`tokens` the generated ids without the end-of-sequence id, `temperature` 0.0, `avg_logprob` the
mean log-probability of the generated tokens, `no_speech_prob` 0.0 (Voxtral has no such head),
`compression_ratio` the gzip ratio of the text, as Whisper computes it.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.audio_io import load_audio
from mlx_impl.stt import Segment, Transcription
from mlx_impl.voxtral.features import SAMPLE_RATE, log_mel_chunks
from mlx_impl.voxtral.model import Voxtral
from mlx_impl.voxtral.tokenizer import TekkenDecoder, transcription_prompt

DEFAULT_MAX_NEW_TOKENS = 128


def _log_softmax_at(logits: np.ndarray, index: int) -> float:
    x = logits.astype(np.float64)
    m = x.max()
    return float(x[index] - m - np.log(np.exp(x - m).sum()))


class VoxtralTranscriber:
    """`SpeechToText` for a Voxtral model."""

    def __init__(self, model: Voxtral, tokenizer: TekkenDecoder | None = None,
                 language: str = "", max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS):
        self.model = model
        self.tokenizer = tokenizer if tokenizer is not None else TekkenDecoder()
        self.language = language  # reported only: the prompt asks for no language
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: mx.Dtype = mx.float32,
                        **kwargs) -> VoxtralTranscriber:
        from mlx_impl.voxtral.load import load

        model, _ = load(folder, dtype)
        vocab = Path(folder) / "tekken.json"
        tok = TekkenDecoder.from_tekken_json(vocab) if vocab.is_file() else None
        return cls(model, tok, **kwargs)

    def prompt_and_mel(self, samples: np.ndarray) -> tuple[np.ndarray, mx.array]:
        mel = log_mel_chunks(samples, self.model.config.audio)
        n_tokens = mel.shape[0] * self.model.config.audio.tokens_per_chunk
        return np.array([transcription_prompt(n_tokens)], dtype=np.int64), mel

    def transcribe(self, audio: str | Path | np.ndarray, sample_rate: int | None = None,
                   *, max_new_tokens: int | None = None, **options) -> Transcription:
        """Transcribe a file, or an array of samples at `sample_rate` (None: 16 kHz)."""
        if options:
            raise TypeError(f"unknown options {sorted(options)}; Voxtral takes max_new_tokens")
        samples = load_audio(audio, SAMPLE_RATE, sample_rate=sample_rate)
        prompt, mel = self.prompt_and_mel(samples)
        n = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        steps: list[np.ndarray] = []
        ids = self.model.generate(prompt, mel, n, on_logits=steps.append)
        eos = self.model.config.eos_token_id
        logp = [_log_softmax_at(lg, t) for lg, t in zip(steps, ids)]
        text_ids = ids[:-1] if ids and ids[-1] == eos else ids
        text = self.tokenizer.decode(text_ids)
        raw = text.encode("utf-8")
        segments: tuple[Segment, ...] = ()
        if text_ids:
            segments = (Segment(
                id=0, seek=0, start=0.0, end=round(samples.shape[0] / SAMPLE_RATE, 3), text=text,
                tokens=tuple(text_ids), temperature=0.0, avg_logprob=float(np.mean(logp)),
                compression_ratio=len(raw) / max(1, len(zlib.compress(raw))),
                no_speech_prob=0.0),)
        return Transcription(text=text, segments=segments, language=self.language)
