"""`BarkTTS`: text -> semantic -> coarse -> fine codes -> EnCodec 24 kHz audio
(`mlx_impl.tts.TextToSpeech`).

Options: the CLI's `SamplingOptions` (temperature, top-k, top-p) apply to the semantic and the
coarse stage, `max_tokens` to the semantic tokens (the coarse and fine lengths follow from
them); the fine stage samples at `FINE_TEMPERATURE`. Defaults (`DEFAULTS`): suno's
`generate_audio` text and waveform temperatures 0.7, no top-k/top-p, fine 0.5, 768 semantic
tokens (upstream's max_new_tokens). Voice: a suno name (`v2/en_speaker_6`) or an `.npz` history
prompt (`voices.py`); None: no history. Text: `tokens.py` (a TEST tokenizer offline).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.bark import tokens as T
from mlx_impl.bark.generate import BarkGeneration, BarkOptions, HistoryPrompt, check_history
from mlx_impl.bark.generate import generate as run
from mlx_impl.bark.voices import load_voice
from mlx_impl.tts import SamplingOptions, Speech

DEFAULTS = SamplingOptions(temperature=0.7, max_tokens=768)
FINE_TEMPERATURE = 0.5


class BarkTTS:
    tokens_per_frame = 1  # progress counts semantic tokens

    def __init__(self, model):
        self.model = model
        self.defaults, self.default_voice = DEFAULTS, None
        self.sample_rate = model.sample_rate

    def voice(self, voice) -> HistoryPrompt | None:
        if voice is None:
            return None
        prompt = voice if isinstance(voice, HistoryPrompt) else load_voice(voice)
        return check_history(prompt, self.model)

    def options(self, options: SamplingOptions | None) -> BarkOptions:
        o = options or DEFAULTS
        if o.min_p != 0 or o.repetition_penalty != 1.0 or o.cfg_scale != 1.0:
            raise ValueError("Bark samples with temperature, top-k and top-p; min-p, repetition "
                             "penalty and cfg-scale are not part of it")
        if o.draw != "gumbel":
            raise ValueError("Bark's sampling here draws Gumbel noise (draw='gumbel')")
        return BarkOptions(o, replace(o, max_tokens=1), FINE_TEMPERATURE)

    def check(self, text: str, voice=None, options: SamplingOptions | None = None) -> list[int]:
        ids = T.encode_text(text)
        self.voice(voice)
        self.options(options)
        return ids

    def generate(self, text: str, voice=None, options: SamplingOptions | None = None,
                 seed: int = 0, on_token=None) -> BarkGeneration:
        ids = T.encode_text(text)
        return run(self.model, ids, self.voice(voice), self.options(options), seed=seed,
                   on_step=on_token)

    def decode(self, fine: np.ndarray) -> np.ndarray:
        if fine.shape[1] == 0:
            return np.zeros(0, np.float32)
        return np.array(self.model.decode_codes(fine).astype(mx.float32)).reshape(-1)

    def synthesize(self, text: str, voice: str | Path | HistoryPrompt | None = None, *,
                   options: SamplingOptions | None = None, seed: int = 0,
                   on_token=None) -> Speech:
        gen = self.generate(text, voice, options, seed, on_token)
        return Speech(self.decode(gen.fine), self.sample_rate, gen.fine,
                      {"stop": gen.stop, "n_tokens": int(gen.semantic.shape[0]),
                       "n_frames": int(gen.fine.shape[1])})
