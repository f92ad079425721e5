"""Word-level timestamps from the decoder's cross-attention: alignment and segment refinement.

Upstream: openai-whisper 20250625 `whisper/timing.py` (`find_alignment`, `add_word_timestamps`).
The numeric steps (median filter, DTW, word times from the DTW path, punctuation merging) are in
`mlx_impl.whisper.timing`; this file runs the model to get the cross-attention scores of the
alignment heads and applies upstream's segment-boundary heuristics.

Deviations from upstream:
- `find_alignment` takes the window's mel or its already-computed encoder output, so a window's
  encoder runs once for decoding and alignment (upstream re-runs the encoder here).
- Cross-attention scores come from the decoder's `cross_qk` argument instead of forward hooks and
  a global switch that turns off fused attention.
- The normalisation of the attention weights (softmax, standardise over tokens) runs in numpy
  float32, as upstream's torch float32 ops, on the heads' scores copied to the host.
"""

from __future__ import annotations

import itertools

import mlx.core as mx
import numpy as np

from weights.whisper_audio import HOP_LENGTH, SAMPLE_RATE
from mlx_impl.whisper.timing import (
    APPEND_PUNCTUATIONS,
    PREPEND_PUNCTUATIONS,
    WordTiming,
    dtw,
    median_filter,
    merge_punctuations,
    word_timings,
)
from mlx_impl.whisper.tokenizer import Tokenizer


class NoAlignmentHeadsError(ValueError):
    """The weights carry no alignment heads, so word timestamps cannot be computed."""


def check_alignment_heads(model) -> None:
    if model.alignment_heads is None or model.alignment_heads.size == 0:
        raise NoAlignmentHeadsError(
            "word timestamps need the model's alignment heads (which cross-attention heads follow "
            "time), and these weights have none (no 'alignment_heads' in their config.json / "
            "generation_config.json); use weights that list them (whisper-base, whisper-tiny.en) "
            "or turn word timestamps off")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def find_alignment(model, tokenizer: Tokenizer, text_tokens: list[int], mel: mx.array,
                   num_frames: int, *, medfilt_width: int = 7,
                   qk_scale: float = 1.0) -> list[WordTiming]:
    """Start/end (seconds into the window) and probability of each word of `text_tokens`.

    mel: the window's mel (n_frames, n_mels) / (1, n_frames, n_mels), or its encoder output
    (1, n_audio_ctx, n_audio_state). num_frames: mel frames of real audio in the window.
    """
    check_alignment_heads(model)
    if len(text_tokens) == 0:
        return []
    dims = model.dims
    xa = mel[None] if mel.ndim == 2 else mel
    if xa.shape[-2:] != (dims.n_audio_ctx, dims.n_audio_state):
        xa = model.encoder(xa)

    tokens = [*tokenizer.sot_sequence, tokenizer.no_timestamps, *text_tokens, tokenizer.eot]
    qks: list[mx.array] = []
    logits, _ = model.decoder(mx.array([tokens], dtype=mx.int32), xa, cross_qk=qks)
    n_sot = len(tokenizer.sot_sequence)
    probs = mx.softmax(logits[0, n_sot:, : tokenizer.eot], axis=-1)  # predicts text tokens
    text_probs = probs[mx.arange(len(text_tokens)), mx.array(text_tokens)]

    heads = model.alignment_heads.tolist()
    weights = mx.stack([qks[layer][0, head] for layer, head in heads])  # (heads, tokens, frames)
    weights = weights[:, :, : num_frames // 2].astype(mx.float32)
    mx.eval(weights, text_probs)
    weights = _softmax(np.array(weights) * np.float32(qk_scale))
    mean = weights.mean(axis=-2, keepdims=True)
    std = weights.std(axis=-2, keepdims=True)  # population std, as upstream's unbiased=False
    weights = median_filter((weights - mean) / std, medfilt_width)

    matrix = weights.mean(axis=0)[n_sot:-1]  # rows: no_timestamps + text tokens
    text_indices, time_indices = dtw(-matrix)
    words, word_tokens = tokenizer.split_to_word_tokens(text_tokens + [tokenizer.eot])
    return word_timings(text_indices, time_indices, words, word_tokens, text_probs.tolist())


def add_word_timestamps(*, segments: list[dict], model, tokenizer: Tokenizer, mel: mx.array,
                        num_frames: int, prepend_punctuations: str = PREPEND_PUNCTUATIONS,
                        append_punctuations: str = APPEND_PUNCTUATIONS,
                        last_speech_timestamp: float, **kwargs) -> None:
    """Add "words" to each segment dict of one window (in place) and refine the segments'
    start/end with them, exactly as upstream's heuristics do."""
    if len(segments) == 0:
        return
    per_segment = [[t for t in s["tokens"] if t < tokenizer.eot] for s in segments]
    text_tokens = list(itertools.chain.from_iterable(per_segment))
    alignment = find_alignment(model, tokenizer, text_tokens, mel, num_frames, **kwargs)
    durations = np.array([t.end - t.start for t in alignment])
    durations = durations[durations.nonzero()]
    median_duration = min(0.7, float(np.median(durations) if len(durations) > 0 else 0.0))
    max_duration = median_duration * 2

    # words at sentence boundaries are at most twice the median word duration long
    if len(durations) > 0:
        sentence_end_marks = ".。!！?？"
        for i in range(1, len(alignment)):
            if alignment[i].end - alignment[i].start > max_duration:
                if alignment[i].word in sentence_end_marks:
                    alignment[i].end = alignment[i].start + max_duration
                elif alignment[i - 1].word in sentence_end_marks:
                    alignment[i].start = alignment[i].end - max_duration

    merge_punctuations(alignment, prepend_punctuations, append_punctuations)

    time_offset = segments[0]["seek"] * HOP_LENGTH / SAMPLE_RATE
    word_index = 0
    for segment, tokens in zip(segments, per_segment):
        saved_tokens = 0
        words = []
        while word_index < len(alignment) and saved_tokens < len(tokens):
            timing = alignment[word_index]
            if timing.word:
                words.append({"word": timing.word,
                                  "start": round(time_offset + float(timing.start), 2),
                                  "end": round(time_offset + float(timing.end), 2),
                                  "probability": float(timing.probability)})
            saved_tokens += len(timing.tokens)
            word_index += 1

        if len(words) > 0:
            # the first (and second) word after a pause are at most twice the median duration
            if words[0]["end"] - last_speech_timestamp > median_duration * 4 and (
                    words[0]["end"] - words[0]["start"] > max_duration
                    or (len(words) > 1
                        and words[1]["end"] - words[0]["start"] > max_duration * 2)):
                if len(words) > 1 and words[1]["end"] - words[1]["start"] > max_duration:
                    boundary = max(words[1]["end"] / 2, words[1]["end"] - max_duration)
                    words[0]["end"] = words[1]["start"] = boundary
                words[0]["start"] = max(0, words[0]["end"] - max_duration)

            # a too-long first word yields to the segment's start timestamp
            if segment["start"] < words[0]["end"] and segment["start"] - 0.5 > words[0]["start"]:
                words[0]["start"] = max(0, min(words[0]["end"] - median_duration,
                                               segment["start"]))
            else:
                segment["start"] = words[0]["start"]

            # a too-long last word yields to the segment's end timestamp
            if segment["end"] > words[-1]["start"] and segment["end"] + 0.5 < words[-1]["end"]:
                words[-1]["end"] = max(words[-1]["start"] + median_duration, segment["end"])
            else:
                segment["end"] = words[-1]["end"]

            last_speech_timestamp = segment["end"]
        segment["words"] = words
