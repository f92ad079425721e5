"""Speech to text with a Wav2Vec2 CTC model: greedy CTC decoding behind the common interface.

Upstream counterpart: transformers 5.24.0 `AutomaticSpeechRecognitionPipeline` for CTC models
(`Wav2Vec2FeatureExtractor` -> `Wav2Vec2ForCTC` -> argmax per frame ->
`Wav2Vec2CTCTokenizer.decode`, word times = frame offsets * `inputs_to_logits_ratio` /
`sampling_rate`, 20 ms per frame for the base model). One forward pass over the whole clip
(no chunking: attention cost grows with the square of the length).

The result is the `mlx_impl.stt.Transcription` shared with Whisper. CTC has no sampling or
no-speech head, so some segment fields are defined here:
- `text` is exactly the upstream tokenizer's decode (no leading space; Whisper's has one);
- one segment spanning the whole clip [0, duration] (none when nothing was recognised);
- `tokens`: the collapsed CTC ids without blanks; `temperature` 0.0 (greedy);
- `avg_logprob`: mean over frames of the log-probability of the greedy path;
- `no_speech_prob`: mean over frames of the blank probability;
- `compression_ratio`: gzip ratio of the text, as Whisper computes it;
- word `probability`: mean greedy-path probability over the word's frames.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.audio_io import load_audio
from mlx_impl.stt import Segment, Transcription, Word
from mlx_impl.wav2vec2.features import normalize
from mlx_impl.wav2vec2.model import Wav2Vec2ForCTC
from mlx_impl.wav2vec2.tokenizer import CTCTokenizer

SAMPLE_RATE = 16000  # every wav2vec 2.0 checkpoint's feature extractor rate


def greedy_ids(logits: np.ndarray) -> np.ndarray:
    """Best class per frame: (..., T, V) -> (..., T) int64 (first index on ties, as torch)."""
    return np.argmax(logits, axis=-1).astype(np.int64)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


class Wav2Vec2Transcriber:
    """`SpeechToText` for a Wav2Vec2ForCTC model and its CTC tokenizer."""

    def __init__(self, model: Wav2Vec2ForCTC, tokenizer: CTCTokenizer, language: str = "en"):
        if model.config.pad_token_id != tokenizer.pad_id:
            raise ValueError(f"the model's CTC blank is id {model.config.pad_token_id} but the "
                             f"tokenizer's pad token is id {tokenizer.pad_id}; pass the "
                             "checkpoint's own vocab.json")
        if len(tokenizer.vocab) > model.config.vocab_size:
            raise ValueError(f"the vocab has {len(tokenizer.vocab)} tokens, the model only "
                             f"{model.config.vocab_size} outputs")
        self.model, self.tokenizer, self.language = model, tokenizer, language

    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: mx.Dtype = mx.float32,
                        language: str = "en") -> Wav2Vec2Transcriber:
        """A transformers checkpoint folder with config.json, model.safetensors, vocab.json."""
        from mlx_impl.wav2vec2.load import load

        model, w = load(folder, dtype)
        if w.vocab is None:
            raise ValueError(f"{folder} has no vocab.json; pass a tokenizer: "
                             "Wav2Vec2Transcriber(model, CTCTokenizer(vocab))")
        return cls(model, CTCTokenizer(w.vocab), language)

    def logits(self, audio: np.ndarray) -> np.ndarray:
        """16 kHz mono float32 (N,) -> CTC logits (T, vocab) float32, numpy."""
        out = self.model(mx.array(normalize(audio)[None]))
        return np.array(out[0])

    def transcribe(self, audio: str | Path | np.ndarray, sample_rate: int | None = None,
                   *, skip_special_tokens: bool = False, **options) -> Transcription:
        """Transcribe a file, or an array of samples at `sample_rate` (None: 16 kHz).

        skip_special_tokens: drop <s>, </s>, <unk> (and blanks) before collapsing repeats, as
            the transformers tokenizer's flag does; word times then count only kept frames.
        """
        if options:
            raise TypeError(f"unknown options {sorted(options)}; Wav2Vec2 takes "
                            "skip_special_tokens")
        samples = load_audio(audio, SAMPLE_RATE, sample_rate=sample_rate)
        cfg = self.model.config
        if cfg.num_frames(samples.shape[0]) < 1:
            seconds = samples.shape[0] / SAMPLE_RATE
            raise ValueError(f"audio of {samples.shape[0]} samples ({seconds:.4f}"
                             f" s) is shorter than the model's {cfg.min_samples}-sample "
                             f"({cfg.min_samples / SAMPLE_RATE * 1000:g} ms) receptive field; "
                             "pass a longer clip")
        logits = self.logits(samples)
        ids = greedy_ids(logits)
        logp = _log_softmax(logits)
        path_logp = logp[np.arange(ids.shape[0]), ids]
        path_p = np.exp(path_logp)
        text = self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
        seconds_per_frame = cfg.samples_per_frame / SAMPLE_RATE
        words = tuple(
            Word(" " + w.word, round(w.start * seconds_per_frame, 3),
                 round(w.end * seconds_per_frame, 3), float(path_p[w.start:w.end].mean()))
            for w in self.tokenizer.word_offsets(ids, skip_special_tokens))
        segments: tuple[Segment, ...] = ()
        if text:
            chars = self.tokenizer.char_offsets(ids, skip_special_tokens)
            raw = text.encode("utf-8")
            segments = (Segment(
                id=0, seek=0, start=0.0, end=round(samples.shape[0] / SAMPLE_RATE, 3),
                text=text, tokens=tuple(c.token_id for c in chars), temperature=0.0,
                avg_logprob=float(path_logp.mean()),
                compression_ratio=len(raw) / len(zlib.compress(raw)),
                no_speech_prob=float(np.exp(logp[:, cfg.pad_token_id]).mean()), words=words),)
        return Transcription(text=text, segments=segments,
                             language=self.language)
