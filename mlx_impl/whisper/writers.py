"""Transcript writers: txt, srt, vtt, tsv, json in openai-whisper's formats.

Upstream: openai-whisper 20250625 `whisper/utils.py` (`format_timestamp`, `WriteTXT`, `WriteSRT`,
`WriteVTT`, `WriteTSV`, `WriteJSON`, `SubtitlesWriter.iterate_result`). The text written is the
same as upstream's for the same result and options (tests/test_writers.py compares them).

Deviations from upstream:
- Files are written atomically (a temporary file in the output folder, then `os.replace`).
- A negative timestamp raises ValueError (upstream: AssertionError); an unknown format raises
  ValueError listing the formats (upstream: KeyError).
- Functions over a result, not writer classes; a result is a `Transcription` or upstream's dict.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import TextIO

from mlx_impl.stt import Transcription

FORMATS = ("txt", "vtt", "srt", "tsv", "json")


def format_timestamp(seconds: float, always_include_hours: bool = False,
                     decimal_marker: str = ".") -> str:
    """`[HH:]MM:SS<marker>mmm`, rounded to the millisecond; hours only when non-zero or asked."""
    if seconds < 0:
        raise ValueError(f"timestamps must be >= 0 seconds, got {seconds}")
    ms = round(seconds * 1000.0)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1_000)
    hours_part = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{hours_part}{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def _as_dict(result: Transcription | dict) -> dict:
    return result.to_dict() if isinstance(result, Transcription) else result


def _first_word_start(segments: list[dict]) -> float | None:
    for s in segments:
        for w in s["words"]:
            return w["start"]
    return segments[0]["start"] if segments else None


def _subtitle_lines(segments: list[dict], max_line_width: int | None,
                    max_line_count: int | None, max_words_per_line: int | None):
    """Cues from word timings: lists of word dicts whose "word" carries its separator ("\\n"
    before a wrapped line). Without both max_line_width and max_line_count, each segment (or each
    chunk of max_words_per_line words) is its own cue, as upstream."""
    preserve_segments = max_line_count is None or max_line_width is None
    width = max_line_width or 1000
    per_chunk = max_words_per_line or 1000
    line_len, line_count = 0, 1
    cue: list[dict] = []
    last = _first_word_start(segments) or 0.0
    for segment in segments:
        words = segment["words"]
        for chunk_start in range(0, len(words), per_chunk):
            for i, original in enumerate(words[chunk_start:chunk_start + per_chunk]):
                timing = dict(original)
                long_pause = not preserve_segments and timing["start"] - last > 3.0
                has_room = line_len + len(timing["word"]) <= width
                chunk_break = i == 0 and len(cue) > 0 and preserve_segments
                if line_len > 0 and has_room and not long_pause and not chunk_break:
                    line_len += len(timing["word"])  # continues the line
                else:
                    timing["word"] = timing["word"].strip()
                    cue_full = (len(cue) > 0 and max_line_count is not None
                                and (long_pause or line_count >= max_line_count))
                    if cue_full or chunk_break:
                        yield cue
                        cue, line_count = [], 1
                    elif line_len > 0:  # wraps to a new line in the same cue
                        line_count += 1
                        timing["word"] = "\n" + timing["word"]
                    line_len = len(timing["word"].strip())
                cue.append(timing)
                last = timing["start"]
    if cue:
        yield cue


def iterate_cues(result: Transcription | dict, *, always_include_hours: bool,
                 decimal_marker: str, max_line_width: int | None = None,
                 max_line_count: int | None = None, highlight_words: bool = False,
                 max_words_per_line: int | None = None):
    """(start, end, text) of each subtitle cue, timestamps formatted. Word timings are used when
    the segments have them; otherwise one cue per segment."""
    segments = _as_dict(result)["segments"]

    def fmt(t: float) -> str:
        return format_timestamp(t, always_include_hours, decimal_marker)

    if not segments or "words" not in segments[0]:
        for s in segments:
            yield fmt(s["start"]), fmt(s["end"]), s["text"].strip().replace("-->", "->")
        return

    for cue in _subtitle_lines(segments, max_line_width, max_line_count, max_words_per_line):
        cue_start, cue_end = fmt(cue[0]["start"]), fmt(cue[-1]["end"])
        texts = [w["word"] for w in cue]
        if not highlight_words:
            yield cue_start, cue_end, "".join(texts)
            continue
        # one cue per word with that word underlined; gaps between words show the plain text
        last = cue_start
        for i, w in enumerate(cue):
            start, end = fmt(w["start"]), fmt(w["end"])
            if last != start:
                yield last, start, "".join(texts)
            yield start, end, "".join(
                re.sub(r"^(\s*)(.*)$", r"\1<u>\2</u>", t) if j == i else t
                for j, t in enumerate(texts))
            last = end


def write_txt(result: Transcription | dict, file: TextIO, **_) -> None:
    for s in _as_dict(result)["segments"]:
        print(s["text"].strip(), file=file)


def write_vtt(result: Transcription | dict, file: TextIO, **options) -> None:
    print("WEBVTT\n", file=file)
    for start, end, text in iterate_cues(result, always_include_hours=False, decimal_marker=".",
                                         **options):
        print(f"{start} --> {end}\n{text}\n", file=file)


def write_srt(result: Transcription | dict, file: TextIO, **options) -> None:
    cues = iterate_cues(result, always_include_hours=True, decimal_marker=",", **options)
    for i, (start, end, text) in enumerate(cues, start=1):
        print(f"{i}\n{start} --> {end}\n{text}\n", file=file)


def write_tsv(result: Transcription | dict, file: TextIO, **_) -> None:
    """start and end in integer milliseconds, tab-separated, with a header line."""
    print("start", "end", "text", sep="\t", file=file)
    for s in _as_dict(result)["segments"]:
        text = s["text"].strip().replace("\t", " ")
        print(round(1000 * s["start"]), round(1000 * s["end"]), text, sep="\t", file=file)


def write_json(result: Transcription | dict, file: TextIO, **_) -> None:
    json.dump(_as_dict(result), file)  # ASCII-escaped, as upstream


WRITERS = {"txt": write_txt, "vtt": write_vtt, "srt": write_srt, "tsv": write_tsv,
           "json": write_json}


def render(result: Transcription | dict, fmt: str, **options) -> str:
    """The file content for one format. options (srt/vtt): max_line_width, max_line_count,
    highlight_words, max_words_per_line."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown output format {fmt!r}; choose one of "
                         f"{', '.join(FORMATS)} or 'all'")
    buffer = io.StringIO()
    WRITERS[fmt](result, buffer, **options)
    return buffer.getvalue()


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text to `path` via a temporary file in the same folder and `os.replace`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_result(result: Transcription | dict, audio_path: str | os.PathLike,
                 output_dir: str | os.PathLike, fmt: str = "all", **options) -> list[Path]:
    """Write `<output_dir>/<audio stem>.<ext>` for `fmt` (one of FORMATS, or "all"); returns the
    paths written."""
    formats = FORMATS if fmt == "all" else (fmt,)
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {output_dir}; create it first")
    stem = os.path.splitext(os.path.basename(audio_path))[0]
    written = []
    for f in formats:
        content = render(result, f, **options)
        out = output_dir / f"{stem}.{f}"
        write_atomic(out, content)
        written.append(out)
    return written
