"""`SparkTTS`: text + a cloned voice or control labels -> Qwen2 semantic tokens -> BiCodec audio
at 16 kHz (`mlx_impl.tts.TextToSpeech`).

Upstream: spark-tts-lib 0.2.1 `SparkTTS.inference`: voice cloning from a reference clip (its
BiCodec global tokens in the prompt; with the clip's transcript, its semantic tokens as well),
or voice creation from control labels (gender female | male, pitch and speed very_low | low |
moderate | high | very_high), sampled at temperature 0.8, top-k 50, top-p 0.95; the generated
semantic tokens (and in control mode global tokens) are decoded by BiCodec with the voice's
global tokens.

Voices: a `clone(clip)` result (from `mlx_impl.tts.reference_audio.ReferenceClip` at 16 kHz:
`load_reference(path, text, **tts.reference.kwargs())`), a `ReferenceClip` itself, a control
string `"GENDER[:PITCH[:SPEED]]"` (e.g. `"male:high:moderate"`; pitch and speed default to
moderate), or None (`"female:moderate:moderate"`). Unknown labels are an error naming the valid
ones.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from mlx_impl.orpheus.generate import check_fits
from mlx_impl.spark import tokens as T
from mlx_impl.spark.generate import DEFAULTS, Generation, generate
from mlx_impl.tts import SamplingOptions, Speech
from mlx_impl.tts.reference_audio import ReferenceClip, ReferenceNeeds

OPTIONS = SamplingOptions(**DEFAULTS, max_tokens=1500)  # 30 s of speech at 50 tokens/s
DEFAULT_VOICE = "female:moderate:moderate"
MIN_SECONDS, MAX_SECONDS = 1.0, 30.0


def parse_control(voice: str) -> tuple[str, str, str]:
    parts = voice.split(":")
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"voice {voice!r}: expected GENDER[:PITCH[:SPEED]], e.g. "
                         "'male:high:moderate'")
    gender, pitch, speed = (parts + ["moderate", "moderate"])[:3]
    T.control_prompt("x", gender, pitch, speed)  # raises naming an unknown label
    return gender, pitch, speed


class SparkTTS:
    def __init__(self, lm, codec):
        self.lm, self.codec = lm, codec
        self.sample_rate = codec.sample_rate
        self.defaults, self.default_voice = OPTIONS, DEFAULT_VOICE
        self.samples_per_frame = codec.bicodec.cfg.hop_length
        self.tokens_per_frame = 1
        self.reference = ReferenceNeeds(self.sample_rate, MIN_SECONDS, MAX_SECONDS)

    def clone(self, clip: ReferenceClip | np.ndarray, text: str | None = None) -> dict:
        """A cloned voice: the clip's BiCodec global (32,) and semantic tokens, its transcript."""
        if isinstance(clip, ReferenceClip):
            if clip.sample_rate != self.sample_rate:
                raise ValueError(f"reference clip at {clip.sample_rate} Hz; Spark-TTS needs "
                                 f"{self.sample_rate} Hz (load_reference(..., "
                                 "**tts.reference.kwargs()) resamples)")
            audio, text = clip.audio, clip.text if text is None else text
        else:
            audio = np.asarray(clip)
        glob, sem = self.codec.tokenize(audio)
        return {"global": np.array(glob).reshape(-1).astype(np.int64),
                "semantic": np.array(sem).reshape(-1).astype(np.int64), "text": text}

    def prompt(self, text: str, voice) -> tuple[list[int], dict | None]:
        """(prompt ids, the cloned voice or None for control mode)."""
        if isinstance(voice, ReferenceClip):
            voice = self.clone(voice)
        if voice is None:
            voice = DEFAULT_VOICE
        if isinstance(voice, str):
            return T.control_prompt(text, *parse_control(voice)), None
        if not isinstance(voice, dict) or "global" not in voice:
            raise ValueError("Spark-TTS takes a cloned voice (tts.clone(clip)), a ReferenceClip, "
                             f"a control string like {DEFAULT_VOICE!r}, or None "
                             f"(got {type(voice).__name__})")
        if voice.get("text"):
            return T.clone_prompt(text, voice["global"], voice["text"], voice["semantic"]), voice
        return T.clone_prompt(text, voice["global"]), voice

    def check(self, text: str, voice, options: SamplingOptions | None = None) -> list[int]:
        """The prompt, after checking text, voice and that prompt + max_tokens fit."""
        prompt, _ = self.prompt(text, voice)
        check_fits(self.lm, len(prompt), (options or OPTIONS).max_tokens)
        return prompt

    def decode(self, global_codes: np.ndarray, semantic: np.ndarray) -> np.ndarray:
        if np.asarray(semantic).size == 0:
            return np.zeros(0, np.float32)
        return np.array(self.codec.detokenize(global_codes, semantic).astype(mx.float32))

    def generate(self, text: str, voice=None, options: SamplingOptions | None = None,
                 seed: int = 0, on_token=None) -> tuple[Generation, dict | None]:
        prompt, cloned = self.prompt(text, voice)
        opts = options or OPTIONS
        check_fits(self.lm, len(prompt), opts.max_tokens)
        return generate(self.lm, prompt, opts, control=cloned is None, seed=seed,
                        on_token=on_token), cloned

    def synthesize(self, text: str, voice=None, *, options: SamplingOptions | None = None,
                   seed: int = 0, on_token=None) -> Speech:
        gen, cloned = self.generate(text, voice, options, seed, on_token)
        glob = cloned["global"] if cloned is not None else gen.global_codes
        sem = gen.semantic
        audio = self.decode(glob, sem) if glob.size == T.N_GLOBAL_TOKENS else np.zeros(0, np.float32)
        return Speech(audio, self.sample_rate, gen.tokens,
                      {"stop": gen.stop, "n_tokens": int(gen.tokens.size),
                       "n_semantic": int(sem.size),
                       "mode": "clone" if cloned is not None else "control",
                       "global_tokens": glob.tolist()})
