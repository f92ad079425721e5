"""Kokoro as a `TextToSpeech`: text -> sentences -> espeak-ng phonemes -> ids -> audio.

As kokoro's `KPipeline` + `KModel`: each sentence is phonemized, its ids (vocab lookup, 0 at both
ends) run through the model with the voice pack's row for its phoneme count
(`voices.style_for`), and the sentences' audio is concatenated. Kokoro samples nothing (no
temperature, top-k...); its randomness is the harmonic source's phases and noise, drawn here from
`numpy.random.default_rng(seed)` per sentence, so a seed reproduces the audio exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.kokoro import voices
from mlx_impl.kokoro.phonemes import phonemize, to_ids
from mlx_impl.tts import SamplingOptions, Speech

SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")  # split after ., !, ? or ; and whitespace


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]


@dataclass(frozen=True)
class Utterance:
    text: str
    phonemes: str
    ids: list[int]


class KokoroTTS:
    defaults = SamplingOptions()  # Kokoro has no sampling options: any change is an error
    tokens_per_frame = 1

    def __init__(self, model, folder: Path):
        self.model, self.folder = model, Path(folder)
        self.sample_rate = model.sample_rate
        names = voices.available(self.folder)
        self.default_voice = names[0] if names else None
        self._vocab = model.config.vocab
        self._context = model.config.plbert.max_position_embeddings

    def _utterances(self, text: str) -> list[Utterance]:
        out = []
        for sent in sentences(text) or [text]:
            ps = phonemize(sent)
            ids = to_ids(ps, self._vocab)
            if len(ids) > self._context:
                raise ValueError(f"the sentence {sent[:40]!r}... has {len(ids)} phoneme tokens, "
                                 f"over Kokoro's {self._context}; split it")
            out.append(Utterance(sent, ps, ids))
        return out

    def _voice(self, voice) -> np.ndarray:
        if voice is None:
            raise ValueError(f"no voice: pass --voice NAME ({voices.available(self.folder)}) or a "
                             ".pt/.npy (510, 1, 256) style pack")
        if isinstance(voice, np.ndarray):
            return voices.read_array(voice, "the voice array")
        return voices.load_voice(self.folder, str(voice))

    def check(self, text: str, voice=None, options: SamplingOptions | None = None) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text is empty; pass the words to speak")
        if options is not None and options != self.defaults:
            raise ValueError("Kokoro samples no tokens: --temperature, --top-p, --top-k, "
                             "--min-p, --repetition-penalty and --max-tokens do not apply")
        self._voice(voice)
        self._utterances(text)

    def stream(self, text: str, voice=None, *, options: SamplingOptions | None = None,
               seed: int = 0, on_token=None) -> Iterator[np.ndarray]:
        """The audio of each sentence, in order, as it is synthesized."""
        self.check(text, voice, options)
        pack = self._voice(voice)
        rng = np.random.default_rng(seed)
        for i, u in enumerate(self._utterances(text)):
            ref_s = voices.style_for(pack, len(u.phonemes))
            phases = rng.random((1, 9)).astype(np.float32)
            noise_seed = int(rng.integers(2 ** 31))
            audio, _ = self.model(
                mx.array(np.asarray([u.ids], np.int32)), mx.array(ref_s), mx.array(phases),
                lambda shape: np.random.default_rng(noise_seed).standard_normal(shape)
                .astype(np.float32))
            if on_token is not None:
                on_token(i, 0)
            yield np.asarray(audio.astype(mx.float32))[0]

    def synthesize(self, text: str, voice=None, *, options: SamplingOptions | None = None,
                   seed: int = 0, on_token=None) -> Speech:
        parts = list(self.stream(text, voice, options=options, seed=seed, on_token=on_token))
        return Speech(np.concatenate(parts).astype(np.float32), self.sample_rate,
                      meta={"stop": "end of text", "sentences": len(parts)})
