"""`DiaTTS`: text -> Dia code rows -> DAC 44.1 kHz audio (`mlx_impl.tts.TextToSpeech`).

Defaults (`DEFAULTS`): nari-labs/dia `Dia.generate`'s cfg_scale 3.0, temperature 1.3, top_p
0.95, cfg_filter_top_k 35, given to transformers' Dia generation as guidance_scale / temperature
/ top_p / top_k (there the top-k filters both the guidance and the final draw); max_tokens 3071
(the decoder's 3072 positions less the bos row; nari-labs' default is the model's audio length).

Text: `[S1]` / `[S2]` speaker tags and non-verbal cues as text, e.g. "[S1] Hello. (laughs)"
(`tokens.py`; an unknown tag such as [S3] is an error). Voice cloning (`voice` = a reference
clip, path or (N,) float32 at 44.1 kHz, with `voice_text` its transcript): the clip's DAC codes
are the decoder's audio prompt and its transcript is put before the text (upstream's usage:
processor(text=transcript + text, audio=clip)); the audio returned is the generated part only.
`clone(clip)` (the CLI's `--ref-audio`, `mlx_impl.tts.reference_audio`) makes that voice from a
checked `ReferenceClip` whose transcript, given or our Whisper's, gets a leading `[S1]` when it
has no speaker tag: a `DiaVoice`, passed as `voice` without `voice_text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.dia import tokens as T
from mlx_impl.dia.generate import Generation, check_options, generate
from mlx_impl.tts import SamplingOptions, Speech
from mlx_impl.tts.reference_audio import ReferenceClip, ReferenceNeeds

DEFAULTS = SamplingOptions(temperature=1.3, top_k=35, top_p=0.95, cfg_scale=3.0,
                           max_tokens=3071)

# A cloning clip's length: upstream suggests 5-10 s of reference audio; its DAC frames (86 per
# second) share the decoder's 3072 positions with the generated audio, so at most 20 s.
CLONE_MIN_SECONDS, CLONE_MAX_SECONDS = 1.0, 20.0


@dataclass(frozen=True)
class DiaVoice:
    """A cloned voice: the reference clip at the DAC's rate and its tagged transcript."""

    audio: np.ndarray  # (N,) float32 at 44.1 kHz
    text: str  # "[S1] ..." what the clip says


class DiaTTS:
    tokens_per_frame = 1  # one row of 9 codes per step (CLI progress)
    uses_cfg = True  # the CLI's --cfg-scale applies
    takes_voice_text = True  # the CLI's --voice-text: the reference clip's transcript

    def __init__(self, model, dac):
        self.model, self.dac = model, dac
        self.defaults, self.default_voice = DEFAULTS, None
        self.sample_rate = dac.sample_rate
        self.reference = ReferenceNeeds(self.sample_rate, CLONE_MIN_SECONDS, CLONE_MAX_SECONDS)

    def clone(self, clip: ReferenceClip) -> DiaVoice:
        """The voice of a checked reference clip (its transcript tagged `[S1]` if untagged)."""
        text = clip.text.strip()
        if not T._TAG.match(text):
            text = f"[S1] {text}"
        T.check_text(text, self.model.config.encoder_config.max_position_embeddings)
        return DiaVoice(np.asarray(clip.audio, np.float32).reshape(-1), text)

    @staticmethod
    def unpack(voice, voice_text: str | None):
        """(clip, transcript) of a `DiaVoice` or of a clip given with its transcript."""
        if isinstance(voice, DiaVoice):
            if voice_text is not None:
                raise ValueError("a cloned voice carries its transcript; drop voice_text "
                                 "(--voice-text)")
            return voice.audio, voice.text
        return voice, voice_text

    # -- pieces ------------------------------------------------------------------------------

    def text_ids(self, text: str, voice_text: str | None = None) -> list[int]:
        limit = self.model.config.encoder_config.max_position_embeddings
        full = text if voice_text is None else f"{voice_text.strip()} {text.strip()}"
        T.check_text(text, limit)
        T.check_text(full, limit)
        return T.encode_text(full)

    def prompt_frames(self, voice) -> np.ndarray | None:
        """A reference clip's DAC codes as decoder prompt frames (F, C), or None."""
        if voice is None:
            return None
        if isinstance(voice, (str, Path)):
            from mlx_impl.audio_io import load_audio

            voice = load_audio(str(voice), self.sample_rate)
        audio = np.asarray(voice, dtype=np.float32).reshape(-1)
        if audio.size == 0 or not np.all(np.isfinite(audio)):
            raise ValueError("the reference clip is empty or holds NaN/Inf samples")
        # zeros up to a whole frame, as DiaFeatureExtractor pads (pad_to_multiple_of=hop)
        hop = self.dac.cfg.hop_length
        audio = np.pad(audio, (0, -audio.size % hop))
        codes = self.dac.encode(mx.array(audio[None]), self.sample_rate).codes  # (1, C, F)
        return np.array(codes[0]).T.astype(np.int64)

    def check_voice(self, voice, voice_text: str | None) -> None:
        if voice is None:
            if voice_text is not None:
                raise ValueError("voice_text is the transcript of a reference clip; pass the "
                                 "clip as voice too")
            return
        if isinstance(voice, (str, Path)) and not Path(voice).exists():
            raise ValueError(f"Dia has no named voices; a voice is a reference clip (an audio "
                             f"file, resampled to {self.sample_rate} Hz) with its transcript, "
                             f"got {str(voice)!r} (no such file)")
        if voice_text is None or not str(voice_text).strip():
            raise ValueError("voice cloning needs the reference clip's transcript (voice_text, "
                             "CLI --voice-text), with its speaker tags, e.g. \"[S1] ...\"")

    def check(self, text: str, voice=None, options: SamplingOptions | None = None,
              voice_text: str | None = None) -> list[int]:
        """The text ids, after checking text, options and lengths (what `synthesize` would
        raise, before any generation)."""
        voice, voice_text = self.unpack(voice, voice_text)
        self.check_voice(voice, voice_text)
        ids = self.text_ids(text, voice_text)
        check_options(self.model, options or DEFAULTS, 1)
        return ids

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(C, F) codes -> (F * hop,) float32 at `sample_rate`."""
        if codes.shape[1] == 0:
            return np.zeros(0, np.float32)
        audio = self.dac.decode(mx.array(codes[None].astype(np.int32)))
        return np.array(audio.astype(mx.float32)).reshape(-1)

    def generate(self, text: str, voice=None, options: SamplingOptions | None = None,
                 seed: int = 0, on_token=None, voice_text: str | None = None) -> Generation:
        self.check(text, voice, options, voice_text)
        voice, voice_text = self.unpack(voice, voice_text)
        return generate(self.model, self.text_ids(text, voice_text), options or DEFAULTS,
                        seed=seed, prompt_frames=self.prompt_frames(voice), on_step=on_token)

    # -- mlx_impl.tts.TextToSpeech -----------------------------------------------------------

    def synthesize(self, text: str, voice: str | Path | np.ndarray | None = None, *,
                   options: SamplingOptions | None = None, seed: int = 0, on_token=None,
                   voice_text: str | None = None) -> Speech:
        gen = self.generate(text, voice, options, seed, on_token, voice_text)
        codes = gen.codes
        return Speech(self.decode(codes), self.sample_rate, codes,
                      {"stop": gen.stop, "n_tokens": gen.steps, "n_frames": int(codes.shape[1])})
