"""The speech-to-text interface every STT model in mlx_impl implements, and its result types.

The result mirrors openai-whisper 20250625's `transcribe()` dict: `Transcription.to_dict()` gives
that dict (segment keys in upstream's order; "words" only when word timestamps were computed),
so the writers and any tool that reads upstream's JSON take it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Word:
    word: str  # with its leading space, as decoded ("  Hello")
    start: float  # seconds from the start of the audio
    end: float
    probability: float  # mean probability of the word's tokens

    def to_dict(self) -> dict:
        return {"word": self.word, "start": self.start, "end": self.end,
                "probability": self.probability}

    @classmethod
    def from_dict(cls, d: dict) -> Word:
        return cls(d["word"], float(d["start"]), float(d["end"]), float(d["probability"]))


@dataclass(frozen=True)
class Segment:
    id: int  # index in the transcription
    seek: int  # mel frame (10 ms) where the decoded window started
    start: float  # seconds
    end: float
    text: str
    tokens: tuple[int, ...]  # text and timestamp tokens, no sot sequence, no end-of-text
    temperature: float  # sampling temperature of the accepted decode
    avg_logprob: float  # mean log-probability of the window's tokens
    compression_ratio: float  # gzip ratio of the window's text (high: repetition)
    no_speech_prob: float  # probability of <|nospeech|> at the window's first step
    words: tuple[Word, ...] | None = None  # None: word timestamps not computed

    def to_dict(self) -> dict:
        d = {"id": self.id, "seek": self.seek, "start": self.start, "end": self.end,
             "text": self.text, "tokens": list(self.tokens), "temperature": self.temperature,
             "avg_logprob": self.avg_logprob, "compression_ratio": self.compression_ratio,
             "no_speech_prob": self.no_speech_prob}
        if self.words is not None:
            d["words"] = [w.to_dict() for w in self.words]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Segment:
        words = d.get("words")
        return cls(
            id=int(d["id"]), seek=int(d["seek"]), start=float(d["start"]), end=float(d["end"]),
            text=d["text"], tokens=tuple(int(t) for t in d["tokens"]),
            temperature=float(d["temperature"]), avg_logprob=float(d["avg_logprob"]),
            compression_ratio=float(d["compression_ratio"]),
            no_speech_prob=float(d["no_speech_prob"]),
            words=None if words is None else tuple(Word.from_dict(w) for w in words))


@dataclass(frozen=True)
class Transcription:
    text: str  # all segments' text joined
    segments: tuple[Segment, ...]
    language: str  # language code, detected or given

    def to_dict(self) -> dict:
        return {"text": self.text, "segments": [s.to_dict() for s in self.segments],
                "language": self.language}

    @classmethod
    def from_dict(cls, d: dict) -> Transcription:
        return cls(d["text"], tuple(Segment.from_dict(s) for s in d["segments"]), d["language"])


@runtime_checkable
class SpeechToText(Protocol):
    def transcribe(self, audio: str | Path | np.ndarray, sample_rate: int | None = None,
                   **options) -> Transcription:
        """Transcribe a file, or an array of samples at `sample_rate` (None: the model's rate)."""
        ...
