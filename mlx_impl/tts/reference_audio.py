"""Reference clips for voice cloning: load, check, and transcribe a speaker's recording.

One small API for every TTS model that clones a voice (OuteTTS speaker profiles, Dia's audio
prompt, CSM/Marvis context turns):

    clip = load_reference("me.wav", text=None, target_rate=24000)   # -> ReferenceClip
    clip.audio        # (N,) float32 mono at clip.sample_rate (== target_rate)
    clip.text         # the transcript: given, or from our Whisper (`mlx_impl.whisper`)
    clip.words        # per-word timings (seconds) when word_timestamps=True, else None

A model that clones declares what it needs as `reference: ReferenceNeeds` (its codec rate, its
length limits, whether it needs word timings) and turns a clip into a voice with
`clone(clip) -> voice`, a value its `synthesize(text, voice)` accepts (OuteTTS: a speaker
profile); the TTS CLI (`--ref-audio PATH [--ref-text TEXT]`) calls only these:

    clip = load_reference(path, text, **tts.reference.kwargs())
    speech = tts.synthesize("Hello", tts.clone(clip))

What is checked, each failure a `ValueError` naming the problem and the fix:
- unreadable input: a missing file, an empty (0-byte) file, a file that is not audio
  (`mlx_impl.audio_io.load_audio`'s errors, prefixed with "reference audio"), no samples;
- silence: a clip whose peak is below `SILENCE_PEAK` has no voice to clone;
- the sample rate: a clip below `MIN_SOURCE_RATE` (16 kHz) is refused (telephone-band audio has
  nothing above 4-8 kHz for the codec to copy; record or export at >= 16 kHz); any other rate is
  resampled to `target_rate` (the model's codec rate) with audio_io's polyphase filter, since
  every cloning model here encodes the clip with its own codec at a fixed rate. An array passed
  without its rate is refused (`sample_rate=` is required);
- the length: shorter than `min_seconds` or longer than `max_seconds` (the caller's limits:
  OuteTTS refuses > 20 s as upstream's `create_speaker_from_whisper` does).

Transcript: when `text` is None, our Whisper transcribes the clip (`whisper` names an installed
model as `python -m mlx_impl.whisper --model` resolves it: whisper-base, whisper-tiny.en, or a
weights path); a clip in which Whisper hears no words is an error asking for `text=`. With
`word_timestamps=True` the words come with start/end times: from Whisper's word-timestamp
transcription when it made the transcript (as outetts' `transcribe_once_word_level`), or by
aligning the given text to the audio with Whisper's cross-attention alignment (`find_alignment`,
the same DTW over alignment heads) when the text was given. Pass `stt=` (a loaded
`mlx_impl.whisper.transcribe.WhisperSTT`) to reuse one model over many clips.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlx_impl.stt import Word

MIN_SOURCE_RATE = 16000  # Hz; lower-rate clips are refused (module docstring)
SILENCE_PEAK = 1e-4  # a clip whose |peak| is below this is silence
MIN_SECONDS = 1.0  # default limits; a model passes its own
MAX_SECONDS = 30.0
WHISPER_MODEL = "whisper-base"  # the STT CLI's default


@dataclass(frozen=True)
class ReferenceNeeds:
    """What a cloning model needs of a reference clip (`load_reference`'s keyword arguments)."""

    sample_rate: int  # Hz the clip is resampled to (the model's codec rate)
    min_seconds: float = MIN_SECONDS
    max_seconds: float = MAX_SECONDS
    word_timestamps: bool = False  # per-word timings (OuteTTS's speaker profile)

    def kwargs(self) -> dict:
        return {"target_rate": self.sample_rate, "min_seconds": self.min_seconds,
                "max_seconds": self.max_seconds, "word_timestamps": self.word_timestamps}


@dataclass(frozen=True)
class ReferenceClip:
    audio: np.ndarray  # (N,) float32 mono at sample_rate
    sample_rate: int  # Hz (the model's codec rate)
    text: str  # what is said in the clip
    words: tuple[Word, ...] | None = None  # word timings (s), when asked for
    source: str = "array"  # the path it came from, for messages
    text_from: str = "given"  # "given" or the Whisper model that transcribed it

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] / self.sample_rate


def _read(source, sample_rate: int | None) -> tuple[np.ndarray, int, str]:
    """(samples (N,) float64 mono, their rate, a name for messages), at the source's own rate."""
    from mlx_impl.audio_io import load_audio_native

    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise ValueError("reference audio given as an array without its rate; pass "
                             "sample_rate= (Hz)")
        audio, rate = load_audio_native(source, sample_rate=sample_rate)
        return audio, rate, "array"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"reference audio must be a path or an array, got {type(source).__name__}")
    try:
        audio, rate = load_audio_native(source, sample_rate=sample_rate)
    except FileNotFoundError as e:
        raise ValueError(f"reference audio: {e}; pass the path of an existing audio file") from None
    except ValueError as e:
        raise ValueError(f"reference audio: {e}") from None
    return audio, rate, str(source)


