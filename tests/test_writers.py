"""Transcript writers and the STT result types against openai-whisper's writers."""

from __future__ import annotations

import copy
import io
import json
import os

import pytest
import whisper.utils as ref  # the reference writers

from mlx_impl.stt import Segment, SpeechToText, Transcription, Word
from mlx_impl.whisper import writers


def segment(i, seek, start, end, text, words=None):
    d = {"id": i, "seek": seek, "start": start, "end": end, "text": text,
         "tokens": [50364, 1000 + i, 50414], "temperature": 0.0, "avg_logprob": -0.25,
         "compression_ratio": 1.2, "no_speech_prob": 0.01}
    if words is not None:
        d["words"] = [{"word": w, "start": s, "end": e, "probability": 0.9} for w, s, e in words]
    return d


RESULT = {
    "text": " Hello there, world. Ünïcödé --> arrows\tand tabs. Over an hour later.",
    "segments": [
        segment(0, 0, 0.0, 2.5, " Hello there, world."),
        segment(1, 250, 2.5, 5.0049, " Ünïcödé --> arrows\tand tabs."),
        segment(2, 3000, 3725.3334, 3727.9996, " Over an hour later."),
    ],
    "language": "en",
}
RESULT_WORDS = {
    "text": (" Hello there, world. It is a long sentence with many words in it. After a pause."
             " Again."),
    "segments": [
        segment(0, 0, 0.0, 2.5, " Hello there, world.", [
            (" Hello", 0.0, 0.42), (" there,", 0.42, 0.9), (" world.", 1.02, 2.5)]),
        segment(1, 250, 2.6, 7.0, " It is a long sentence with many words in it.", [
            (" It", 2.6, 2.8), (" is", 2.8, 3.0), (" a", 3.0, 3.1), (" long", 3.1, 3.5),
            (" sentence", 3.5, 4.1), (" with", 4.1, 4.4), (" many", 4.4, 4.9),
            (" words", 4.9, 5.5), (" in", 5.5, 5.8), (" it.", 5.8, 7.0)]),
        segment(2, 700, 11.0, 12.5, " After a pause.", [
            (" After", 11.0, 11.4), (" a", 11.4, 11.6), (" pause.", 11.6, 12.5)]),
        # 3.7 s after the previous word's start: a "long pause" (> 3 s) for line breaking
        segment(3, 1250, 15.3, 16.0, " Again.", [(" Again.", 15.3, 16.0)]),
    ],
    "language": "en",
}
OPTIONS = [
    {},
    {"max_line_width": 20, "max_line_count": 2},
    {"max_line_width": 12},
    {"max_words_per_line": 3},
    {"max_line_width": 16, "max_line_count": 1, "max_words_per_line": 2},
    {"highlight_words": True},
    {"highlight_words": True, "max_line_width": 20, "max_line_count": 2},
]
REF_WRITERS = {"txt": ref.WriteTXT, "vtt": ref.WriteVTT, "srt": ref.WriteSRT,
               "tsv": ref.WriteTSV, "json": ref.WriteJSON}


def upstream_text(fmt: str, result: dict, options: dict) -> str:
    buffer = io.StringIO()
    REF_WRITERS[fmt](".").write_result(copy.deepcopy(result), buffer, **options)
    return buffer.getvalue()


def assert_same_text(name: str, got: str, want: str) -> None:
    if got != want:
        got_lines, want_lines = got.splitlines(), want.splitlines()
        i = next((k for k, (a, b) in enumerate(zip(got_lines, want_lines)) if a != b),
                 min(len(got_lines), len(want_lines)))
        raise AssertionError(f"{name}: first differing line {i}: got {got_lines[i:i + 2]!r} "
                             f"want {want_lines[i:i + 2]!r} ({len(got_lines)} vs "
                             f"{len(want_lines)} lines)")


@pytest.mark.parametrize("fmt", writers.FORMATS)
def test_segment_result_equals_upstream(fmt):
    assert_same_text(fmt, writers.render(RESULT, fmt), upstream_text(fmt, RESULT, {}))


def option_id(options: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in options.items()) or "default"


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
@pytest.mark.parametrize("options", OPTIONS, ids=option_id)
def test_word_result_equals_upstream(fmt, options):
    assert_same_text(f"{fmt} {options}", writers.render(RESULT_WORDS, fmt, **options),
                     upstream_text(fmt, RESULT_WORDS, options))


def test_srt_and_vtt_values():
    srt = writers.render(RESULT, "srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:02,500\nHello there, world.\n\n2\n")
    assert "01:02:05,333 --> 01:02:08,000\nOver an hour later." in srt
    assert "Ünïcödé -> arrows\tand tabs." in srt  # "-->" would end the cue line
    vtt = writers.render(RESULT, "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00.000 --> 00:02.500\nHello there, world.\n\n")
    assert "00:02.500 --> 00:05.005" in vtt and "01:02:05.333 --> 01:02:08.000" in vtt
    tsv = writers.render(RESULT, "tsv").splitlines()
    assert tsv[0] == "start\tend\ttext" and tsv[2] == "2500\t5005\tÜnïcödé --> arrows and tabs."


def test_format_timestamp_equals_upstream():
    for t in [0, 0.0004, 0.0005, 0.9995, 1.5, 59.9999, 61.25, 3599.9996, 3600, 36000.123, 1e6]:
        for hours in (False, True):
            for marker in (".", ","):
                assert writers.format_timestamp(t, hours, marker) == \
                    ref.format_timestamp(t, hours, marker), (t, hours, marker)
    with pytest.raises(ValueError, match="must be >= 0 seconds, got -0.1"):
        writers.format_timestamp(-0.1)


def test_transcription_round_trip_and_writers_accept_it(tmp_path):
    result = Transcription.from_dict(RESULT_WORDS)
    assert result.to_dict() == RESULT_WORDS
    assert list(result.to_dict()["segments"][0]) == list(RESULT_WORDS["segments"][0])
    assert result.segments[0].words[1] == Word(" there,", 0.42, 0.9, 0.9)
    no_words = Transcription.from_dict(RESULT)
    assert "words" not in no_words.to_dict()["segments"][0]
    assert no_words.segments[1].tokens == (50364, 1001, 50414)
    assert writers.render(result, "srt") == writers.render(RESULT_WORDS, "srt")
    assert isinstance(Segment.from_dict(RESULT["segments"][0]), Segment)


def test_write_result_files_atomically(tmp_path):
    paths = writers.write_result(RESULT, "/some/where/talk.final.mp3", tmp_path)
    assert [p.name for p in paths] == [f"talk.final.{f}" for f in writers.FORMATS]
    for p, fmt in zip(paths, writers.FORMATS):
        assert_same_text(str(p), p.read_text(encoding="utf-8"), upstream_text(fmt, RESULT, {}))
    assert json.loads((tmp_path / "talk.final.json").read_text()) == RESULT
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in paths)  # no temporary files left
    with pytest.raises(ValueError, match="unknown output format 'docx'; choose one of txt"):
        writers.write_result(RESULT, "a.wav", tmp_path, "docx")
    with pytest.raises(FileNotFoundError, match="output folder does not exist"):
        writers.write_result(RESULT, "a.wav", tmp_path / "missing")


def test_speech_to_text_protocol():
    class Fake:
        def transcribe(self, audio, sample_rate=None, **options):
            return Transcription.from_dict(RESULT)

    assert isinstance(Fake(), SpeechToText)
    assert not isinstance(object(), SpeechToText)
    assert Fake().transcribe("x.wav").language == "en"
