"""`OuteTTS`: text (+ a speaker profile) -> OuteTTS LM code tokens -> DAC 24 kHz audio
(`mlx_impl.tts.TextToSpeech`).

Defaults (`DEFAULTS`): outetts 0.4.4 `models/config.py` `SamplerConfig`: temperature 0.4,
repetition_penalty 1.1 over the last 64 ids (`repetition_range` 64, and `hf_model.py`'s patched
processor hard-codes 64), top_k 40, top_p 0.9, min_p 0.05. `max_tokens` 1200 here (16 s of
audio at 75 frames/s; upstream bounds prompt + output by `max_length` 8192).

Voices: `None` (no speaker), a speaker profile dict as outetts `create_speaker` writes
(text, words with duration, c1, c2, features) or the path of its JSON file (`save_speaker`), or
a reference clip (`mlx_impl.tts.reference_audio.ReferenceClip` at 24 kHz with word timings:
`load_reference(path, text, **tts.reference.kwargs())`), turned into a profile by `clone` (our
Whisper's word timings + our DAC codes + features, `mlx_impl.outetts.speaker`).
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.orpheus.generate import check_fits
from mlx_impl.outetts import tokens as T
from mlx_impl.outetts.generate import Generation, generate
from mlx_impl.outetts.speaker import MAX_SECONDS, MIN_SECONDS, SAMPLE_RATE, create_speaker
from mlx_impl.tts import SamplingOptions, Speech
from mlx_impl.tts.reference_audio import ReferenceClip, ReferenceNeeds

DEFAULTS = SamplingOptions(temperature=0.4, top_k=40, top_p=0.9, min_p=0.05,
                           repetition_penalty=1.1, repetition_window=64, max_tokens=1200)


def read_speaker(path: str | Path) -> dict:
    """A speaker profile JSON file (outetts `save_speaker`'s format) -> dict."""
    import json

    p = Path(path)
    if p.suffix != ".json" or not p.is_file():
        raise ValueError(f"unknown voice {str(path)!r}: OuteTTS takes a speaker profile JSON "
                         "file (outetts save_speaker's format) or no voice")
    try:
        speaker = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"speaker profile {p} is not readable JSON ({e})") from None
    T.check_speaker(speaker)
    return speaker


class OuteTTS:
    def __init__(self, lm, dac):
        self.lm, self.dac = lm, dac
        self.defaults, self.default_voice = DEFAULTS, None
        self.sample_rate = dac.sample_rate
        self.samples_per_frame = dac.cfg.hop_length
        self.tokens_per_frame = T.FRAME
        # reference clips for `clone`: 24 kHz, 1..20 s (upstream refuses > 20 s), word timings
        self.reference = ReferenceNeeds(SAMPLE_RATE, MIN_SECONDS, MAX_SECONDS,
                                        word_timestamps=True)

    def clone(self, clip: ReferenceClip) -> dict:
        """The speaker profile of a reference clip (outetts `create_speaker`; like upstream, a
        warning above 15 s: shorter clips clone better and leave more room for the text)."""
        if clip.seconds > 15:
            import warnings

            warnings.warn(f"the reference clip is {clip.seconds:.1f} s long; OuteTTS clones best "
                          "from up to 15 s of speech", stacklevel=2)
        return create_speaker(self.dac, clip)

    def prompt(self, text: str, voice) -> list[int]:
        if isinstance(voice, (str, Path)):
            voice = read_speaker(voice)
        if isinstance(voice, ReferenceClip):
            voice = self.clone(voice)
        if voice is not None and not isinstance(voice, dict):
            raise ValueError("OuteTTS takes a speaker profile (a dict of text and words with "
                             "codes, as outetts create_speaker writes), a ReferenceClip, or no "
                             f"voice (got {type(voice).__name__})")
        return T.prompt_ids(text, voice)

    def check(self, text: str, voice, options: SamplingOptions | None = None) -> list[int]:
        """The prompt, after checking text, voice and that prompt + max_tokens fit."""
        prompt = self.prompt(text, voice)
        check_fits(self.lm, len(prompt), (options or DEFAULTS).max_tokens)
        return prompt

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """DAC codes (2, T) -> (T * hop,) float32 at `sample_rate`."""
        codes = np.asarray(codes, np.int32)
        if codes.shape[-1] == 0:
            return np.zeros(0, np.float32)
        audio = self.dac.decode(mx.array(codes[None]))
        return np.array(audio[0].astype(mx.float32))

    def generate(self, text: str, voice=None, options: SamplingOptions | None = None,
                 seed: int = 0, on_token=None) -> Generation:
        return generate(self.lm, self.prompt(text, voice), options or DEFAULTS, seed=seed,
                        on_token=on_token)

    def synthesize(self, text: str, voice: str | Path | np.ndarray | dict | None = None, *,
                   options: SamplingOptions | None = None, seed: int = 0,
                   on_token=None) -> Speech:
        gen = self.generate(text, voice, options, seed, on_token)
        codes = gen.codes
        return Speech(self.decode(codes), self.sample_rate, T.codes_to_tokens(codes),
                      {"stop": gen.stop, "n_tokens": int(gen.tokens.size),
                       "n_frames": int(codes.shape[1])})