def load_reference(source: str | os.PathLike | np.ndarray, text: str | None = None, *,
                   target_rate: int, sample_rate: int | None = None,
                   min_seconds: float = MIN_SECONDS, max_seconds: float = MAX_SECONDS,
                   word_timestamps: bool = False, whisper: str | Path = WHISPER_MODEL,
                   stt=None) -> ReferenceClip:
    """A checked reference clip at `target_rate` with its transcript (module docstring).

    source: an audio file, or samples (N,) / (N, channels) with `sample_rate`.
    text: what the clip says; None: transcribed by Whisper (`whisper`, or `stt`).
    """
    audio, rate, name = _read(source, sample_rate)
    where = f"reference audio {name}"
    if rate < MIN_SOURCE_RATE:
        raise ValueError(f"{where} is sampled at {rate} Hz, below {MIN_SOURCE_RATE} Hz: too little "
                         f"bandwidth to clone a voice from; record or export it at >= "
                         f"{MIN_SOURCE_RATE} Hz")
    seconds = audio.shape[0] / rate
    if seconds < min_seconds:
        raise ValueError(f"{where} is {seconds:.2f} s long, shorter than {min_seconds:g} s; "
                         f"use a clip of {min_seconds:g} to {max_seconds:g} s of speech")
    if seconds > max_seconds:
        raise ValueError(f"{where} is {seconds:.2f} s long, longer than this model's limit of "
                         f"{max_seconds:g} s; cut it to {max_seconds:g} s or less (a sentence or "
                         "two of clean speech)")
    peak = float(np.abs(audio).max())
    if peak < SILENCE_PEAK:
        raise ValueError(f"{where} is silent (peak {peak:.1e}); pass a clip of the voice speaking")
    if text is not None and not text.strip():
        raise ValueError("the reference text is empty; pass what the clip says, or leave it out "
                         "to transcribe the clip with Whisper")
    from mlx_impl.audio_io import resample

    clip_audio = np.asarray(resample(audio, rate, target_rate), np.float32)
    text_from = "given"
    words = None
    if text is None or word_timestamps:
        stt = stt if stt is not None else load_whisper(whisper)
        if text is None:
            text, words = transcribe_reference(stt, audio, rate, word_timestamps)
            text_from = stt.name
        else:
            words = align_words(stt, audio, rate, text)
    return ReferenceClip(clip_audio, int(target_rate), " ".join(text.split()),
                         None if words is None else tuple(words), name, text_from)


def load_whisper(model: str | Path = WHISPER_MODEL):
    """Our Whisper (`WhisperSTT`) for transcripts; an unknown or not-installed model is a
    ValueError naming what to pass."""
    from mlx_impl.whisper.transcribe import WhisperSTT
    from weights.whisper import WeightsError

    try:
        return WhisperSTT.load(model)
    except (WeightsError, FileNotFoundError, ValueError) as e:
        raise ValueError(f"cannot load Whisper {str(model)!r} to transcribe the reference clip "
                         f"({e}); install it, pass another model, or give the transcript "
                         "(--ref-text)") from None


def transcribe_reference(stt, audio: np.ndarray, sample_rate: int,
                         word_timestamps: bool = False) -> tuple[str, list[Word] | None]:
    """(transcript, words or None) of a clip by Whisper at temperature 0 (greedy, no fallback
    randomness: the same clip gives the same transcript)."""
    from mlx_impl.audio_io import resample
    from weights.whisper_audio import SAMPLE_RATE

    samples = np.asarray(resample(audio, sample_rate, SAMPLE_RATE), np.float32)
    result = stt.transcribe(samples, SAMPLE_RATE, temperature=0.0, word_timestamps=word_timestamps,
                            condition_on_previous_text=False)
    text = " ".join(result.text.split())
    if not text:
        raise ValueError("Whisper heard no words in the reference clip; pass a clip of clear "
                         "speech, or give its transcript (--ref-text)")
    words = None
    if word_timestamps:
        words = [w for s in result.segments for w in (s.words or ())]
    return text, words


def align_words(stt, audio: np.ndarray, sample_rate: int, text: str) -> list[Word]:
    """Word timings of a GIVEN transcript in a clip of <= 30 s: Whisper's cross-attention
    alignment (`mlx_impl.whisper.alignment.find_alignment`) of the text's tokens, punctuation
    merged as in transcription."""
    import mlx.core as mx

    from mlx_impl.audio_io import resample
    from mlx_impl.layers.audio import log_mel_spectrogram
    from mlx_impl.whisper.alignment import check_alignment_heads, find_alignment
    from mlx_impl.whisper.decoding import detect_language, task_tokenizer
    from mlx_impl.whisper.timing import merge_punctuations
    from weights.whisper_audio import N_FRAMES, N_SAMPLES, SAMPLE_RATE, pad_or_trim

    model, tokenizer = stt.model, stt.tokenizer
    check_alignment_heads(model)
    samples = np.asarray(resample(audio, sample_rate, SAMPLE_RATE), np.float32)
    if samples.shape[0] > N_SAMPLES:
        raise ValueError(f"aligning a given transcript needs a clip of <= 30 s, got "
                         f"{samples.shape[0] / SAMPLE_RATE:.1f} s; cut the clip")
    mel = log_mel_spectrogram(mx.array(samples), model.dims.n_mels, padding=N_SAMPLES)
    n_frames = mel.shape[0] - N_FRAMES
    window = pad_or_trim(mel, N_FRAMES, axis=0)
    language = None
    if model.dims.is_multilingual:
        _, probs = detect_language(model, window, tokenizer)
        language = max(probs, key=probs.get)
    tok = task_tokenizer(tokenizer, model.dims.is_multilingual, language, "transcribe")
    tokens = tok.encode(" " + " ".join(text.split()))
    timings = find_alignment(model, tok, tokens, window, n_frames)
    merge_punctuations(timings)
    return [Word(t.word, round(float(t.start), 2), round(float(t.end), 2), float(t.probability))
            for t in timings if t.word]
