"""`OrpheusTTS`: text -> Orpheus LM audio tokens -> SNAC 24 kHz audio (`mlx_impl.tts.TextToSpeech`).

Defaults (`DEFAULTS`) are orpheus_tts 0.1's `generate_tokens_sync`: temperature 0.6, top_p 0.8,
repetition_penalty 1.3 over the whole history (vLLM's), max_tokens 1200 (mlx-audio 0.6.2 uses the
same temperature/top-p and a penalty of 1.3 over the last 20 tokens).

SNAC's decoder adds noise (`randn`) in its noise blocks. Here that noise comes from numpy,
drawn per frame (`snac_noise`: frame f of noise block k from `default_rng([seed, k, f])`), so
the audio of a seed is reproducible and a window of frames gets the same noise as the same
frames of a whole decode (streaming).

Streaming (`stream`): every `chunk_frames` generated frames, the frames from `context` before
the first unwritten one up to the newest are decoded, and the samples of the frames up to
`lookahead` before the newest are yielded (the rest at the end). SNAC's decoder is not causal,
so a sample depends on neighbouring frames: with 4 frames of context and look-ahead the
streamed audio equals one whole decode within the bound tested in tests/test_orpheus.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.orpheus import tokens as T
from mlx_impl.orpheus.generate import Generation, check_fits, generate, iter_tokens
from mlx_impl.tts import SamplingOptions, Speech

DEFAULTS = SamplingOptions(temperature=0.6, top_p=0.8, repetition_penalty=1.3, max_tokens=1200)


class OrpheusTTS:
    def __init__(self, lm, snac):
        self.lm, self.snac = lm, snac
        self.defaults, self.default_voice = DEFAULTS, T.DEFAULT_VOICE
        self.sample_rate = snac.sample_rate
        # SNAC latent frames (finest codebook) per Orpheus frame, samples per Orpheus frame
        self.fine_per_frame = max(snac.cfg.vq_strides) // min(snac.cfg.vq_strides)
        self.samples_per_frame = self.fine_per_frame * snac.cfg.hop_length

    # -- pieces ------------------------------------------------------------------------------

    def prompt(self, text: str, voice) -> list[int]:
        if voice is not None and not isinstance(voice, str):
            raise ValueError("Orpheus takes a voice name here (voice cloning from a clip is not "
                             f"implemented); choose one of {', '.join(T.VOICES)}")
        return T.prompt_ids(text, voice)

    def check(self, text: str, voice, options: SamplingOptions | None = None) -> list[int]:
        """The prompt, after checking text, voice and that prompt + max_tokens fit the model's
        positions (what `synthesize` would raise, before any generation)."""
        prompt = self.prompt(text, voice)
        check_fits(self.lm, len(prompt), (options or DEFAULTS).max_tokens)
        return prompt

    def snac_noise(self, first: int, last: int, seed: int) -> list[np.ndarray]:
        """Noise of frames [first, last) for each noise block, (1, T_k, 1) float32."""
        if not self.snac.cfg.noise:
            return []
        out, per = [], self.fine_per_frame
        for k, r in enumerate(self.snac.cfg.decoder_rates):
            per *= r
            out.append(np.concatenate([
                np.random.default_rng([seed, k, f]).standard_normal(per).astype(np.float32)
                for f in range(first, last)])[None, :, None])
        return out

    def decode(self, audio_tokens: np.ndarray, seed: int = 0, first_frame: int = 0) -> np.ndarray:
        """Whole frames of audio tokens -> (N,) float32 at `sample_rate` (frame numbers start at
        `first_frame` for the noise)."""
        codes = T.tokens_to_codes(audio_tokens)
        n = codes[0].shape[1]
        if n == 0:
            return np.zeros(0, np.float32)
        audio = self.snac.decode([mx.array(c) for c in codes],
                                 noise=self.snac_noise(first_frame, first_frame + n, seed))
        return np.array(audio[0].astype(mx.float32))

    def generate(self, text: str, voice=T.DEFAULT_VOICE, options: SamplingOptions | None = None,
                 seed: int = 0, on_token=None) -> Generation:
        return generate(self.lm, self.prompt(text, voice), options or DEFAULTS, seed=seed,
                        on_token=on_token)

    # -- mlx_impl.tts.TextToSpeech -----------------------------------------------------------

    def synthesize(self, text: str, voice: str | Path | np.ndarray | None = T.DEFAULT_VOICE, *,
                   options: SamplingOptions | None = None, seed: int = 0,
                   on_token=None) -> Speech:
        gen = self.generate(text, voice, options, seed, on_token)
        ids = gen.audio_tokens
        return Speech(self.decode(ids, seed), self.sample_rate, ids,
                      {"stop": gen.stop, "n_tokens": int(gen.tokens.size),
                       "n_frames": int(ids.size // T.FRAME)})

    def stream(self, text: str, voice=T.DEFAULT_VOICE, *, options: SamplingOptions | None = None,
               seed: int = 0, chunk_frames: int = 8, context: int = 4, lookahead: int = 4,
               on_token=None) -> Iterator[np.ndarray]:
        """Audio chunks (N_i,) float32 as frames are generated (module docstring)."""
        if chunk_frames < 1 or context < 0 or lookahead < 0:
            raise ValueError("chunk_frames must be >= 1, context and lookahead >= 0")
        tokens: list[int] = []
        written = 0  # frames whose samples were yielded

        def window(upto: int, final: bool) -> np.ndarray:
            start = max(0, written - context)
            audio = self.decode(np.array(tokens[start * T.FRAME: upto * T.FRAME]), seed, start)
            end = upto if final else upto - lookahead
            spf = self.samples_per_frame
            return audio[(written - start) * spf:(end - start) * spf]

        steps = iter_tokens(self.lm, self.prompt(text, voice), options or DEFAULTS, seed)
        for step, token in enumerate(steps):
            if on_token is not None:
                on_token(step, token)
            if token == T.END_OF_SPEECH:
                break
            tokens.append(token)
            n = len(tokens) // T.FRAME
            if len(tokens) % T.FRAME == 0 and n - lookahead - written >= chunk_frames:
                yield window(n, False)
                written = n - lookahead
        n = len(tokens) // T.FRAME
        if n > written:
            yield window(n, True)
