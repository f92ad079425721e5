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
- token timestamps (`ParakeetSegment.token_times`, "token_timestamps" in `to_dict()`): encoder
  frames of `subsampling_factor * 10 ms` (80 ms); a transducer step's frame is the sum of the
  durations (frame advances) before it. TDT [frame, frame + predicted duration), a
  duration-0 token ends where it starts, and a punctuation piece (`TDT_PUNCTUATION`) is put at
  [end of the previous token, same]; RNN-T [frame, frame + 1): both as transformers 5.24.0
  `ParakeetProcessor.decode(..., durations=)` (NeMo's `compute_rnnt_timestamps`). CTC (upstream
  gives none): [first frame, last frame + 1) of the token's run in the greedy path.
- words: a word starts at a piece beginning with "▁"; it spans [its first token's start, its
  last token's end]. Word probability: mean of its tokens'.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.audio_io import load_audio
from mlx_impl.parakeet.decode import ctc_collapse, ctc_greedy, transducer_greedy
from mlx_impl.parakeet.features import HOP_LENGTH, SAMPLE_RATE, log_mel
from mlx_impl.parakeet.model import ParakeetForCTC, ParakeetForTransducer
from mlx_impl.parakeet.tokenizer import PieceTokenizer
from mlx_impl.stt import Segment, Transcription, Word


# upstream ParakeetProcessor._refine_timestamps' list: in TDT these pieces take the previous
# token's end as their start and end
TDT_PUNCTUATION = frozenset(["?", "'", "\u00a1", "\u00bf", "-", ":", ",", "%", "/", ".", "!"])


@dataclass(frozen=True)
class TokenTime:
    token: int  # id
    text: str  # its piece, "▁" read as a space
    start: float  # seconds from the start of the audio
    end: float
    probability: float  # greedy-choice probability (CTC: mean over the token's frames)

    def to_dict(self) -> dict:
        return {"token": self.token, "text": self.text, "start": self.start, "end": self.end,
                "probability": self.probability}


@dataclass(frozen=True)
class ParakeetSegment(Segment):
    """A `Segment` that also carries per-token timestamps."""

    token_times: tuple[TokenTime, ...] | None = None  # None: timestamps not computed

    def to_dict(self) -> dict:
        d = super().to_dict()
        if self.token_times is not None:
            d["token_timestamps"] = [t.to_dict() for t in self.token_times]
        return d


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
        spans = transducer_spans(res.tokens, res.durations, blank, cfg.durations is not None)
        out = [(tok, start, end, float(np.exp(chosen[k]))) for k, tok, start, end in spans]
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
        token_times = words = None
        if word_timestamps:
            token_times = self.token_times(emitted)
            words = self._words(token_times, duration)
        seg = ParakeetSegment(id=0, seek=0, start=0.0, end=round(duration, 3), text=text,
                              tokens=tuple(ids), temperature=0.0, avg_logprob=avg_logprob,
                              compression_ratio=_compression_ratio(text),
                              no_speech_prob=blank_prob, words=words, token_times=token_times)
        return Transcription(text, (seg,), self.language)

    def token_times(self, emitted) -> tuple[TokenTime, ...]:
        """[(token, start frame, end frame, probability)] -> timestamps in seconds (unrounded:
        frame * 0.08 as upstream computes it), TDT punctuation moved as upstream does."""
        tdt = self.model.config.durations is not None
        out: list[TokenTime] = []
        for tok, start, end, p in emitted:
            piece = self.tokenizer.piece(tok)
            t0, t1 = start * self.frame_s, end * self.frame_s
            if tdt and out and piece in TDT_PUNCTUATION:
                t0 = t1 = out[-1].end
            out.append(TokenTime(tok, piece.replace("\u2581", " "), t0, t1, p))
        return tuple(out)

    def _words(self, token_times: tuple[TokenTime, ...], duration: float) -> tuple[Word, ...]:
        groups: list[list[TokenTime]] = []
        for t in token_times:
            if not groups or self.tokenizer.is_word_start(t.token):
                groups.append([])
            groups[-1].append(t)
        words = []
        for g in groups:
            text = "".join(t.text for t in g)
            if not text.strip():
                continue
            start = min(g[0].start, duration)
            end = min(max(g[0].start, g[-1].end), duration)
            words.append(Word(text if text.startswith(" ") else " " + text, round(start, 3),
                              round(end, 3), float(np.mean([t.probability for t in g]))))
        return tuple(words)


def transducer_spans(tokens, durations, blank: int, tdt: bool) -> list[tuple[int, int, int, int]]:
    """(step, token, start frame, end frame) of each non-blank emission of a transducer output
    laid out as upstream `generate()`'s (start token first, `durations[0]` = 0): frame =
    cumsum(durations) - durations; TDT spans its duration, RNN-T one frame."""
    durations = np.asarray(durations, dtype=np.int64)
    frames = np.cumsum(durations) - durations
    out = []
    for i in range(1, len(tokens)):
        tok = int(tokens[i])
        if tok != blank:
            span = int(durations[i]) if tdt else 1
            out.append((i - 1, tok, int(frames[i]), int(frames[i]) + span))
    return out


def _compression_ratio(text: str) -> float:
    b = text.encode("utf-8")
    return len(b) / len(zlib.compress(b))
