"""Long-form `transcribe` against openai-whisper 20250625 on the same fp32 weights: segments,
tokens, temperature fallback, word timestamps, bad input; WER of both against the references.

Each side computes its own log-mel from the same samples (ours: mlx_impl.layers.audio), so these
are end-to-end checks of the whole pipeline.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from tests.helpers import assert_close

torch = pytest.importorskip("torch")
whisper = pytest.importorskip("whisper")
jiwer = pytest.importorskip("jiwer")

from conftest import FIXTURES, read_manifest

from mlx_impl.audio_io import load_audio
from mlx_impl.stt import SpeechToText, Transcription
from mlx_impl.whisper.alignment import NoAlignmentHeadsError
from mlx_impl.whisper.transcribe import WhisperSTT

pytestmark = pytest.mark.needs_weights
FIXTURE_CLIPS = read_manifest(FIXTURES)
WORD_TOLERANCE_S = 0.02  # one DTW frame; measured difference on every clip so far: 0.0


@functools.lru_cache(maxsize=2)
def pair(name: str):
    """(WhisperSTT, openai-whisper model with the same fp32 weights and alignment heads)."""
    from mlx_impl.whisper.load import from_state
    from mlx_impl.whisper.tokenizer import tokenizer_for_model
    from reference.whisper import build_openai
    from weights.whisper import load

    w = load(name)
    model = from_state(w.dims, w.state, alignment_heads=w.alignment_heads)
    stt = WhisperSTT(model, tokenizer_for_model(w.tokenizer_json, w.dims["n_vocab"]), name)
    ref = build_openai(w.dims, w.state)
    heads = np.zeros((ref.dims.n_text_layer, ref.dims.n_text_head), dtype=bool)
    heads[tuple(np.asarray(w.alignment_heads).T)] = True
    ref.register_buffer("alignment_heads", torch.from_numpy(heads).to_sparse(), persistent=False)
    return stt, ref


@functools.lru_cache(maxsize=16)
def openai_result(name: str, path: str, word_timestamps: bool, **kwargs):
    _, ref = pair(name)
    return whisper.transcribe(ref, load_audio(path), fp16=False, word_timestamps=word_timestamps,
                              **kwargs)


def normalized_wer(reference: str, hypothesis: str) -> float:
    from whisper.normalizers import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    return jiwer.wer(norm(reference), norm(hypothesis))


def compare(name: str, ours: Transcription, theirs: dict, words: bool) -> dict:
    """Assert identical segments/tokens (and words within WORD_TOLERANCE_S); return stats."""
    assert ours.language == theirs["language"]
    got = [(s.seek, list(s.tokens)) for s in ours.segments]
    want = [(s["seek"], s["tokens"]) for s in theirs["segments"]]
    assert got == want, f"{name}: segments differ\n  ours:   {got}\n  openai: {want}"
    assert ours.text == theirs["text"]
    for s, t in zip(ours.segments, theirs["segments"]):
        assert_close(f"{name} segment {s.id} start/end", [s.start, s.end], [t["start"], t["end"]],
                     atol=WORD_TOLERANCE_S if words else 1e-9)
        assert s.temperature == t["temperature"]
    stats = {}
    if words:
        ws = [w for s in ours.segments for w in s.words]
        wt = [w for s in theirs["segments"] for w in s["words"]]
        assert [w.word for w in ws] == [w["word"] for w in wt]
        got_t = np.array([[w.start, w.end] for w in ws])
        want_t = np.array([[w["start"], w["end"]] for w in wt])
        assert_close(f"{name} word start/end (s)", got_t, want_t, atol=WORD_TOLERANCE_S)
        assert_close(f"{name} word probability", [w.probability for w in ws],
                     [w["probability"] for w in wt], atol=1e-3)
        diff = np.abs(got_t - want_t)
        stats = {"words": len(ws), "mean_abs_s": float(diff.mean()), "max_abs_s": float(diff.max())}
    print(f"{name}: {stats}")
    return stats


@pytest.mark.parametrize("clip", FIXTURE_CLIPS, ids=lambda c: c["id"])
def test_transcribe_word_timestamps_equal_openai(clip):
    stt, _ = pair("whisper-tiny.en")
    path = str(FIXTURES / clip["file"])
    ours = stt.transcribe(path, word_timestamps=True)
    theirs = openai_result("whisper-tiny.en", path, True)
    compare(clip["id"], ours, theirs, words=True)
    wer_ours, wer_openai = normalized_wer(clip["text"], ours.text), \
        normalized_wer(clip["text"], theirs["text"])
    print(f"{clip['id']}: WER ours {wer_ours:.3f} openai {wer_openai:.3f}")
    assert wer_ours == wer_openai


def test_temperature_fallback_path(monkeypatch):
    """A threshold nothing passes makes every window walk the whole temperature list, on both
    sides; the kept result is the last temperature's (sampled: tokens differ by RNG).
    Without timestamps and with 24 tokens at most, the clip is one window (keeps it fast)."""
    stt, _ = pair("whisper-tiny.en")
    path = str(FIXTURES / FIXTURE_CLIPS[0]["file"])
    temps = (0.0, 0.5, 1.0)
    calls = []
    import mlx_impl.whisper.transcribe as tr

    real_decode = tr.decode

    def spy(model, features, options, **kw):
        calls.append(options.temperature)
        return real_decode(model, features, options, **kw)

    monkeypatch.setattr(tr, "decode", spy)
    options = {"temperature": temps, "compression_ratio_threshold": 0.1, "best_of": 2, "beam_size": 2,
                   "without_timestamps": True, "sample_len": 24}
    ours = stt.transcribe(path, seed=3, **options)
    theirs = openai_result("whisper-tiny.en", path, False, **options)
    assert calls == list(temps), calls
    assert {s.temperature for s in ours.segments} == {1.0}
    assert {s["temperature"] for s in theirs["segments"]} == {1.0}
    # T > 0.5 resets the prompt; both still produced text for the clip
    assert ours.text.strip() and theirs["text"].strip()


def test_greedy_and_conditioning_options_equal_openai():
    stt, _ = pair("whisper-tiny.en")
    path = str(FIXTURES / FIXTURE_CLIPS[1]["file"])
    kwargs = {"temperature": 0.0, "initial_prompt": "Weather report.",
                  "condition_on_previous_text": False, "clip_timestamps": "0.5,5.5"}
    ours = stt.transcribe(path, **kwargs)
    theirs = openai_result("whisper-tiny.en", path, False, **kwargs)
    compare("weather/options", ours, theirs, words=False)


def test_whisper_stt_interface_and_array_input():
    stt, _ = pair("whisper-tiny.en")
    assert isinstance(stt, SpeechToText)
    path = FIXTURES / FIXTURE_CLIPS[0]["file"]
    audio = load_audio(path)
    # the same clip upsampled to 32 kHz: the interface resamples it back to 16 kHz
    from mlx_impl.audio_io import resample

    high = resample(audio, 16000, 32000).astype(np.float32)
    from_array = stt.transcribe(audio, temperature=0.0)
    from_file = stt.transcribe(str(path), temperature=0.0)
    from_high = stt.transcribe(high, sample_rate=32000, temperature=0.0)
    assert from_array.to_dict() == from_file.to_dict()
    assert from_high.text == from_file.text, (from_high.text, from_file.text)


def test_silence_gives_no_text():
    stt, _ = pair("whisper-tiny.en")
    result = stt.transcribe(np.zeros(16000 * 3, dtype=np.float32))
    theirs = whisper.transcribe(pair("whisper-tiny.en")[1], np.zeros(16000 * 3, np.float32),
                                fp16=False)
    assert result.text == theirs["text"]
    assert [s.tokens for s in result.segments] == [tuple(s["tokens"]) for s in theirs["segments"]]


@pytest.mark.parametrize("audio, message", [
    (np.zeros(0, dtype=np.float32), "no samples"),
    (np.array([0.0, np.nan, 0.1] * 1000, dtype=np.float32), "NaN"),
])
def test_bad_arrays_raise(audio, message):
    stt, _ = pair("whisper-tiny.en")
    with pytest.raises(ValueError, match=message):
        stt.transcribe(audio)


def test_bad_files_raise(tmp_path):
    stt, _ = pair("whisper-tiny.en")
    with pytest.raises(FileNotFoundError, match="not found"):
        stt.transcribe(tmp_path / "missing.wav")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    with pytest.raises(ValueError, match="not an audio file"):
        stt.transcribe(text)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        stt.transcribe(empty)


def test_bad_options_raise():
    stt, _ = pair("whisper-tiny.en")
    audio = np.zeros(16000, dtype=np.float32)
    with pytest.raises(ValueError, match="unknown language"):
        stt.transcribe(audio, language="klingon")
    with pytest.raises(ValueError, match="English-only"):
        stt.transcribe(audio, language="fr")
    with pytest.raises(TypeError, match="unknown transcribe options"):
        stt.transcribe(audio, beam_width=3)


def test_word_timestamps_without_alignment_heads():
    from mlx_impl.whisper.load import from_state
    from weights.whisper import load

    stt, _ = pair("whisper-tiny.en")
    w = load("whisper-tiny.en")
    headless = WhisperSTT(from_state(w.dims, w.state), stt.tokenizer)
    assert headless.model.alignment_heads is None
    with pytest.raises(NoAlignmentHeadsError, match="alignment heads"):
        headless.transcribe(np.zeros(16000, dtype=np.float32), word_timestamps=True)


@pytest.mark.slow
def test_shared_english_clips_word_timestamps(shared_clips):
    stt, _ = pair("whisper-tiny.en")
    stats = []
    for clip in shared_clips:
        if clip["language"] != "en":
            continue
        ours = stt.transcribe(str(clip["path"]), word_timestamps=True)
        theirs = openai_result("whisper-tiny.en", str(clip["path"]), True)
        stats.append(compare(clip["id"], ours, theirs, words=True))
        print(f"{clip['id']}: WER ours {normalized_wer(clip['text'], ours.text):.3f} "
              f"openai {normalized_wer(clip['text'], theirs['text']):.3f}")
    assert stats


@pytest.mark.slow
def test_multilingual_base_transcribe(shared_clips):
    """whisper-base with language detection inside transcribe, word timestamps on."""
    stt, _ = pair("whisper-base")
    for clip in shared_clips:
        if clip["language"] == "en":
            continue
        ours = stt.transcribe(str(clip["path"]), word_timestamps=True)
        theirs = openai_result("whisper-base", str(clip["path"]), True)
        assert ours.language == clip["language"]
        compare(clip["id"], ours, theirs, words=True)


@pytest.mark.slow
def test_long_form_over_60s(shared_clips):
    """> 60 s: the English clips twice with 0.5 s gaps, with word timestamps (seek moves by
    the last word) on tiny.en; segments, tokens, words equal openai-whisper's."""
    stt, ref = pair("whisper-tiny.en")
    english = [c for c in shared_clips if c["language"] == "en"]
    gap = np.zeros(8000, dtype=np.float32)
    parts, texts = [], []
    for clip in english + english:
        parts += [load_audio(clip["path"]), gap]
        texts.append(clip["text"])
    audio = np.concatenate(parts)
    assert len(audio) / 16000 > 60
    ours = stt.transcribe(audio, word_timestamps=True)
    theirs = whisper.transcribe(ref, audio, fp16=False, word_timestamps=True)
    compare("long-form", ours, theirs, words=True)
    assert ours.segments[-1].end > 55
    wer = normalized_wer(" ".join(texts), ours.text)
    print(f"long-form {len(audio) / 16000:.1f} s: {len(ours.segments)} segments, WER {wer:.3f}, "
          f"openai WER {normalized_wer(' '.join(texts), theirs['text']):.3f}")
