"""Whisper parity: the reference adapter, the specs, and MLX against reference and goldens."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parity import golden as golden_store
from parity.models import whisper as W
from parity.runner import run
from tests.helpers import assert_close, assert_spec_passes

ROOT = Path(__file__).resolve().parents[1]
DIMS = W.TEST_TINY_DIMS


@pytest.fixture(scope="module")
def tiny_case():
    return W.TEST_TINY.make_inputs(W._FOX)


@pytest.fixture(scope="module")
def tiny_ref():
    return W.ReferenceSide(DIMS)


def test_random_state_matches_upstream_keys_and_shapes():
    import torch  # noqa: F401  (the upstream module below needs it)
    from whisper.model import ModelDimensions, Whisper

    from weights.whisper import check_state

    state = W.random_state(DIMS)
    check_state(state, DIMS)
    upstream = Whisper(ModelDimensions(**DIMS)).state_dict()
    assert set(upstream) == set(state)
    # numpy and torch float32 exp/sin differ by an ulp; arguments reach ~99 rad, whose float32
    # ulp is 7.6e-6 (measured max difference 7.6e-6 for (100, 64))
    assert_close("encoder positions vs upstream sinusoids", state["encoder.positional_embedding"],
                 upstream["encoder.positional_embedding"].numpy(), atol=2e-5)
    again = W.random_state(DIMS)
    assert all(np.array_equal(state[k], again[k]) for k in state)  # seeded


def test_inputs_are_the_fixture_and_sot_tokens(tiny_case):
    meta, arrays = tiny_case.meta, tiny_case.arrays
    # multilingual SOT: <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>, ..., <|endoftext|>
    assert meta["token_ids"][:4] == [50258, 50259, 50359, 50363] and meta["token_ids"][-1] == 50257
    assert arrays["tokens"].tolist() == [meta["token_ids"]]
    assert arrays["audio"].dtype == np.float32 and arrays["audio"].shape == (meta["n_samples_clip"],)
    assert meta["padded_to_samples"] == 2 * DIMS["n_audio_ctx"] * 160


def test_reference_taps_in_architecture_order(tiny_ref, tiny_case):
    from whisper.model import MultiHeadAttention

    before = MultiHeadAttention.use_sdpa
    taps = tiny_ref(tiny_case.arrays)
    assert MultiHeadAttention.use_sdpa == before  # the global is restored
    names = [k for k in taps if k in W.TEST_TINY.taps]
    assert tuple(names) == W.TEST_TINY.taps
    t = tiny_case.arrays["tokens"].shape[1]
    assert taps["mel"].shape == (200, 80)
    assert taps["encoder.conv1"].shape == (1, 200, 64)  # channels-last
    assert taps["encoder.conv2"].shape == (1, 100, 64)
    assert taps["decoder.blocks.1.cross_attn"].shape == (1, t, 64)
    assert taps["logits"].shape == (1, t, DIMS["n_vocab"])
    model = tiny_ref._ref.model
    left = [n for n, m in model.named_modules() if m._forward_hooks or m._forward_pre_hooks]
    assert left == []  # hooks removed after the call
    # encoder.embed is GELU(conv2) + positions; block 0's output is embed + attn + mlp
    import torch
    conv2 = torch.from_numpy(taps["encoder.conv2"])
    embed = torch.nn.functional.gelu(conv2).numpy() + W.random_state(DIMS)["encoder.positional_embedding"]
    assert_close("encoder.embed", taps["encoder.embed"], embed, atol=1e-5)
    assert_close("encoder.blocks.0", taps["encoder.blocks.0"],
                 taps["encoder.embed"] + taps["encoder.blocks.0.attn"] + taps["encoder.blocks.0.mlp"],
                 atol=1e-5)


def test_reference_sdpa_and_transformers_agree(tiny_ref, tiny_case):
    from reference.whisper import WhisperReference

    taps = tiny_ref(tiny_case.arrays)
    dims, state = W._weights(DIMS)
    sdpa = WhisperReference(dims, state, use_sdpa=True)(
        {"audio": W.pad_or_trim(tiny_case.arrays["audio"], 32000),
         "tokens": tiny_case.arrays["tokens"]})
    # measured 2.4e-6 (transformers) on this case; both are float32 on CPU
    assert_close("sdpa logits", sdpa["logits"], taps["logits"], atol=1e-4)
    assert_close("transformers logits", taps["transformers.logits"], taps["logits"], atol=1e-4)


def test_hf_names_cover_the_canonical_state():
    from reference.whisper import hf_name

    assert hf_name("decoder.blocks.3.cross_attn.key.weight") == \
        "model.decoder.layers.3.encoder_attn.k_proj.weight"
    assert hf_name("encoder.blocks.0.mlp.2.bias") == "model.encoder.layers.0.fc2.bias"
    assert hf_name("encoder.blocks.0.attn_ln.weight") == \
        "model.encoder.layers.0.self_attn_layer_norm.weight"
    with pytest.raises(KeyError, match="no transformers name"):
        hf_name("encoder.blocks.0.bogus.weight")


def test_list_is_fast_and_torch_free():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['mlx'] = None\n"
            "from parity.__main__ import main; raise SystemExit(main(['list']))")
    p = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    for name in ("whisper-test-tiny", "whisper-tiny.en", "whisper-base", "whisper-small"):
        assert name in p.stdout
    assert "seeded random weights, not trained" in p.stdout


# ------------------------------------------------------------------------------------------
# MLX against the reference (tiny random config)


def test_mlx_matches_reference_fp32():
    res = assert_spec_passes(W.TEST_TINY)
    assert res.cases[0].metrics["argmax_agreement"] == 1.0


def test_mlx_matches_reference_fp16():
    res = assert_spec_passes(W.TEST_TINY, "float16")
    case = res.cases[0]
    assert {r.dtype for r in case.comparison.results[1:-2]} == {"float16"}


def test_perturbed_block1_weight_fails_at_that_tap():
    _, state = W._weights(DIMS)
    bad_state = dict(state)
    w = state["encoder.blocks.1.mlp.0.weight"].copy()
    w[5, 7] += 0.5
    bad_state["encoder.blocks.1.mlp.0.weight"] = w

    spec = dataclasses.replace(W.TEST_TINY,
                               build_mlx=lambda dt: W.MlxSide(DIMS, dt, state=bad_state))
    res = run(spec, "float32", golden=False, fail_fast=True, log=lambda *a: None)
    cmp = res.cases[0].comparison
    assert not res.passed
    assert cmp.first_failure.name == "encoder.blocks.1.mlp"
    assert all(r.passed for r in cmp.results[:-1])
    assert "first failing tap 'encoder.blocks.1.mlp'" in res.cases[0].detail


def test_golden_compare_without_torch():
    if not (golden_store.ROOT / "whisper-test-tiny" / "manifest.json").exists():
        pytest.fail("golden/whisper-test-tiny is missing: run `python -m parity golden "
                    "whisper-test-tiny` (it is committed with the repository)")
    code = ("import sys; sys.modules['torch'] = None\n"
            "from parity.__main__ import main\n"
            "raise SystemExit(main(['run', 'whisper-test-tiny', '--golden-only', '--report-dir', "
            f"{str(ROOT / '.pytest_cache' / 'parity')!r}]))")
    p = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "MLX_ENABLE_TF32": "0"})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "PASS: whisper-test-tiny float32" in p.stdout and "vs golden" in p.stdout
    # progress on stderr: one line per phase, elapsed and time left
    progress = [ln for ln in p.stderr.splitlines() if " elapsed, ~" in ln]
    assert any(ln.endswith("case fox: mlx vs golden") for ln in progress), p.stderr[-2000:]
    data = json.loads((ROOT / ".pytest_cache" / "parity" / "whisper-test-tiny.json").read_text())
    assert data["tier"] == "default" and data["clips"] == ["espeak_en_fox"]
    assert [t["phase"] for t in data["timings"]] == ["build mlx side", "case fox vs golden"]
    # the spec's builder imports mlx; the run preloads the fast BLAS before it all the same
    blas = subprocess.run([sys.executable, "-c", "import mlx_impl; "
                           "print(mlx_impl.blas_info()['library'])"], capture_output=True,
                          text=True, cwd=ROOT, check=True).stdout.strip()
    assert data["versions"]["blas"] == blas


# ------------------------------------------------------------------------------------------
# the transcription check's tiers (the default run and --full)


def _shared_or_skip():
    from parity.clips import SHARED_SPEECH

    if not (SHARED_SPEECH / "manifest.jsonl").exists():
        pytest.skip(f"real speech clips not found at {SHARED_SPEECH} (CI lays them beside the "
                    "clone)")


def test_default_tier_covers_strategies_languages_and_long_form():
    from parity.models import whisper_transcription as T

    _shared_or_skip()
    items = T.plan(multilingual=True, tier="default")
    assert [(c["id"].split("-")[0] if c["id"].startswith(T.LONG) else c["id"], s)
            for c, s in items] == list(T.DEFAULT_ITEMS)
    assert {s for _, s in items} == set(T.STRATEGIES)
    assert {c["language"] for c, _ in items} == {"en", "es", "de", "fr", "zh"}
    long = [c for c, _ in items if c["id"].startswith(T.LONG)]
    assert len(long) == 1 and 35.0 <= len(long[0]["audio"]) / 16000 < 50.0  # two windows
    english_only = T.plan(multilingual=False, tier="default")
    assert {c["language"] for c, _ in english_only} == {"en"} and len(english_only) == 5


def test_full_tier_is_every_clip_with_both_strategies():
    from parity.clips import FIXTURES, SHARED_SPEECH, manifest
    from parity.models import whisper_transcription as T

    _shared_or_skip()
    items = T.plan(multilingual=True, tier="full")
    ids = [m["id"] for m in manifest(FIXTURES) + manifest(SHARED_SPEECH)]
    long = [c for c, _ in items if c["id"].startswith(T.LONG)]
    assert [(c["id"], s) for c, s in items if not c["id"].startswith(T.LONG)] == \
        [(i, s) for i in ids for s in T.SWEEP] + list(T.FALLBACK_ITEMS)
    assert len(long) == 2 and len(long[0]["audio"]) / 16000 >= 60.0


def test_missing_shared_speech_fails_the_check_naming_the_folder(tmp_path, monkeypatch):
    from parity.models import whisper_transcription as T

    missing = tmp_path / "shared" / "speech"
    monkeypatch.setenv("PARITY_SHARED_SPEECH", str(missing))
    for tier in ("default", "full"):
        with pytest.raises(FileNotFoundError, match=str(missing / "manifest.jsonl")):
            T.plan(multilingual=False, tier=tier)


@pytest.mark.needs_weights
def test_missing_shared_speech_fails_the_run(tmp_path, monkeypatch):
    missing = tmp_path / "speech"
    monkeypatch.setenv("PARITY_SHARED_SPEECH", str(missing))
    check = next(c for c in W.TINY_EN.checks if "default" in c.tiers)
    res = check.fn("float32", lambda *_: None)
    assert res.status == "not run" and not res.passed and not res.rows
    assert str(missing / "manifest.jsonl") in res.not_run


def test_estimates_grow_with_audio_and_beam():
    from parity.models import whisper_transcription as T

    for engine in T.ENGINES:
        assert T.estimate_s(engine, "greedy", 6.0) < T.estimate_s(engine, "beam5", 6.0)
        assert T.estimate_s(engine, "greedy", 6.0) < T.estimate_s(engine, "greedy", 40.0)


@pytest.mark.slow
@pytest.mark.needs_weights
def test_default_tier_check_is_token_identical_on_tiny_en():
    _shared_or_skip()
    check = next(c for c in W.TINY_EN.checks if "default" in c.tiers)
    res = check.fn("float32", lambda *_: None)
    assert res.error is None, res.error
    assert res.passed, [r for r in res.rows if r["PASS/FAIL"] != "PASS"]
    assert res.summary["tokens_identical"] == "5/5" and res.summary["tier"] == "default"
