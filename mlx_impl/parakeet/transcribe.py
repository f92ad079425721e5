"""Speech to text with a Parakeet model (CTC, RNN-T or TDT) behind the common interface.

Pipeline: `mlx_impl.audio_io.load_audio` (16 kHz mono; its checks reject missing, empty and
non-audio files, NaN/inf samples, bad rates) -> `features.log_mel` (NeMo preprocessing) ->
encoder -> greedy decoding (`decode.py`, identical to transformers 5.24.0 `generate()`) ->
pieces joined as text. One pass over the whole clip (no chunking: attention cost grows with the
square of the length; the released models were trained on clips up to ~20 s and handle minutes).

The result is `mlx_impl.stt.Transcription`. Parakeet has no sampling or no-speech head, so some
segment fields are defined here:
- one segment spanning the whole clip [0, duration] (none when nothing was recognised);
- `tokens`: the emitted ids without blanks; `temperature` 0.0 (greedy); `seek` 0;
- `avg_logprob`: mean log-probability of the greedy choice (CTC: over frames; transducers:
  over decoding steps, blanks included);
- `no_speech_prob`: mean blank probability over the same frames / steps;
- `compression_ratio`: gzip ratio of the text, as Whisper computes it;
- words: a word starts at a piece beginning with "▁". Token times: encoder frames of
  `subsampling_factor * 10 ms` (80 ms): CTC [first frame, last frame + 1) of the token's run;
  RNN-T [frame, frame + 1); TDT [frame, frame + predicted duration) (NeMo's TDT timestamps;
  a duration-0 token ends where it starts). Word probability: mean of its tokens'.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.audio_io import load_audio
from mlx_impl.parakeet.decode import ctc_collapse, ctc_greedy, transducer_greedy
from mlx_impl.parakeet.features import HOP_LENGTH, SAMPLE_RATE, log_mel
from mlx_impl.parakeet.model import ParakeetForCTC, ParakeetForTransducer
from mlx_impl.parakeet.tokenizer import PieceTokenizer
from mlx_impl.stt import Segment, Transcription, Word


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


class ParakeetTranscriber:
    """`SpeechToText` for a Parakeet model and its piece vocabulary."""

    def __init__(self, model: ParakeetForCTC | ParakeetForTransducer, tokenizer: PieceTokenizer,
                 language: str = "en"):
        cfg = model.config
        if tokenizer.blank != cfg.blank_token_id:
            raise ValueError(f"the model's blank is id {cfg.blank_token_id} but the tokenizer's "
                             f"is {tokenizer.blank}; pass the checkpoint's own vocab.json")
        if len(tokenizer.pieces) != cfg.vocab_size:
            raise ValueError(f"the vocab has {len(tokenizer.pieces)} pieces, the model "
                             f"{cfg.vocab_size} outputs; pass the checkpoint's own vocab.json")
        self.model, self.tokenizer, self.language = model, tokenizer, language
        self.frame_s = cfg.encoder_config.subsampling_factor * HOP_LENGTH / SAMPLE_RATE

    def _decode(self, feats: np.ndarray, n_valid: int):
        """-> [(token, start frame, end frame, probability)], mean log-prob, mean blank prob."""
        cfg = self.model.config
        x = mx.array(feats[None])
        lengths = mx.array([n_valid], dtype=mx.int32)
        blank = cfg.blank_token_id
        if isinstance(self.model, ParakeetForCTC):
            logits, valid = self.model(x, lengths)
            logits, valid = np.array(logits.astype(mx.float32))[0], np.array(valid)[0]
            lp = _log_softmax(logits[valid])  # (T, V) valid frames only
            ids = ctc_greedy(logits[None], valid[None], blank)[0][valid]
            chosen = lp[np.arange(len(ids)), ids]
            out = [(tok, s, e + 1, float(np.exp(chosen[s:e + 1]).mean()))
                   for tok, s, e in ctc_collapse(ids, blank)]
            return out, float(chosen.mean()), float(np.exp(lp[:, blank]).mean())
        enc, valid = self.model.encode(x, lengths)
        res = transducer_greedy(self.model, enc, int(np.array(valid).sum()))
        lp = _log_softmax(res.joint[:, :cfg.vocab_size])  # (S, V)
        steps = res.tokens[1:]
        chosen = lp[np.arange(len(steps)), steps]
        frames = np.concatenate([[0], np.cumsum(res.durations[1:])])[:-1]  # frame of each step
        tdt = cfg.durations is not None
        out = []
        for k, tok in enumerate(steps):
            if tok == blank:
                continue
            span = int(res.durations[k + 1]) if tdt else 1
            out.append((int(tok), int(frames[k]), int(frames[k]) + span, float(np.exp(chosen[k]))))
        return out, float(chosen.mean()), float(np.exp(lp[:, blank]).mean())

    def transcribe(self, audio: str | Path | np.ndarray, sample_rate: int | None = None,
                   **options) -> Transcription:
        """Transcribe a file, or an array of samples at `sample_rate` (None: 16 kHz).
        Options: word_timestamps (bool, default True)."""
        word_timestamps = bool(options.pop("word_timestamps", True))
        if options:
            raise TypeError(f"unknown transcribe options {sorted(options)}; Parakeet takes "
                            "word_timestamps")
        samples = load_audio(audio, SAMPLE_RATE, sample_rate=sample_rate)
        feats, n_valid = log_mel(samples, self.model.config.encoder_config.num_mel_bins)
        emitted, avg_logprob, blank_prob = self._decode(feats, n_valid)
        ids = [t for t, *_ in emitted]
        text = self.tokenizer.decode(ids)
        if not text:
            return Transcription("", (), self.language)
        duration = len(samples) / SAMPLE_RATE
        words = self._words(emitted, duration) if word_timestamps else None
        seg = Segment(id=0, seek=0, start=0.0, end=round(duration, 3), text=text,
                      tokens=tuple(ids), temperature=0.0, avg_logprob=avg_logprob,
                      compression_ratio=_compression_ratio(text), no_speech_prob=blank_prob,
                      words=words)
        return Transcription(text, (seg,), self.language)

    def _words(self, emitted, duration: float) -> tuple[Word, ...]:
        groups: list[list] = []
        for e in emitted:
            if not groups or self.tokenizer.is_word_start(e[0]):
                groups.append([])
            groups[-1].append(e)
        words = []
        for g in groups:
            text = "".join(self.tokenizer.piece(t) for t, *_ in g).replace("\u2581", " ")
            if not text.strip():
                continue
            start = min(g[0][1] * self.frame_s, duration)
            end = min(max(e[2] for e in g) * self.frame_s, duration)
            words.append(Word(text if text.startswith(" ") else " " + text, round(start, 3),
                              round(max(end, start), 3), float(np.mean([e[3] for e in g]))))
        return tuple(words)


def _compression_ratio(text: str) -> float:
    b = text.encode("utf-8")
    return len(b) / len(zlib.compress(b))
