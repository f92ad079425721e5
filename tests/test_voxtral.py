"""Voxtral: config, weights reader/converter, front end, parity of the tiny config against
transformers (taps, teacher-forced argmax and greedy tokens), transcribe() and bad input.

The real-dimension spec (`voxtral-mini-3b`, 4.4 GB of weights per side) is a slow test."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest

import mlx_impl  # noqa: F401  (OpenBLAS preload before mlx)
from mlx_impl.stt import SpeechToText, Transcription
from mlx_impl.voxtral.config import VoxtralConfig
from mlx_impl.voxtral.convert import convert
from mlx_impl.voxtral.features import log_mel_chunks
from mlx_impl.voxtral.load import build, load
from mlx_impl.voxtral.tokenizer import TekkenDecoder, text_to_byte_ids, transcription_prompt
from mlx_impl.voxtral.transcribe import VoxtralTranscriber
from parity.clips import read_clip
from parity.models import voxtral as V
from reference import voxtral as R
from tests.helpers_weights import assert_load_reports, rewrite_checkpoint
from tests.helpers import assert_close, assert_spec_passes
from weights import voxtral as W


@pytest.fixture(scope="module")
def tiny_folder():
    return V.checkpoint(V.TEST_TINY_CONFIG)


@pytest.fixture(scope="module")
def tiny_model(tiny_folder):
    return load(tiny_folder)[0]


@pytest.fixture(scope="module")
def tiny_ref(tiny_folder):
    return R.VoxtralReference(tiny_folder)


def test_config_defaults_are_voxtral_mini_3b():
    """transformers' VoxtralConfig() defaults are mistralai/Voxtral-Mini-3B-2507's dimensions;
    the mini-3b spec keeps them all but the layer counts."""
    from transformers import VoxtralConfig as TC

    d = TC().to_dict()
    a, t = d["audio_config"], d["text_config"]
    ours = V.MINI_3B_CONFIG
    for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_mel_bins",
              "max_source_positions"):
        assert ours["audio_config"][k] == a[k], k
    for k in ("vocab_size", "hidden_size", "intermediate_size", "num_attention_heads",
              "num_key_value_heads", "head_dim", "rms_norm_eps", "tie_word_embeddings"):
        assert ours["text_config"][k] == t[k], k
    assert t["rope_parameters"]["rope_theta"] == ours["text_config"]["rope_theta"] == 1e8
    assert (a["num_hidden_layers"], t["num_hidden_layers"]) == (32, 30)


def test_config_rejects_missing_and_unsupported(tiny_folder):
    cfg = json.loads((tiny_folder / "config.json").read_text())
    VoxtralConfig.from_dict(cfg)
    with pytest.raises(ValueError, match="missing"):
        VoxtralConfig.from_dict({k: v for k, v in cfg.items() if k != "audio_token_id"})
    with pytest.raises(ValueError, match="hidden_act='gelu' is not implemented"):
        VoxtralConfig.from_dict({**cfg, "text_config": {**cfg["text_config"], "hidden_act": "gelu"}})
    bad_rope = {**cfg["text_config"], "rope_parameters": {"rope_type": "llama3", "rope_theta": 1.0}}
    with pytest.raises(ValueError, match="only the default rope"):
        VoxtralConfig.from_dict({**cfg, "text_config": bad_rope})


def test_checkpoint_layout_loads_strictly(tiny_folder):
    from safetensors.numpy import load_file

    raw = load_file(str(tiny_folder / "model.safetensors"))
    assert "language_model.lm_head.weight" in raw and "audio_tower.conv1.weight" in raw
    w = W.load(tiny_folder)
    assert set(w.state) == set(raw)
    for k in raw:  # the reader returns the stored values
        np.testing.assert_array_equal(np.asarray(w.state[k]), raw[k], err_msg=k)
    # transformers 5 in-memory names are renamed to the on-disk layout
    model = R.load_model(tiny_folder)
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    assert set(W.from_state(sd)) == set(raw)


def test_weights_and_converter_reject_bad_keys(tiny_folder, tmp_path):
    w = W.load(tiny_folder)

    def edit(state):  # a wrong-shaped kernel and a missing key: reported together
        k = "audio_tower.conv1.weight"  # Conv1d (32, 128 mels, 3)
        state[k] = np.ascontiguousarray(state[k][:, :100])
        del state["audio_tower.layers.0.fc1.bias"]

    folder = rewrite_checkpoint(tiny_folder, tmp_path / "bad", edit)
    assert_load_reports(load, folder, ("audio_tower.conv1.weight", (32, 3, 128), (32, 3, 100)),
                        "audio_tower.blocks.0.mlp.0.bias")
    with pytest.raises(KeyError, match="unexpected Voxtral weight 'vision.x'"):
        convert({"vision.x": np.zeros(1)})
    with pytest.raises(KeyError, match="audio_tower.avg_pooler"):
        convert({"audio_tower.avg_pooler.weight": np.zeros(1)})
    bad = W.VoxtralWeights(w.config, {k: v for k, v in w.state.items()
                                      if k != "language_model.model.norm.weight"}, "x")
    with pytest.raises(ValueError, match="missing.*language_model.norm.weight"):
        build(bad)


def test_front_end_matches_processor(tiny_ref, fixture_clips):
    """128-bin log-mel of the clip padded to whole chunks, as VoxtralProcessor (global floor)."""
    cfg = VoxtralConfig.from_dict(V.TEST_TINY_CONFIG)
    for clip in fixture_clips:
        _, audio = read_clip(clip["id"])
        want = tiny_ref.input_features(audio).transpose(0, 2, 1)
        got = np.array(log_mel_chunks(audio, cfg.audio))
        # measured 3.7e-5 (fox/weather): float32 STFT vs transformers' float64 numpy path
        assert_close(f"log-mel {clip['id']}", got, want, atol=1e-4)


def test_prompt_and_tokenizer():
    assert transcription_prompt(3) == [1, 3, 25, 24, 24, 24, 4, 34]
    ids = text_to_byte_ids("héllo")
    assert ids[0] == 1000 + ord("h") and len(ids) == 6
    dec = TekkenDecoder()
    assert dec.decode([1, 3] + ids + [2]) == "héllo"
    assert dec.decode(ids + [5000]) == "héllo<|5000|>"
    assert dec.decode([1] + ids, keep_special=True) == "<|1|>héllo"
    with pytest.raises(ValueError, match=">= 1 audio token"):
        transcription_prompt(0)


def test_parity_tiny():
    res = assert_spec_passes(V.TEST_TINY)
    for case in res.cases:
        assert [r.name for r in case.comparison.results] == list(V.TEST_TINY.taps)
        assert case.metrics["generated_agreement"] == 1.0


def test_generate_equals_reference_generate(tiny_model, tiny_ref, fixture_clips):
    """Greedy ids of our generate() and transformers generate(do_sample=False), 16 tokens."""
    _, audio = read_clip(fixture_clips[0]["id"])
    want = tiny_ref.transcribe_tokens(audio, 16)
    stt = VoxtralTranscriber(tiny_model, max_new_tokens=16)
    prompt, mel = stt.prompt_and_mel(audio)
    assert tiny_model.generate(prompt, mel, 16) == want


def test_transcribe_interface(tiny_model, tiny_ref, fixture_clips, tmp_path):
    stt = VoxtralTranscriber(tiny_model, max_new_tokens=12)
    assert isinstance(stt, SpeechToText)
    clip = fixture_clips[1]
    _, audio = read_clip(clip["id"])
    out = stt.transcribe(clip["path"])
    assert isinstance(out, Transcription)
    want = tiny_ref.transcribe_tokens(audio, 12)
    want_text = [t for t in want if t != 2]
    assert list(out.segments[0].tokens) == want_text
    assert out.text == TekkenDecoder().decode(want_text)
    assert out.segments[0].end == pytest.approx(audio.shape[0] / 16000, abs=1e-3)
    assert np.isfinite(out.segments[0].avg_logprob) and out.segments[0].avg_logprob < 0
    # an array at 8 kHz is resampled: same tokens as the 16 kHz file within resampling error
    res = stt.transcribe(audio[::2].copy(), sample_rate=8000)
    assert isinstance(res, Transcription) and len(res.segments) == 1


@pytest.mark.parametrize("audio,match", [
    (np.zeros(0, np.float32), "no samples"),
    (np.array([0.0, np.nan, 0.1] * 1000, dtype=np.float32), "NaN"),
])
def test_bad_input_errors(tiny_model, audio, match):
    with pytest.raises(ValueError, match=match):
        VoxtralTranscriber(tiny_model).transcribe(audio)


def test_bad_rate_and_options(tiny_model):
    stt = VoxtralTranscriber(tiny_model)
    with pytest.raises(ValueError, match="sample_rate must be a positive"):
        stt.transcribe(np.zeros(1600, np.float32), sample_rate=-5)
    with pytest.raises(TypeError, match="unknown options"):
        stt.transcribe(np.zeros(1600, np.float32), beam_size=5)


def test_silence_runs_and_matches_reference(tiny_model, tiny_ref):
    silence = np.zeros(16000, np.float32)
    out = VoxtralTranscriber(tiny_model, max_new_tokens=6).transcribe(silence)
    want = [t for t in tiny_ref.transcribe_tokens(silence, 6) if t != 2]
    assert (list(out.segments[0].tokens) if out.segments else []) == want


def test_model_rejects_bad_mel_and_prompt(tiny_model):
    with pytest.raises(ValueError, match=r"log-mel chunks of shape \(n_chunks, 200, 128\)"):
        tiny_model.encode_audio(mx.zeros((1, 3000, 128)))
    audio = tiny_model.encode_audio(mx.zeros((1, 200, 128)))
    with pytest.raises(ValueError, match="3 audio placeholder tokens .* 25 embeddings"):
        tiny_model.embed_prompt(np.array([transcription_prompt(3)]), audio)
    with pytest.raises(ValueError, match="token ids must be in"):
        tiny_model.embed_prompt(np.array([[1, 99999]]), None)


def test_bench_build_tiny(fixture_clips):
    _, audio = read_clip(fixture_clips[0]["id"])
    build = V.bench_build(V.TEST_TINY_CONFIG, max_new_tokens=4)
    out = {}
    for engine in ("mlx", "torch"):
        stages = build(engine, "float32", audio)
        assert [s.name for s in stages] == ["transcribe"]
        out[engine] = stages[0].run()
        assert stages[0].audio_seconds == pytest.approx(audio.shape[0] / 16000)
    # the timed calls do the real work: the same greedy tokens on both engines (EOS, id 2,
    # is dropped by our transcriber)
    assert isinstance(out["mlx"], Transcription) and 1 <= len(out["torch"]) <= 4
    ours = [t for seg in out["mlx"].segments for t in seg.tokens]
    assert ours == [t for t in out["torch"] if t != 2], (ours, out["torch"])
    with pytest.raises(ValueError, match="unknown engine"):
        build("onnx", "float32", audio)


@pytest.mark.slow
def test_parity_mini_3b_dimensions():
    """Real Voxtral-Mini-3B layer dimensions, 2 encoder + 1 decoder layers (3.9 GB fp32/side)."""
    assert_spec_passes(V.MINI_3B)
