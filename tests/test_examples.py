"""Every script in examples/ run as a user runs it (a subprocess from the repository root) on the
tiny model ids, its outputs checked. whisper-tiny.en is the real-weight package `make setup`
installs; the TTS ids are seeded tiny models built offline (`python -m parity.tts_models build`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FOX = "tests/fixtures/speech/espeak_en_fox.wav"  # 6.46 s, "The quick brown fox jumps ..."
TIMEOUT_S = 300  # a hung example fails instead of blocking the suite


def run(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLX_ENABLE_TF32": "0"}
    p = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    if p.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} exited {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr[-3000:]}")
    return p.stdout


def read_wav(path: Path) -> tuple[int, int]:
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnframes()


@pytest.fixture(scope="module")
def tts_built():
    from mlx_impl.tts.models import cache_root

    missing = [m for m in ("csm-test-tiny", "dia-test-tiny") if not (cache_root() / m).exists()]
    if missing:
        from parity.tts_models import build

        for m in missing:
            build(m)


def test_every_example_is_tested():
    tested = set(re.findall(r'run\("(\w+\.py)"', Path(__file__).read_text()))
    assert tested == {p.name for p in EXAMPLES.glob("*.py")}


@pytest.mark.needs_weights
def test_transcribe_to_srt(tmp_path):
    out = run("transcribe_to_srt.py", FOX, "--model", "whisper-tiny.en", "--out",
              str(tmp_path / "fox.srt"))
    srt = (tmp_path / "fox.srt").read_text()
    cues = re.findall(r"(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})", srt)
    assert len(cues) >= 10 and srt.startswith("1\n00:00:00,")
    ends = [int(c[6]) + int(c[7]) / 1000 for c in cues]
    assert ends == sorted(ends) and 5.0 < ends[-1] <= 6.5  # word times within the 6.46-s clip
    assert "<u>quick</u>" in srt and "lazy" in srt  # word-level cues, the spoken word underlined
    assert "wrote" in out


@pytest.mark.needs_weights
def test_voice_clone(tmp_path, tts_built):
    out = run("voice_clone.py", FOX, "Hello there.", "--tts", "csm-test-tiny", "--whisper",
              "whisper-tiny.en", "--out", str(tmp_path / "clone.wav"), "--max-frames", "30")
    assert "whisper-tiny.en heard 'The quick" in out  # the transcript of the clip's first 1.02 s
    rate, n = read_wav(tmp_path / "clone.wav")
    assert rate == 24000 and n == 30 * 16  # 30 frames of the tiny Mimi (16 samples a frame)


def test_dialogue(tmp_path, tts_built):
    out = run("dialogue.py", "--tts", "dia-test-tiny", "--out", str(tmp_path / "d.wav"),
              "--max-steps", "40", "[S1] Hi there. [S2] Hello! (laughs)")
    assert "S1: Hi there.\nS2: Hello! (laughs)\n" in out and "2 turns" in out
    rate, n = read_wav(tmp_path / "d.wav")
    assert rate == 44100 and n > 0


def test_dialogue_refuses_a_script_without_tags(tmp_path, tts_built):
    with pytest.raises(AssertionError, match="must start with a speaker tag"):
        run("dialogue.py", "--out", str(tmp_path / "d.wav"), "no tags here")


def test_codec_roundtrip(tmp_path):
    out = run("codec_roundtrip.py", FOX, "--codec", "dac", "--seconds", "1", "--out",
              str(tmp_path / "rt.wav"))
    assert "dac at 16000 Hz: 16000 samples -> codes [1, 4, 2000]" in out
    snr = float(re.search(r"round-trip SNR (-?[\d.]+) dB", out).group(1))
    assert -30 < snr < 10  # random tiny weights: a number, not a reconstruction
    assert read_wav(tmp_path / "rt.wav") == (16000, 16000)


@pytest.mark.needs_weights
def test_server_with_the_openai_client():
    pytest.importorskip("openai", reason="the openai client is not installed; make setup")
    out = run("server_openai_client.py", FOX, "--model", "whisper-tiny.en", "--timeout", "120")
    assert "lazy" in out and "over" in out
    assert re.search(r"^\s+0\.00-\s+0\.\d\d s  The$", out, re.M)  # word times came back
    assert "6.46 s of audio" in out


def test_check_port(tmp_path):
    out = run("check_port.py", "--model", "whisper-test-tiny", "--out", str(tmp_path / "x"))
    assert "PASS: all 23 taps of whisper-test-tiny match the reference" in out
    assert (tmp_path / "x" / "manifest.json").exists()
    with pytest.raises(AssertionError, match="first diverging tap encoder.blocks.1.mlp"):
        run("check_port.py", "--export-dir", str(tmp_path / "x"), "--plant")
