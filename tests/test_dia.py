"""Dia (mlx_impl/dia) against transformers DiaForConditionalGeneration + DiaProcessor + DacModel
on the tiny preset: tokenizer and delay layout, strict config and converter, the parity spec
end to end (and a planted wrong delay failing it), the CLI (WAV, determinism) and bad input."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mlx_impl  # noqa: F401  (BLAS preload before mlx)
from mlx_impl.dia import tokens as T
from mlx_impl.dia.presets import PRESETS

MODEL = "dia-test-tiny"
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
DELAYS = PRESETS[MODEL]["lm"]["delay_pattern"]


def quiet(*_args, **_kw):
    pass


# -- tokens and the delay layout ---------------------------------------------------------------

def test_text_ids_are_diatokenizer_layout():
    from transformers import DiaTokenizer

    text = "[S1] Hi. [S2] Yo! (laughs) é"
    want = DiaTokenizer()(text, add_special_tokens=False)["input_ids"]
    assert T.encode_text(text) == want
    assert T.encode_text("[S1]a[S2]") == [1, 97, 2]


@pytest.mark.parametrize("text,match", [
    ("", "empty"), ("  ", "empty"), ("[S3] Hi", "unknown speaker tag '\\[S3\\]'"),
    ("[S1] Hi [s 2] yo", "unknown speaker tag"), ("x" * 1025, "1025 tokens .* limit of 1024"),
])
def test_bad_text(text, match):
    with pytest.raises(ValueError, match=match):
        T.check_text(text)


def test_delay_layout_matches_dia_processor():
    import torch
    from transformers import DiaProcessor

    frames = np.arange(5 * 9).reshape(5, 9)
    got = T.delayed(frames, DELAYS, 1026, 1025)
    idx = DiaProcessor.build_indices(1, got.shape[0], 9, DELAYS, revert=False)
    prefill = np.full((1, got.shape[0], 9), 1025)
    prefill[0, 0], prefill[0, 1:6] = 1026, frames
    want = DiaProcessor.apply_audio_delay(torch.from_numpy(prefill), 1025, 1026, idx)[0].numpy()
    assert np.array_equal(got, want)
    assert np.array_equal(T.undelayed(got, DELAYS)[1:6], frames)
    assert T.n_prompt_rows(got, 1025) == 6
    assert T.n_prompt_rows(T.delayed(np.zeros((0, 9)), DELAYS, 1026, 1025), 1025) == 1


# -- config and converter ----------------------------------------------------------------------

def test_config_is_strict():
    from mlx_impl.dia.config import DiaConfig

    d = json.loads(json.dumps(PRESETS[MODEL]["lm"]))
    assert DiaConfig.from_dict(d).max_delay == 15
    bad = json.loads(json.dumps(d))
    del bad["decoder_config"]["cross_head_dim"]
    with pytest.raises(ValueError, match="cross_head_dim"):
        DiaConfig.from_dict(bad)
    with pytest.raises(ValueError, match="decoder_config instead"):
        DiaConfig.from_dict({**d, "eos_token_id": 1024})
    with pytest.raises(ValueError, match="9 channels"):
        DiaConfig.from_dict({**d, "delay_pattern": [0, 8]})


def test_converter_splits_gate_up_and_refuses_unknown_keys():
    from mlx_impl.dia.convert import convert

    w = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = convert({"model.decoder.layers.0.mlp.gate_up_proj.weight": w})
    assert np.array_equal(out["model.decoder.layers.0.mlp.gate_proj.weight"], w[:2])
    assert np.array_equal(out["model.decoder.layers.0.mlp.up_proj.weight"], w[2:])
    with pytest.raises(KeyError, match="unexpected"):
        convert({"lm_head.weight": w})


# -- the parity spec ---------------------------------------------------------------------------

def test_parity_spec_passes():
    from parity import runner
    from parity.models.dia import TEST_TINY

    result = runner.run(TEST_TINY, golden=False, log=quiet)
    assert result.passed, result.error
    assert {c.name: c.passed for c in result.checks} == {"generation": True}


def test_planted_wrong_delay_fails(monkeypatch):
    import mlx_impl.dia.load as dia_load
    from parity import runner
    from parity.models.dia import TEST_TINY

    real = dia_load.load

    def wrong_delay(path, dtype="float32"):
        model = real(path, dtype)  # the last channel delayed by 14 instead of 15
        model.config = dataclasses.replace(model.config,
                                           delay_pattern=(*DELAYS[:-1], DELAYS[-1] - 1))
        return model

    monkeypatch.setattr(dia_load, "load", wrong_delay)
    spec = dataclasses.replace(TEST_TINY, golden_cases=TEST_TINY.golden_cases[:1], checks=())
    result = runner.run(spec, golden=False, log=quiet, raise_errors=False)
    assert not result.passed
    (case,) = result.cases
    # the shorter delay forces the last channel's eos a row early, so one more frame is decoded:
    # a hard shape error on the codes (checked before any value)
    assert case.error is not None and "tap 'codes': shape mismatch" in case.error, case.error


# -- CLI ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built():
    from parity.tts_models import build

    return build(MODEL)


FAST = ["--model", MODEL, "--max-tokens", "20", "--quiet"]


def test_cli_wav_same_seed_same_bytes(built, tmp_path):
    from mlx_impl.tts.cli import main

    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    run = [sys.executable, "-m", "mlx_impl.tts", "[S1] Hello. [S2] Hi!", "-o", str(a), *FAST,
           "--seed", "3"]
    done = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert main(["[S1] Hello. [S2] Hi!", "-o", str(b), *FAST, "--seed", "3"]) == 0
    assert main(["[S1] Hello. [S2] Hi!", "-o", str(c), *FAST, "--seed", "4"]) == 0
    audio, sr = sf.read(a, dtype="float32")
    # 20 rows: eos forced at row 5, so 4 frames of 512 samples at 44.1 kHz
    assert sr == 44100 and audio.shape == (4 * 512,) and np.abs(audio).max() > 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("args,match", [
    (["   "], "text is empty"),
    (["x" * 1100], "over the limit of 1024"),
    (["[S3] Hello"], "unknown speaker tag"),
    (["[S1] Hi", "--temperature", "0.5"], "clamps temperatures below 1.0"),
    (["[S1] Hi", "--temperature", "-1"], "temperature must be >= 0"),
    (["[S1] Hi", "--top-p", "1.5"], "top_p must be in"),
    (["[S1] Hi", "--cfg-scale", "0.5"], "cfg_scale must be >= 1"),
    (["[S1] Hi", "--max-tokens", "5"], "max_tokens must be >= 17"),
    (["[S1] Hi", "--max-tokens", "4000"], "exceed the decoder's 3072 positions"),
    (["[S1] Hi", "--repetition-penalty", "1.2"], "no min-p or repetition penalty"),
    (["[S1] Hi", "--voice", "tara"], "no named voices"),
    (["[S1] Hi", "--stream"], "--stream is not implemented"),
])
def test_cli_bad_input(built, tmp_path, capsys, args, match):
    from mlx_impl.tts.cli import EXIT_USER_ERROR, main

    out = tmp_path / "x.wav"
    fast = [a for a in FAST if a not in ("--max-tokens", "20")] + (
        [] if "--max-tokens" in args else ["--max-tokens", "20"])
    assert main([*args, "-o", str(out), *fast]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and __import__("re").search(match, err), err
    assert not out.exists()


def test_cli_takes_a_dia_folder_as_path(built, tmp_path):
    from mlx_impl.tts.cli import main

    out = tmp_path / "p.wav"
    assert main(["[S1] Hi.", "-o", str(out), "--model", str(built.resolve()), "--max-tokens",
                 "18", "--quiet"]) == 0
    audio, sr = sf.read(out, dtype="float32")
    assert sr == 44100 and audio.shape == (2 * 512,)


def test_cli_ref_audio_clones_as_voice_with_its_transcript(built, tmp_path, capsys):
    """--ref-audio goes through the shared reference-clip path (checked, resampled to 44.1 kHz,
    transcript tagged [S1]) and gives the same bytes as the clip passed as --voice with the
    tagged transcript; a cloned voice does not take --voice-text too."""
    from mlx_impl.tts.cli import EXIT_USER_ERROR, main

    clip = str(FIXTURES / "espeak_en_fox.wav")
    said = "The quick brown fox jumps over the lazy dog."
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    assert main(["[S1] Hi.", "-o", str(a), *FAST, "--ref-audio", clip, "--ref-text", said]) == 0
    assert main(["[S1] Hi.", "-o", str(b), *FAST, "--voice", clip, "--voice-text",
                 f"[S1] {said}"]) == 0
    assert main(["[S1] Hi.", "-o", str(c), *FAST]) == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    out = tmp_path / "x.wav"
    assert main(["[S1] Hi.", "-o", str(out), *FAST, "--ref-audio", clip, "--ref-text", said,
                 "--voice-text", "[S1] other"]) == EXIT_USER_ERROR
    assert "carries its transcript" in capsys.readouterr().err and not out.exists()
