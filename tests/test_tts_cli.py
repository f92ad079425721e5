"""`python -m mlx_impl.tts` (mlx_impl/tts/cli.py) on orpheus-test-tiny: a readable WAV, the same
bytes for the same seed, streaming, model-id resolution, and each bad input's error + exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mlx_impl  # noqa: F401
from mlx_impl.tts.cli import EXIT_USER_ERROR, main

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--model", "orpheus-test-tiny", "--max-tokens", "21", "--quiet"]


@pytest.fixture(scope="module", autouse=True)
def built():
    from parity.tts_models import build

    return build("orpheus-test-tiny")


def test_writes_readable_wav_and_same_seed_same_bytes(tmp_path):
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    assert main(["Hello there", "-o", str(a), *FAST, "--seed", "3"]) == 0
    assert main(["Hello there", "-o", str(b), *FAST, "--seed", "3"]) == 0
    assert main(["Hello there", "-o", str(c), *FAST, "--seed", "4"]) == 0
    audio, sr = sf.read(a, dtype="float32")
    assert sr == 24000 and audio.shape == (3 * 2048,) and np.abs(audio).max() > 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_stream_writes_the_same_audio(tmp_path):
    whole, streamed = tmp_path / "w.wav", tmp_path / "s.wav"
    args = ["Streaming", *FAST[:2], "--max-tokens", "84", "--quiet", "--voice", "zoe"]
    assert main([*args, "-o", str(whole)]) == 0
    assert main([*args, "-o", str(streamed), "--stream"]) == 0
    w, _ = sf.read(whole, dtype="int16")
    s, sr = sf.read(streamed, dtype="int16")
    assert sr == 24000 and s.shape == w.shape == (12 * 2048,)
    # measured 2026-12-05: identical after 16-bit quantisation (float diff <= 3.3e-6)
    assert np.abs(s.astype(np.int32) - w.astype(np.int32)).max() <= 1


def test_progress_goes_to_stderr(tmp_path, capsys):
    assert main(["Hi", "-o", str(tmp_path / "p.wav"), *FAST[:-1]]) == 0
    out = capsys.readouterr()
    assert out.out == "" and "tokens" in out.err and "wrote" in out.err


def test_module_entry_point(tmp_path):
    out = tmp_path / "m.wav"
    r = subprocess.run([sys.executable, "-m", "mlx_impl.tts", "Hi", "-o", str(out), *FAST],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sf.info(out).samplerate == 24000


@pytest.mark.parametrize("args,match", [
    (["", *FAST], "text is empty"),
    (["x" * 2001, *FAST], "over the limit of 2000 bytes"),
    (["Hi", *FAST, "--voice", "bob"], "unknown voice 'bob'; choose one of"),
    (["Hi", "--model", "no-such-model"], "unknown TTS model 'no-such-model'"),
    (["Hi", *FAST, "--temperature", "-1"], "temperature must be >= 0"),
    (["Hi", *FAST, "--top-p", "1.5"], r"top_p must be in \(0, 1\]"),
    (["Hi", *FAST, "--top-k", "-2"], "top_k"),
    (["Hi", *FAST, "--repetition-penalty", "0"], "repetition_penalty must be > 0"),
    (["Hi", "--model", "orpheus-test-tiny", "--max-tokens", "0"], "max_tokens >= 1"),
    (["Hi", "--model", "orpheus-test-tiny", "--max-tokens", "200000"], "lower max_tokens"),
])
def test_bad_input_clear_error_exit_2(tmp_path, capsys, args, match):
    import re

    out = tmp_path / "bad.wav"
    assert main([args[0], "-o", str(out), *args[1:]]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(match, err), err
    assert not out.exists()


def test_model_not_built_names_the_build_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    assert main(["Hi", "-o", str(tmp_path / "x.wav"), *FAST]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "python -m parity.tts_models build orpheus-test-tiny" in err


def test_stream_writer_partial_file_then_atomic_rename(tmp_path):
    from mlx_impl.tts.cli import write_wav_stream

    out = tmp_path / "s.wav"
    out.write_bytes(b"old")
    seen = []

    def chunks():
        for i in range(3):
            yield np.full(100, 0.1 * (i + 1), np.float32)
            partial = list(tmp_path.glob(".s.wav.*.partial"))
            assert len(partial) == 1 and out.read_bytes() == b"old"
            audio, sr = sf.read(partial[0], dtype="int16")  # a readable WAV of what came so far
            seen.append(audio.shape[0])

    assert write_wav_stream(out, chunks(), 24000) == 600
    assert seen == [100, 200, 300]
    audio, sr = sf.read(out, dtype="int16")
    assert sr == 24000 and audio.shape == (300,) and audio[-1] == round(0.3 * 32767)
    assert not list(tmp_path.glob("*.partial"))


def test_stream_writer_failure_leaves_no_file(tmp_path):
    from mlx_impl.tts.cli import write_wav_stream

    def broken():
        yield np.zeros(10, np.float32)
        raise RuntimeError("generation failed")

    with pytest.raises(RuntimeError, match="generation failed"):
        write_wav_stream(tmp_path / "x.wav", broken(), 24000)
    assert list(tmp_path.iterdir()) == []
