"""Long-form transcription: sequential 30-s windows, temperature fallback, word timestamps.

Upstream: openai-whisper 20250625 `whisper/transcribe.py` (`transcribe`). Same seek logic
(segments split at consecutive timestamps, a single timestamp ending the window, clip_timestamps,
hallucination_silence_threshold), the same fallback rules (compression ratio, average log
probability, no-speech probability), prompt conditioning and word-timestamp refinement.

Deviations from upstream:
- The result is an `mlx_impl.stt.Transcription` (its `to_dict()` is upstream's dict).
- Each window's encoder runs once and its output is shared by every fallback temperature and by
  the word alignment (upstream re-encodes the window for each).
- The whole file's log-mel is computed up front, as upstream does. A per-window mel would not be
  identical: upstream clamps every frame at (global maximum - 8) in log10 units, and the global
  maximum needs the whole file. The mel is (frames, n_mels) float32, 32 KB per second of audio
  (about half the size of the 16 kHz float32 samples), so memory stays proportional to the audio.
- Sampling at temperature > 0 uses MLX's RNG seeded from `seed` (see decoding.py); `progress`
  replaces upstream's `verbose=False` progress bar; no console printing of segments.
- An empty, NaN/inf or wrongly shaped array raises ValueError; silence is valid input.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np

from mlx_impl.audio_io import load_audio
from mlx_impl.layers.audio import log_mel_spectrogram
from mlx_impl.stt import Segment, Transcription, Word
from mlx_impl.whisper.alignment import add_word_timestamps, check_alignment_heads
from mlx_impl.whisper.decoding import (
    DecodingOptions,
    DecodingResult,
    decode,
    detect_language,
    task_tokenizer,
)
from mlx_impl.whisper.timing import APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS
from mlx_impl.whisper.tokenizer import Tokenizer, tokenizer_for_model
from weights.whisper_audio import (
    FRAMES_PER_SECOND,
    HOP_LENGTH,
    N_FRAMES,
    N_SAMPLES,
    SAMPLE_RATE,
    pad_or_trim,
)

PUNCTUATION = "\"'“¿([{-\"'.。,，!！?？:：”)]}、"


def load(source: str | Path = "whisper-base", dtype: mx.Dtype = mx.float32):
    """(model, tokenizer) from a registered name or a path, reading the weights once."""
    from mlx_impl.whisper import checkpoint
    from mlx_impl.whisper.load import from_state
    from weights.whisper import load as load_weights

    if checkpoint.is_mlx_checkpoint(source):  # config.json + weights.safetensors (MLX layout)
        model = checkpoint.load(source, dtype)
        tokenizer_json = checkpoint.tokenizer_path(source)
        if tokenizer_json is None:
            raise ValueError(f"{source} has no tokenizer.json beside its weights; copy the "
                             "model's tokenizer.json into it")
        return model, tokenizer_for_model(tokenizer_json, model.dims.n_vocab)
    w = load_weights(source)
    if w.tokenizer_json is None:
        raise ValueError(f"{w.source} has no tokenizer.json beside its weights; put the model's "
                         "tokenizer.json in the weights folder")
    model = from_state(w.dims, w.state, dtype=dtype, alignment_heads=w.alignment_heads,
                       consume=True)
    return model, tokenizer_for_model(w.tokenizer_json, w.dims["n_vocab"])


def _as_audio(audio, sample_rate: int | None) -> np.ndarray:
    if isinstance(audio, (str, os.PathLike)):
        return load_audio(audio)
    if isinstance(audio, mx.array):
        audio = np.array(audio)
    if not isinstance(audio, np.ndarray):
        raise TypeError(f"audio must be a path or an array of samples, got {type(audio).__name__}")
    return load_audio(audio, sample_rate=sample_rate)


def _get_end(segments: list[dict]) -> float | None:
    return next((w["end"] for s in reversed(segments) for w in reversed(s["words"])),
                segments[-1]["end"] if segments else None)


def _word_anomaly_score(word: dict) -> float:
    probability = word.get("probability", 0.0)
    duration = word["end"] - word["start"]
    score = 0.0
    if probability < 0.15:
        score += 1.0
    if duration < 0.133:
        score += (0.133 - duration) * 15
    if duration > 2.0:
        score += duration - 2.0
    return score


def _is_segment_anomaly(segment: dict | None) -> bool:
    if segment is None or not segment["words"]:
        return False
    words = [w for w in segment["words"] if w["word"] not in PUNCTUATION][:8]
    score = sum(_word_anomaly_score(w) for w in words)
    return score >= 3 or score + 0.01 >= len(words)


def _next_words_segment(segments: list[dict]) -> dict | None:
    return next((s for s in segments if s["words"]), None)


def transcribe(
    model,
    audio: str | os.PathLike | np.ndarray | mx.array,
    *,
    tokenizer: Tokenizer,
    sample_rate: int | None = None,
    temperature: float | tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    compression_ratio_threshold: float | None = 2.4,
    logprob_threshold: float | None = -1.0,
    no_speech_threshold: float | None = 0.6,
    condition_on_previous_text: bool = True,
    initial_prompt: str | None = None,
    carry_initial_prompt: bool = False,
    word_timestamps: bool = False,
    prepend_punctuations: str = PREPEND_PUNCTUATIONS,
    append_punctuations: str = APPEND_PUNCTUATIONS,
    clip_timestamps: str | list[float] = "0",
    hallucination_silence_threshold: float | None = None,
    seed: int = 0,
    progress: bool = False,
    on_segment=None,
    **decode_options,
) -> Transcription:
    """Transcribe (or translate) audio of any length with upstream's window and fallback logic.

    audio: a file path, or samples at `sample_rate` Hz (None: 16 kHz). tokenizer: the model's
    (see `load`). temperature: a value or the fallback sequence. decode_options: fields of
    `DecodingOptions` (language, task, beam_size, best_of, patience, length_penalty,
    suppress_tokens, ...). progress: a tqdm bar over the audio on stderr. on_segment: called
    with each segment's dict (upstream's keys) as soon as its window is decoded, in order (the
    server streams these as text deltas); it does not change the result.
    """
    bad = sorted(set(decode_options) - {f.name for f in dataclasses.fields(DecodingOptions)})
    if bad:
        raise TypeError(f"unknown transcribe options {bad}; valid decoding options: "
                        f"{[f.name for f in dataclasses.fields(DecodingOptions)]}")
    for name in ("prompt", "temperature", "seed"):
        if name in decode_options:
            raise TypeError(f"{name} is set by transcribe itself; use initial_prompt/temperature/"
                            "seed arguments")
    if word_timestamps:
        check_alignment_heads(model)
    samples = _as_audio(audio, sample_rate)
    dims = model.dims

    # Upstream pads 30 s of silence so every window can be sliced at full length.
    mel = log_mel_spectrogram(mx.array(samples), dims.n_mels, padding=N_SAMPLES)  # (frames, mels)
    mx.eval(mel)  # every window reads it; evaluated here, not inside the first window's encoder
    content_frames = mel.shape[0] - N_FRAMES
    content_duration = float(content_frames * HOP_LENGTH / SAMPLE_RATE)

    language = decode_options.get("language")
    if language is None:
        if not dims.is_multilingual:
            language = "en"
        else:
            _, probs = detect_language(model, pad_or_trim(mel, N_FRAMES, axis=0), tokenizer)
            language = max(probs, key=probs.get)
    task = decode_options.get("task", "transcribe")
    tokenizer = task_tokenizer(tokenizer, dims.is_multilingual, language, task)
    language = tokenizer.language or "en"
    decode_options["language"] = language

    if isinstance(clip_timestamps, str):
        clip_timestamps = [float(ts) for ts in clip_timestamps.split(",") if ts.strip()]
    seek_points = [round(ts * FRAMES_PER_SECOND) for ts in clip_timestamps] or [0]
    if len(seek_points) % 2 == 1:
        seek_points.append(content_frames)
    seek_clips = list(zip(seek_points[::2], seek_points[1::2]))

    temperatures = [temperature] if isinstance(temperature, (int, float)) else list(temperature)
    n_decodes = 0

    def decode_with_fallback(features: mx.array) -> DecodingResult:
        nonlocal n_decodes
        result = None
        for t in temperatures:
            kwargs = dict(decode_options)
            if t > 0:  # beam search is for temperature 0 only
                kwargs.pop("beam_size", None)
                kwargs.pop("patience", None)
            else:  # best-of-N is for sampling only
                kwargs.pop("best_of", None)
            options = DecodingOptions(**kwargs, temperature=t, seed=seed + n_decodes)
            n_decodes += 1
            result = decode(model, features, options, tokenizer=tokenizer)[0]

            needs_fallback = False
            if (compression_ratio_threshold is not None
                    and result.compression_ratio > compression_ratio_threshold):
                needs_fallback = True  # too repetitive
            if logprob_threshold is not None and result.avg_logprob < logprob_threshold:
                needs_fallback = True  # too improbable
            if (no_speech_threshold is not None and result.no_speech_prob > no_speech_threshold
                    and logprob_threshold is not None and result.avg_logprob < logprob_threshold):
                needs_fallback = False  # silence: keep it, the caller skips the window
            if not needs_fallback:
                break
        return result

    clip_idx = 0
    seek = seek_clips[clip_idx][0]
    input_stride = N_FRAMES // dims.n_audio_ctx  # mel frames per output position: 2
    time_precision = input_stride * HOP_LENGTH / SAMPLE_RATE  # 0.02 s per timestamp step
    all_tokens: list[int] = []
    all_segments: list[dict] = []
    prompt_reset_since = 0

    remaining_prompt_length = dims.n_text_ctx // 2 - 1
    initial_prompt_tokens: list[int] = []
    if initial_prompt is not None:
        initial_prompt_tokens = tokenizer.encode(" " + initial_prompt.strip())
        all_tokens.extend(initial_prompt_tokens)
        remaining_prompt_length -= len(initial_prompt_tokens)

    def new_segment(*, start, end, tokens, result) -> dict:
        return {"seek": seek, "start": start, "end": end,
                "text": tokenizer.decode([t for t in tokens if t < tokenizer.eot]),
                "tokens": tokens, "temperature": result.temperature,
                "avg_logprob": result.avg_logprob, "compression_ratio": result.compression_ratio,
                "no_speech_prob": result.no_speech_prob}

    import tqdm

    pbar = tqdm.tqdm(total=content_frames, unit="frames", disable=not progress, file=sys.stderr)
    last_speech_timestamp = 0.0
    with pbar:
        while clip_idx < len(seek_clips):
            seek_clip_start, seek_clip_end = seek_clips[clip_idx]
            seek = max(seek, seek_clip_start)
            if seek >= seek_clip_end:
                clip_idx += 1
                if clip_idx < len(seek_clips):
                    seek = seek_clips[clip_idx][0]
                continue
            time_offset = float(seek * HOP_LENGTH / SAMPLE_RATE)
            window_end_time = float((seek + N_FRAMES) * HOP_LENGTH / SAMPLE_RATE)
            segment_size = min(N_FRAMES, content_frames - seek, seek_clip_end - seek)
            mel_segment = pad_or_trim(mel[seek:seek + segment_size], N_FRAMES, axis=0)
            segment_duration = segment_size * HOP_LENGTH / SAMPLE_RATE
            features = model.encoder(mel_segment[None])  # once per window

            if carry_initial_prompt:
                n_ignored = max(len(initial_prompt_tokens), prompt_reset_since)
                remaining = all_tokens[n_ignored:][-remaining_prompt_length:]
                decode_options["prompt"] = initial_prompt_tokens + remaining
            else:
                decode_options["prompt"] = all_tokens[prompt_reset_since:]

            result = decode_with_fallback(features)
            tokens = list(result.tokens)

            if no_speech_threshold is not None:
                should_skip = result.no_speech_prob > no_speech_threshold
                if logprob_threshold is not None and result.avg_logprob > logprob_threshold:
                    should_skip = False  # confident text despite the no-speech probability
                if should_skip:
                    seek += segment_size
                    continue

            previous_seek = seek
            current_segments: list[dict] = []

            is_ts = [t >= tokenizer.timestamp_begin for t in tokens]
            single_timestamp_ending = is_ts[-2:] == [False, True]
            consecutive = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
            if consecutive:
                # segments end at each pair of consecutive timestamps
                slices = consecutive + ([len(tokens)] if single_timestamp_ending else [])
                last_slice = 0
                for current_slice in slices:
                    sliced = tokens[last_slice:current_slice]
                    start_pos = sliced[0] - tokenizer.timestamp_begin
                    end_pos = sliced[-1] - tokenizer.timestamp_begin
                    current_segments.append(new_segment(
                        start=time_offset + start_pos * time_precision,
                        end=time_offset + end_pos * time_precision, tokens=sliced, result=result))
                    last_slice = current_slice
                if single_timestamp_ending:
                    seek += segment_size  # no speech after the last timestamp
                else:
                    # the unfinished last segment is decoded again from its start
                    last_timestamp_pos = tokens[last_slice - 1] - tokenizer.timestamp_begin
                    seek += last_timestamp_pos * input_stride
            else:
                duration = segment_duration
                stamps = [t for t, s in zip(tokens, is_ts) if s]
                if stamps and stamps[-1] != tokenizer.timestamp_begin:
                    # no consecutive timestamps but a timestamp: it ends the segment
                    duration = (stamps[-1] - tokenizer.timestamp_begin) * time_precision
                current_segments.append(new_segment(start=time_offset,
                                                    end=time_offset + duration, tokens=tokens,
                                                    result=result))
                seek += segment_size

            if word_timestamps:
                add_word_timestamps(
                    segments=current_segments, model=model, tokenizer=tokenizer, mel=features,
                    num_frames=segment_size, prepend_punctuations=prepend_punctuations,
                    append_punctuations=append_punctuations,
                    last_speech_timestamp=last_speech_timestamp)

                if not single_timestamp_ending:
                    last_word_end = _get_end(current_segments)
                    if last_word_end is not None and last_word_end > time_offset:
                        seek = round(last_word_end * FRAMES_PER_SECOND)

                if hallucination_silence_threshold is not None:
                    threshold = hallucination_silence_threshold
                    if not single_timestamp_ending:
                        last_word_end = _get_end(current_segments)
                        if last_word_end is not None and last_word_end > time_offset:
                            remaining_duration = window_end_time - last_word_end
                            if remaining_duration > threshold:
                                seek = round(last_word_end * FRAMES_PER_SECOND)
                            else:
                                seek = previous_seek + segment_size

                    # a possibly hallucinated first segment: skip the silence before it
                    first_segment = _next_words_segment(current_segments)
                    if first_segment is not None and _is_segment_anomaly(first_segment):
                        gap = first_segment["start"] - time_offset
                        if gap > threshold:
                            seek = previous_seek + round(gap * FRAMES_PER_SECOND)
                            continue

                    # drop a hallucination surrounded by silence or more hallucinations
                    hal_last_end = last_speech_timestamp
                    for si in range(len(current_segments)):
                        segment = current_segments[si]
                        if not segment["words"]:
                            continue
                        if _is_segment_anomaly(segment):
                            next_segment = _next_words_segment(current_segments[si + 1:])
                            if next_segment is not None:
                                hal_next_start = next_segment["words"][0]["start"]
                            else:
                                hal_next_start = time_offset + segment_duration
                            silence_before = (segment["start"] - hal_last_end > threshold
                                              or segment["start"] < threshold
                                              or segment["start"] - time_offset < 2.0)
                            silence_after = (hal_next_start - segment["end"] > threshold
                                             or _is_segment_anomaly(next_segment)
                                             or window_end_time - segment["end"] < 2.0)
                            if silence_before and silence_after:
                                seek = round(max(time_offset + 1, segment["start"])
                                             * FRAMES_PER_SECOND)
                                if content_duration - segment["end"] < threshold:
                                    seek = content_frames
                                current_segments[si:] = []
                                break
                        hal_last_end = segment["end"]

                last_word_end = _get_end(current_segments)
                if last_word_end is not None:
                    last_speech_timestamp = last_word_end

            # instantaneous or text-free segments are kept empty
            for segment in current_segments:
                if segment["start"] == segment["end"] or segment["text"].strip() == "":
                    segment["text"] = ""
                    segment["tokens"] = []
                    segment["words"] = []

            for segment in current_segments:
                all_segments.append({"id": len(all_segments), **segment})
                if on_segment is not None:
                    on_segment(all_segments[-1])
            all_tokens.extend(t for segment in current_segments for t in segment["tokens"])

            if not condition_on_previous_text or result.temperature > 0.5:
                # a high-temperature window is not fed as the next prompt
                prompt_reset_since = len(all_tokens)

            pbar.update(min(content_frames, seek) - previous_seek)

    text = tokenizer.decode(all_tokens[len(initial_prompt_tokens):])
    return Transcription(text=text, segments=tuple(_to_segment(s, word_timestamps)
                                                   for s in all_segments), language=language)


def _to_segment(s: dict, word_timestamps: bool) -> Segment:
    words = None
    if word_timestamps:
        words = tuple(Word(w["word"], float(w["start"]), float(w["end"]),
                           float(w["probability"])) for w in s.get("words", []))
    return Segment(id=s["id"], seek=s["seek"], start=float(s["start"]), end=float(s["end"]),
                   text=s["text"], tokens=tuple(s["tokens"]), temperature=s["temperature"],
                   avg_logprob=s["avg_logprob"], compression_ratio=s["compression_ratio"],
                   no_speech_prob=s["no_speech_prob"], words=words)


class WhisperSTT:
    """Whisper behind the common `SpeechToText` interface: load once, transcribe many."""

    sample_rate = SAMPLE_RATE

    def __init__(self, model, tokenizer: Tokenizer, name: str = "whisper"):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name

    @classmethod
    def load(cls, source: str | Path = "whisper-base", dtype: mx.Dtype = mx.float32
             ) -> WhisperSTT:
        model, tokenizer = load(source, dtype)
        return cls(model, tokenizer, name=str(source))

    def transcribe(self, audio, sample_rate: int | None = None, **options) -> Transcription:
        """Transcribe a file or samples (at `sample_rate`, None: 16 kHz); `options` are
        `transcribe()`'s keyword arguments."""
        return transcribe(self.model, audio, tokenizer=self.tokenizer, sample_rate=sample_rate,
                          **options)
