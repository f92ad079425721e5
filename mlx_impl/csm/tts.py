"""`CsmTTS`: speaker turns -> CSM frames -> Mimi 24 kHz audio (`mlx_impl.tts.TextToSpeech`), for
the CSM and Marvis model ids.

Voices: `voice` is a speaker id (an integer 0..99, upstream's `[speaker]` prefix; default 0), or
a `CsmVoice` (a speaker id and its context turns). Voice cloning is a conversation context
(upstream `CsmProcessor` chat turns, Sesame's `Segment`s): `context=[ContextTurn(text, speaker,
audio), ...]`, each a previous turn's text and its audio (a path or (N,) float32 at 24 kHz;
another rate is resampled by `mlx_impl.audio_io.load_audio`), encoded by the model's Mimi into
the prompt's audio frames. `clone(clip)` makes a `CsmVoice` of a reference clip checked and
transcribed by the shared path (`mlx_impl.tts.reference_audio`, the CLI's `--ref-audio
[--ref-text]`): the clip is a context turn of speaker 0, who then speaks the text.

Defaults (`DEFAULTS`): temperature 0.9 for codebook 0 and the depth decoder alike
(`temperature` and `depth_decoder_temperature` 0.9 with `do_sample` in the generation_config.json
that transformers-format fine-tunes of sesame/csm-1b carry on the hub, e.g.
FirstPotatoCoder/Furina_5e_fft; sesame/csm-1b's own file is gated and was not read; transformers
5.24's `GenerationConfig` leaves top-k off) with top-k 50 (Sesame's `generator.generate(
temperature=0.9, topk=50)`); max_tokens 125 frames (10 s at 12.5 frames/s, those configs'
`max_new_tokens`).

Streaming (`stream`): frames go to Mimi's streaming decoder (`mlx_impl.mimi.streaming`: causal
convolutions with their state, the decoder transformer with its KV cache) `chunk_frames` at a
time, each chunk's audio yielded as soon as it is decoded. Mimi's decoder is causal, so the
concatenated chunks equal one whole decode up to float rounding (tests/test_csm.py bounds it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.csm import tokens as T
from mlx_impl.csm.generate import (Generation, check_fits, check_options, generate,
                                   iter_frames)
from mlx_impl.tts import SamplingOptions, Speech
from mlx_impl.tts.reference_audio import ReferenceClip, ReferenceNeeds

DEFAULTS = SamplingOptions(temperature=0.9, top_k=50, max_tokens=125)
DEFAULT_SPEAKER = 0


@dataclass(frozen=True)
class ContextTurn:
    text: str  # what was said (the clip's transcript)
    speaker: int  # who said it
    audio: object  # path, or (N,) float32 samples at the model's rate (24 kHz)


@dataclass(frozen=True)
class CsmVoice:
    """A cloned voice: the speaker id who speaks, after the context turns of that voice."""

    speaker: int
    context: tuple[ContextTurn, ...]


class CsmTTS:
    tokens_per_frame = 1  # the CLI's progress counts frames

    def __init__(self, model, mimi):
        self.model, self.mimi = model, mimi
        self.defaults, self.default_voice = DEFAULTS, DEFAULT_SPEAKER
        self.sample_rate = mimi.sample_rate
        self.samples_per_frame = mimi.cfg.frame_size

    @property
    def reference(self) -> ReferenceNeeds:
        """A context clip at Mimi's rate, one frame per position: at most 30 s and at most 3/4
        of the positions (csm-1b: 2048 positions at 12.5 frames/s, so 30 s; the tiny Mimi's
        1500 frames/s allow 1.02 s), at least 1 s or a quarter of that maximum."""
        frames_per_second = self.sample_rate / self.samples_per_frame
        longest = min(30.0, 0.75 * self.model.config.max_position_embeddings / frames_per_second)
        return ReferenceNeeds(self.sample_rate, min(1.0, longest / 4), longest)

    # -- pieces ------------------------------------------------------------------------------

    def clone(self, clip: ReferenceClip, speaker: int = DEFAULT_SPEAKER) -> CsmVoice:
        """The voice of a checked reference clip: one context turn of `speaker` saying
        clip.text, and the same speaker for the text to speak."""
        T.check_text(clip.text)
        speaker = T.check_speaker(speaker)
        return CsmVoice(speaker, (ContextTurn(clip.text, speaker,
                                              np.asarray(clip.audio, np.float32)),))

    def speaker(self, voice) -> int:
        if voice is None:
            return DEFAULT_SPEAKER
        if isinstance(voice, CsmVoice):
            return T.check_speaker(voice.speaker)
        if isinstance(voice, (Path, np.ndarray)):
            raise ValueError("CSM clones a voice from a conversation context, not from a bare "
                             "clip as the voice: pass a speaker id as the voice and the clip as "
                             "a context turn, or clone(clip) (CLI: --ref-audio [--ref-text])")
        return T.check_speaker(voice)

    def encode_context(self, turn: ContextTurn) -> np.ndarray:
        """The clip of a context turn -> Mimi codes (F, K)."""
        from mlx_impl.audio_io import load_audio

        audio = turn.audio
        if isinstance(audio, (str, Path)):
            if not Path(audio).is_file():
                raise ValueError(f"context audio {str(audio)!r} does not exist; pass a WAV/FLAC "
                                 "file")
            try:
                samples = load_audio(audio, self.sample_rate)
            except (ValueError, RuntimeError, OSError) as e:
                raise ValueError(f"context audio {str(audio)!r} cannot be read ({e}); pass a "
                                 "valid audio file") from e
        else:
            samples = load_audio(np.asarray(audio), self.sample_rate)
        if samples.shape[0] < self.samples_per_frame:
            raise ValueError(f"context audio has {samples.shape[0]} samples, fewer than one Mimi "
                             f"frame ({self.samples_per_frame} at {self.sample_rate} Hz); pass a "
                             "longer clip")
        codes = self.mimi.encode(mx.array(samples[None, :, None]), self.sample_rate)
        return np.array(codes[0]).T.astype(np.int64)  # (F, K)

    def prompt(self, text: str, voice, context=None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, context codes) of `tokens.prompt` for the context turns then `text`."""
        cfg = self.model.config
        T.check_text(text)
        speaker = self.speaker(voice)
        turns = []
        cloned = voice.context if isinstance(voice, CsmVoice) else ()
        for c in (*cloned, *(context or ())):
            if not isinstance(c, ContextTurn):
                raise ValueError(f"context turns must be ContextTurn(text, speaker, audio), got "
                                 f"{type(c).__name__}")
            T.check_text(c.text)
            turns.append(T.Turn(c.text, T.check_speaker(c.speaker), self.encode_context(c)))
        turns.append(T.Turn(text, speaker))
        return T.prompt(turns, cfg.bos_token_id, cfg.audio_token_id, cfg.audio_eos_token_id,
                        cfg.num_codebooks)

    def check(self, text: str, voice, options: SamplingOptions | None = None,
              context=None) -> tuple[np.ndarray, np.ndarray]:
        """The prompt, after checking text, speaker, context, options and that prompt +
        max_tokens fit the positions (what `synthesize` would raise, before any generation)."""
        options = options or DEFAULTS
        check_options(options)
        ids, codes = self.prompt(text, voice, context)
        check_fits(self.model, len(ids), options.max_tokens)
        return ids, codes

    def decode(self, frames: np.ndarray) -> np.ndarray:
        """Frames (F, K) -> (F * frame_size,) float32."""
        if frames.shape[0] == 0:
            return np.zeros(0, np.float32)
        audio = self.mimi.decode(mx.array(np.ascontiguousarray(frames.T[None]).astype(np.int32)))
        return np.array(audio[0, :, 0].astype(mx.float32))

    def generate(self, text: str, voice=DEFAULT_SPEAKER, options: SamplingOptions | None = None,
                 seed: int = 0, on_token=None, context=None, noise=None) -> Generation:
        ids, codes = self.check(text, voice, options, context)
        return generate(self.model, ids, codes, options or DEFAULTS, seed=seed, noise=noise,
                        on_frame=on_token)

    # -- mlx_impl.tts.TextToSpeech -----------------------------------------------------------

    def synthesize(self, text: str, voice=DEFAULT_SPEAKER, *,
                   options: SamplingOptions | None = None, seed: int = 0, on_token=None,
                   context=None) -> Speech:
        gen = self.generate(text, voice, options, seed, on_token, context)
        frames = gen.audio_frames
        return Speech(self.decode(frames), self.sample_rate, gen.frames,
                      {"stop": gen.stop, "n_frames": int(gen.frames.shape[0]),
                       "n_audio_frames": int(frames.shape[0])})

    def stream(self, text: str, voice=DEFAULT_SPEAKER, *, options: SamplingOptions | None = None,
               seed: int = 0, chunk_frames: int = 4, on_token=None,
               context=None) -> Iterator[np.ndarray]:
        """Audio chunks (N_i,) float32 as frames are generated (module docstring)."""
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        ids, codes = self.check(text, voice, options, context)
        eos = self.model.config.codebook_eos_token_id
        decoder = self.mimi.streaming_decoder()
        pending: list[np.ndarray] = []

        def flush() -> np.ndarray:
            block = np.stack(pending).T[None].astype(np.int32)  # (1, K, f)
            pending.clear()
            return np.array(decoder.step(mx.array(block))[0, :, 0].astype(mx.float32))

        for i, frame in enumerate(iter_frames(self.model, ids, codes, options or DEFAULTS,
                                              seed)):
            if on_token is not None:
                on_token(i, frame)
            if (frame == eos).all():  # upstream's audio ends before an all-zero frame
                break
            pending.append(frame)
            if len(pending) >= chunk_frames:
                yield flush()
        if pending:
            yield flush()
